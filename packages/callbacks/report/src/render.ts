import { renderAsync } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile } from "vega-lite";
import type { PlotSpec } from "./plots.js";

// The plots carry their data inline; a spec that asks to fetch anything is refused rather than
// letting a report generator reach the network or the file system.
const refuse = (what: string) => Promise.reject(new Error(`@fitloop/report renders inline data only; the spec asked to load ${what}`));
const noLoader = { ...vega.loader(), load: (uri: string) => refuse(uri), sanitize: (uri: string) => refuse(uri) } as unknown as vega.Loader;

/** Renders a vega-lite spec to an SVG string in Node: vega's headless renderer, no browser, no canvas. */
export async function toSvg(spec: PlotSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none", loader: noLoader });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * resvg 2.6.2 aborts the whole process (a Rust panic, not an exception) on an element with its own
 * `opacity` that lies entirely outside the canvas (seen with clipped points of an LR-finder curve).
 * `opacity` on a shape is the same as `fill-opacity` and `stroke-opacity` together, except where its
 * own fill and stroke overlap, so shapes get those instead; groups keep theirs.
 */
export function withoutShapeOpacity(svg: string): string {
  return svg.replace(/<(path|line|rect|circle|ellipse|polyline|polygon|text)\b([^>]*?)(\/?)>/g, (tag, name: string, attrs: string, close: string) => {
    const m = /\sopacity="([^"]*)"/.exec(attrs);
    if (!m) return tag;
    const v = Number(m[1]);
    let rest = attrs.replace(m[0], "");
    if (v !== 1 && Number.isFinite(v)) {
      for (const a of ["fill-opacity", "stroke-opacity"]) {
        const own = new RegExp(`\\s${a}="([^"]*)"`).exec(rest);
        const value = (own ? Number(own[1]) : 1) * v;
        rest = own ? rest.replace(own[0], ` ${a}="${value}"`) : `${rest} ${a}="${value}"`;
      }
    }
    return `<${name}${rest}${close}>`;
  });
}

export interface PngOptions {
  /** Pixels per SVG unit. Default 2 (sharp on high-density screens and in docs). */
  readonly scale?: number;
  /** Font files to use besides (or, with `loadSystemFonts: false`, instead of) the system's. */
  readonly fontFiles?: readonly string[];
  /** Default true: resvg needs a font for any text (axis labels, titles). */
  readonly loadSystemFonts?: boolean;
}

/**
 * Rasterises an SVG with resvg, off the JavaScript thread (resvg-js renders on a worker). Text needs
 * a font: the system's (DejaVu Sans, Liberation Sans, Helvetica or Arial, as the plots ask) or
 * `fontFiles`; with neither, the lines render and the labels do not.
 */
export async function toPng(svg: string, options: PngOptions = {}): Promise<Buffer> {
  const scale = options.scale ?? 2;
  if (!(scale > 0 && scale <= 16)) throw new RangeError(`toPng: scale must be in (0, 16], got ${scale}`);
  const image = await renderAsync(withoutShapeOpacity(svg), {
    fitTo: { mode: "zoom", value: scale },
    background: "white",
    font: { loadSystemFonts: options.loadSystemFonts ?? true, fontFiles: [...(options.fontFiles ?? [])] },
    logLevel: "off",
  });
  return image.asPng();
}

/** Width and height of a PNG, read from its header; throws when `png` is not one. */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.length < 24 || signature.some((b, i) => png[i] !== b)) throw new Error("not a PNG: the signature is missing");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  if (String.fromCharCode(...png.subarray(12, 16)) !== "IHDR") throw new Error("not a PNG: the first chunk is not IHDR");
  return { width: view.getUint32(16), height: view.getUint32(20) };
}
