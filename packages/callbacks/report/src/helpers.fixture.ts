import { inflateSync } from "node:zlib";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER, Trainer, silentLogger, type Callback, type Logger } from "@fitloop/core";
import { tinyFixture } from "@fitloop/core/testing";

/** Every line mark of a vega SVG: its series (from the aria label vega writes) and its vertices. */
export function lineMarks(svg: string): { series: string; label: string; points: number }[] {
  const out: { series: string; label: string; points: number }[] = [];
  for (const m of svg.matchAll(/<path aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="line mark" d="([^"]*)"/g)) {
    const label = m[1]!;
    out.push({ series: /series: ([^;]*)$/.exec(label)?.[1] ?? label, label, points: (m[2]!.match(/[MLHV]/g) ?? []).length });
  }
  return out;
}

/** The series' vertex count, by series name (`undefined` when there is no such line). */
export function pointsOf(svg: string, series: string): number | undefined {
  return lineMarks(svg).find((l) => l.series === series)?.points;
}

/** Texts of every axis label group, in document order (one array per axis). */
export function axisLabels(svg: string): string[][] {
  const axes: string[][] = [];
  for (const g of svg.split('<g class="mark-text role-axis-label"').slice(1)) {
    const body = g.slice(0, g.indexOf("</g>"));
    axes.push([...body.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!));
  }
  return axes;
}

/** Numeric axis label values (d3 formats: "0.5", "1,000", "1e-3", "1e-4"). */
export function axisValues(labels: readonly string[]): number[] {
  return labels.map((l) => Number(l.replaceAll(",", "").replace("−", "-"))).filter(Number.isFinite);
}

/** Decodes an 8-bit RGB/RGBA non-interlaced PNG (what resvg writes) to RGBA rows, to look at pixels in a test. */
export function decodePng(png: Uint8Array): { width: number; height: number; rgba: Uint8Array } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let at = 8;
  let width = 0;
  let height = 0;
  let channels = 4;
  const idat: Uint8Array[] = [];
  while (at < png.length) {
    const len = view.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === "IHDR") {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      if (data[8] !== 8 || data[12] !== 0) throw new Error("only 8-bit non-interlaced PNGs");
      channels = data[9] === 6 ? 4 : data[9] === 2 ? 3 : 0;
      if (!channels) throw new Error(`colour type ${data[9]} not supported`);
    }
    if (type === "IDAT") idat.push(data);
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = new Uint8Array(width * height * 4);
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? cur[i - channels]! : 0;
      const b = prev[i]!;
      const c = i >= channels ? prev[i - channels]! : 0;
      const p = a + b - c;
      const pred = filter === 0 ? 0 : filter === 1 ? a : filter === 2 ? b : filter === 3 ? (a + b) >> 1 : Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      cur[i] = (line[i]! + pred) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      for (let k = 0; k < 3; k++) out[(y * width + x) * 4 + k] = cur[x * channels + k]!;
      out[(y * width + x) * 4 + 3] = channels === 4 ? cur[x * channels + 3]! : 255;
    }
    prev = cur;
  }
  return { width, height, rgba: out };
}

/** Pixels darker than mid-grey inside a rectangle of a decoded PNG (text is dark; the plots' lines are coloured). */
export function darkPixels(img: { width: number; rgba: Uint8Array }, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * img.width + x) * 4;
      if (img.rgba[i]! < 100 && img.rgba[i + 1]! < 100 && img.rgba[i + 2]! < 100) n++;
    }
  }
  return n;
}

/**
 * What a run with fitloop's training-dynamics plugins logs, made by plain hooks (this package does
 * not depend on them): a cosine learning rate and a momentum cycle set and logged per step as the
 * Scheduler does, and the gradients' global norm logged as a tensor in afterGradients as GradClip does.
 */
export function dynamicsPlugins(totalSteps: number): Callback[] {
  const schedule: Callback = {
    name: "Schedule",
    order: ORDER.SCHEDULE,
    beforeBatch: (ctx) => {
      const t = ctx.state.step / totalSteps;
      ctx.hyper.learningRate = 0.001 + 0.05 * (1 + Math.cos(Math.PI * t)) / 2;
      ctx.hyper.momentum = 0.85 + 0.1 * Math.abs(2 * t - 1);
      ctx.log("lr", ctx.hyper.learningRate, { reduce: "last" });
      ctx.log("momentum", ctx.hyper.momentum, { reduce: "last" });
    },
  };
  const norm: Callback = {
    name: "Norm",
    order: ORDER.GRADIENT,
    afterGradients: (ctx) => ctx.log("grad_norm", tf.tidy(() => tf.sqrt(tf.addN(Object.values(ctx.grads!).map((g) => tf.sum(tf.square(g)))))) as tf.Scalar),
  };
  return [schedule, norm];
}

/** A short real run (tiny blobs, Adam, acc, validation) with the given plugins: 4 batches per epoch. */
export async function shortRun(callbacks: Callback[], options: { epochs?: number; logger?: Logger; samples?: number } = {}) {
  const fx = tinyFixture({ samples: options.samples ?? 64 });
  const epochs = options.epochs ?? 5;
  const batches = Math.ceil((options.samples ?? 64) / 16);
  const trainer = new Trainer({ model: fx.model, optimizer: tf.train.adam(0.05), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks: [...dynamicsPlugins(epochs * batches), ...callbacks], logger: options.logger ?? silentLogger });
  try {
    return await trainer.fit({ epochs, train: fx.data(16), validation: fx.data(32, 9) });
  } finally {
    fx.dispose();
  }
}

/** A logger that keeps what it is told. */
export function recordingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string) => void lines.push({ level, message });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
