import type { ImageDims } from "../augment/shape.js";

const RAMP = " .:-=+*#%@";

/** Grey level in [0, 1] of each pixel (channels averaged), scaled by the image's own range. */
function greys(pixels: ArrayLike<number>, { h, w, c }: ImageDims): Float32Array {
  const out = new Float32Array(h * w);
  let lo = Infinity;
  let hi = -Infinity;
  for (let p = 0; p < h * w; p++) {
    let s = 0;
    for (let ch = 0; ch < c; ch++) s += pixels[p * c + ch]!;
    const v = s / c;
    out[p] = v;
    if (Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  const span = hi > lo ? hi - lo : 1;
  for (let p = 0; p < out.length; p++) out[p] = Number.isFinite(out[p]!) ? (out[p]! - (Number.isFinite(lo) ? lo : 0)) / span : 0;
  return out;
}

/**
 * An image as text, one character per pixel (dark to bright: " .:-=+*#%@"). Terminal cells are
 * about twice as tall as wide, so `rowsPerLine: 2` (averaging row pairs) keeps the proportions.
 */
export function renderAscii(pixels: ArrayLike<number>, dims: ImageDims, options: { rowsPerLine?: number } = {}): string[] {
  const step = Math.max(1, Math.floor(options.rowsPerLine ?? 1));
  const g = greys(pixels, dims);
  const lines: string[] = [];
  for (let r = 0; r < dims.h; r += step) {
    let line = "";
    for (let col = 0; col < dims.w; col++) {
      let s = 0;
      let n = 0;
      for (let k = r; k < Math.min(dims.h, r + step); k++, n++) s += g[k * dims.w + col]!;
      line += RAMP[Math.min(RAMP.length - 1, Math.floor((s / n) * RAMP.length))];
    }
    lines.push(line);
  }
  return lines;
}

/** An image as a binary PGM file (P5, 8 bit), viewable in most image viewers. */
export function toPgm(pixels: ArrayLike<number>, dims: ImageDims): Uint8Array {
  const g = greys(pixels, dims);
  const header = new TextEncoder().encode(`P5\n${dims.w} ${dims.h}\n255\n`);
  const out = new Uint8Array(header.length + g.length);
  out.set(header);
  for (let p = 0; p < g.length; p++) out[header.length + p] = Math.round(g[p]! * 255);
  return out;
}

/** Places text blocks side by side with a gap. */
export function sideBySide(blocks: readonly (readonly string[])[], gap = 3): string[] {
  const height = Math.max(0, ...blocks.map((b) => b.length));
  const widths = blocks.map((b) => Math.max(0, ...b.map((l) => l.length)));
  const lines: string[] = [];
  for (let r = 0; r < height; r++) lines.push(blocks.map((b, i) => (b[r] ?? "").padEnd(widths[i]!)).join(" ".repeat(gap)).trimEnd());
  return lines;
}
