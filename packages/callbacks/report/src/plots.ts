import type { TopLevelSpec } from "vega-lite";
import { historyData, type HistoryData, type HistorySource } from "./history.js";

/** A vega-lite spec, ready for `toSvg` (or vega-embed in your own page). */
export type PlotSpec = TopLevelSpec;

/** Fonts for the SVG text: the first one installed is used (resvg and browsers both walk the list). */
export const PLOT_FONT = "DejaVu Sans, Liberation Sans, Helvetica, Arial, sans-serif";

const WIDTH = 600;
const HEIGHT = 280;
const BLUE = "#1f77b4";
const LIGHT_BLUE = "#9ecae9";
const ORANGE = "#ff7f0e";
const RED = "#d62728";
const GREY = "#b5b5b5";
export const TRAIN_BATCH = "training (per batch)";
export const TRAIN_EPOCH = "training (epoch mean)";
export const VALIDATION = "validation";

const CONFIG = {
  font: PLOT_FONT,
  background: "white",
  padding: 12,
  view: { stroke: "#ccc" },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal", gridColor: "#ececec", domainColor: "#888", tickColor: "#888", labelColor: "#333", titleColor: "#222" },
  legend: { labelFontSize: 12, orient: "bottom", direction: "horizontal", symbolStrokeWidth: 3, columnPadding: 18, labelLimit: 320 },
  title: { fontSize: 15, fontWeight: "bold", anchor: "start", subtitleFontSize: 11, subtitleColor: "#555", subtitlePadding: 4, offset: 10 },
} as const;

interface Row {
  x: number;
  y: number;
  series: string;
}

/** Friendly names for the keys the loop and fitloop's plugins log. */
const LABELS: Record<string, string> = {
  loss: "loss",
  acc: "accuracy",
  accuracy: "accuracy",
  lr: "learning rate",
  momentum: "momentum",
  grad_norm: "gradient norm",
  mse: "mean squared error",
  mae: "mean absolute error",
};

export function label(key: string): string {
  return Object.hasOwn(LABELS, key) ? LABELS[key]! : key;
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** Batches per epoch: known from the data, else estimated from the steps recorded per epoch. */
function perEpoch(h: HistoryData): number | undefined {
  if (h.batchesPerEpoch) return h.batchesPerEpoch;
  const loss = h.steps["loss"];
  const done = h.epochs.length;
  if (loss && loss.x.length && done) return Math.max(1, Math.round(loss.x[loss.x.length - 1]! / done));
  return undefined;
}

const finite = (rows: Row[], log: boolean) => rows.filter((r) => Number.isFinite(r.y) && Number.isFinite(r.x) && (!log || r.y > 0));

/** Rows of one step series, `x` in epochs when the epoch length is known (else in batches). */
function stepRows(h: HistoryData, key: string, series: string, bpe: number | undefined): Row[] {
  const s = h.steps[key];
  if (!s) return [];
  return s.x.map((x, i) => ({ x: bpe ? x / bpe : x, y: s.y[i]!, series }));
}

export interface CurveOptions {
  /** Scale of the y axis. Default `"linear"`. */
  readonly scale?: "linear" | "log";
  /** Draw the per-batch values (light) under the epoch means. Default true. */
  readonly perBatch?: boolean;
}

/** The rows of a training/validation plot of `key`: per batch (unless `perBatch: false`) and per epoch, finite values only. */
function trainValRows(h: HistoryData, key: string, perBatch: boolean | undefined): { bpe: number | undefined; batch: Row[]; epochs: Row[] } {
  const bpe = perEpoch(h);
  const batch = perBatch === false ? [] : finite(stepRows(h, key, TRAIN_BATCH, bpe), false);
  const epochs = finite(
    h.epochs.flatMap((r) => [
      { x: r.epoch + (bpe ? 0.5 : 1), y: r.logs[key] ?? Number.NaN, series: TRAIN_EPOCH },
      { x: r.epoch + 1, y: r.logs[`val_${key}`] ?? Number.NaN, series: VALIDATION },
    ]),
    false,
  );
  return { bpe, batch, epochs };
}

const nonPositiveNote = (rows: readonly Row[]): string | undefined => {
  const bad = rows.filter((r) => r.y <= 0);
  if (!bad.length) return undefined;
  const lowest = Math.min(...bad.map((r) => r.y));
  return `${bad.length} of its ${rows.length} values ${bad.length === 1 ? "is" : "are"} <= 0 (the lowest ${Number(lowest.toPrecision(4))}), which a log scale cannot show`;
};

/**
 * Why `key` cannot be drawn on a log scale (`scale: "log"` of `lossPlot` / `metricPlot`): some of
 * its values are zero or negative. `undefined` when it can (or there is nothing to draw). Those plots
 * then fall back to a linear scale and say so in their subtitle.
 */
export function logScaleProblem(history: HistorySource, key: string, options: Pick<CurveOptions, "perBatch"> = {}): string | undefined {
  const { batch, epochs } = trainValRows(historyData(history), key, options.perBatch);
  return nonPositiveNote([...batch, ...epochs]);
}

/**
 * Training and validation of one key in ONE plot: per-batch values (light), the epoch means of
 * training at each epoch's middle (they average over it) and validation at its end (where it is
 * measured). `undefined` when the history has no value for `key`. A log scale with a value <= 0
 * (a loss with an offset, a log-likelihood) falls back to linear, with a note in the subtitle.
 */
function trainValPlot(source: HistorySource, key: string, title: string, options: CurveOptions): PlotSpec | undefined {
  const h = historyData(source);
  const { bpe, batch, epochs } = trainValRows(h, key, options.perBatch);
  if (!batch.length && !epochs.length) return undefined;
  const problem = options.scale === "log" ? nonPositiveNote([...batch, ...epochs]) : undefined;
  const log = options.scale === "log" && problem === undefined;
  const inEpochs = bpe !== undefined || batch.length === 0;
  const present = new Set([...batch, ...epochs].map((r) => r.series));
  const domain = [TRAIN_BATCH, TRAIN_EPOCH, VALIDATION].filter((s) => present.has(s));
  const range = domain.map((s) => (s === TRAIN_BATCH ? LIGHT_BLUE : s === TRAIN_EPOCH ? BLUE : ORANGE));
  const color = { field: "series", type: "nominal", title: null, scale: { domain, range } } as const;
  const x = { field: "x", type: "quantitative", title: inEpochs ? "epoch" : "batch", axis: inEpochs ? { tickMinStep: 1 } : {}, scale: { nice: false, zero: inEpochs } } as const;
  const y = { field: "y", type: "quantitative", title: log ? `${label(key)} (log scale)` : label(key), scale: log ? { type: "log" } : { zero: false } } as const;
  const notes = [batch.length ? "every batch (light)" : "", epochs.some((r) => r.series === TRAIN_EPOCH) ? (inEpochs && bpe ? "epoch means at mid-epoch" : "epoch means") : "", epochs.some((r) => r.series === VALIDATION) ? "validation at epoch ends" : ""].filter(Boolean);
  const subtitle = notes.length ? capital(notes.join("; ")) : "";
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    // the fallback on a line of its own: the reason a log scale was not used
    title: { text: title, subtitle: problem ? [subtitle, `Linear scale: ${problem}.`].filter(Boolean) : subtitle },
    width: WIDTH,
    height: HEIGHT,
    config: CONFIG,
    layer: [
      ...(batch.length ? [{ data: { values: batch }, mark: { type: "line", strokeWidth: 1, clip: true }, encoding: { x, y, color } } as const] : []),
      ...(epochs.length ? [{ data: { values: epochs }, mark: { type: "line", strokeWidth: 2.5, point: { size: 40, filled: true }, clip: true }, encoding: { x, y, color } } as const] : []),
    ],
  } as PlotSpec;
}

/** Training and validation loss in one plot (`scale: "log"` for a log y axis). */
export function lossPlot(history: HistorySource, options: CurveOptions = {}): PlotSpec | undefined {
  return trainValPlot(history, "loss", "Loss", options);
}

/**
 * A metric, training and validation in one plot: `key`, or the first metric the loop computes
 * (`acc` with `metrics: ["acc"]`), or the first key with a `val_` twin.
 */
export function metricPlot(history: HistorySource, key?: string, options: CurveOptions = {}): PlotSpec | undefined {
  const h = historyData(history);
  const k = key ?? firstMetric(h);
  return k === undefined ? undefined : trainValPlot(h, k, capital(label(k)), options);
}

const PLUGIN_KEYS = new Set(["lr", "momentum", "grad_norm", "grad_clipped", "grad_nonfinite"]);

export function firstMetric(h: HistoryData): string | undefined {
  const fromLoop = h.metrics.find((m) => m !== "loss");
  if (fromLoop) return fromLoop;
  const last = h.epochs.at(-1)?.logs ?? {};
  return Object.keys(last).find((k) => k !== "loss" && !k.startsWith("val_") && !PLUGIN_KEYS.has(k) && `val_${k}` in last);
}

/** Axis labels for values that may be tiny (learning rates): "5e-3" rather than "0.005", and a plain "0". */
function axisFor(values: readonly number[]): { format: string } | { labelExpr: string } {
  const max = Math.max(...values.map(Math.abs).filter(Number.isFinite));
  return max !== 0 && (max < 1e-2 || max >= 1e5) ? { labelExpr: "datum.value === 0 ? '0' : format(datum.value, '.1~e')" } : { format: "~g" };
}

/** Log-axis labels at the decades only ("1e-4", "1e-3", ..., "1", "10"); the other ticks keep their grid lines. */
const DECADES = "abs(log(datum.value) / LN10 - round(log(datum.value) / LN10)) < 1e-6 ? replace(replace(format(datum.value, '.0e'), 'e+0', ''), 'e+', 'e') : ''";

/** Per-step rows of `key`, or the epoch values at each epoch's last batch when no plugin logged it per step. */
function stepOrEpochRows(h: HistoryData, key: string): { rows: Row[]; perStep: boolean } {
  const s = h.steps[key];
  if (s && s.x.length) return { rows: finite(s.x.map((x, i) => ({ x, y: s.y[i]!, series: key })), false), perStep: true };
  const bpe = perEpoch(h) ?? 1;
  return { rows: finite(h.epochs.map((r) => ({ x: (r.epoch + 1) * bpe, y: r.logs[key] ?? Number.NaN, series: key })), false), perStep: false };
}

/**
 * Learning rate and momentum (or beta1) over the steps, one panel each (their scales differ by
 * orders of magnitude). Per step when a schedule or `RunHistory` logged them, else per epoch.
 */
export function lrPlot(history: HistorySource): PlotSpec | undefined {
  const h = historyData(history);
  const lr = stepOrEpochRows(h, "lr");
  if (!lr.rows.length) return undefined;
  const mom = stepOrEpochRows(h, "momentum");
  const momName = h.config?.optimizer.momentumName;
  const momTitle = momName === "beta1" ? "momentum (Adam's beta1)" : "momentum";
  const panel = (rows: Row[], title: string, color: string, height: number) => ({
    data: { values: rows },
    width: WIDTH,
    height,
    mark: { type: "line", strokeWidth: 2, color, point: rows.length < 30 ? { size: 30, filled: true, color } : false },
    encoding: {
      x: { field: "x", type: "quantitative", title: "step (batch)", scale: { nice: false } },
      y: { field: "y", type: "quantitative", title, scale: { zero: false }, axis: axisFor(rows.map((r) => r.y)) },
    },
  });
  const panels = [panel(lr.rows, "learning rate", BLUE, mom.rows.length ? 190 : HEIGHT)];
  if (mom.rows.length) panels.push(panel(mom.rows, momTitle, ORANGE, 130));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: mom.rows.length ? "Learning rate and momentum" : "Learning rate", subtitle: lr.perStep ? "The values each step ran with" : "Per epoch (no per-step values were logged)" },
    config: CONFIG,
    vconcat: panels,
    spacing: 16,
  } as PlotSpec;
}

/** Exponential moving average (bias-corrected), for a readable trend through noisy per-step values. */
function ema(values: readonly number[], beta: number): number[] {
  let avg = 0;
  return values.map((v, i) => {
    avg = beta * avg + (1 - beta) * v;
    return avg / (1 - beta ** (i + 1));
  });
}

/** The global gradient norm (`grad_norm`, e.g. from `@fitloop/grad-clip`) per step, with a moving average. */
export function gradNormPlot(history: HistorySource, options: { readonly scale?: "linear" | "log"; readonly key?: string; /** A clipping limit to draw as a rule (GradClip's `max`). */ readonly threshold?: number } = {}): PlotSpec | undefined {
  const h = historyData(history);
  const key = options.key ?? "grad_norm";
  const log = options.scale === "log";
  const { rows, perStep } = stepOrEpochRows(h, key);
  const raw = finite(rows, log).map((r) => ({ ...r, series: perStep ? "per batch" : "epoch mean" }));
  if (!raw.length) return undefined;
  const smooth = perStep && raw.length >= 10 ? ema(raw.map((r) => r.y), 0.9).map((y, i) => ({ x: raw[i]!.x, y, series: "moving average (0.9)" })) : [];
  const limit = options.threshold !== undefined && Number.isFinite(options.threshold) ? [{ y: options.threshold, series: `clipping limit (${options.threshold})` }] : [];
  const domain = [raw[0]!.series, ...(smooth.length ? [smooth[0]!.series] : []), ...limit.map((l) => l.series)];
  const color = { field: "series", type: "nominal", title: null, scale: { domain, range: [...(smooth.length ? [LIGHT_BLUE, BLUE] : [BLUE]), RED].slice(0, domain.length) } } as const;
  const x = { field: "x", type: "quantitative", title: "step (batch)", scale: { nice: false } } as const;
  const y = { field: "y", type: "quantitative", title: `${label(key)}${log ? " (log scale)" : ""}`, scale: log ? { type: "log" } : { zero: true } } as const;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "Gradient norm", subtitle: `Global L2 norm of all gradients, as logged (${key})` },
    width: WIDTH,
    height: HEIGHT,
    config: CONFIG,
    layer: [
      { data: { values: raw }, mark: { type: "line", strokeWidth: 1, point: raw.length < 30 }, encoding: { x, y, color } },
      ...(smooth.length ? [{ data: { values: smooth }, mark: { type: "line", strokeWidth: 2.5 }, encoding: { x, y, color } }] : []),
      ...(limit.length ? [{ data: { values: limit }, mark: { type: "rule", strokeDash: [6, 4], strokeWidth: 1.5 }, encoding: { y, color } }] : []),
    ],
  } as PlotSpec;
}

type SuggestionName = "valley" | "steep" | "minimum" | "slide";

/** What `@fitloop/lr-finder` returns (`findLearningRate`, `LRRangeTest.result()`), as far as the plot needs it. */
export interface LrFinderResultLike {
  readonly curve: { readonly lr: readonly number[]; readonly loss: readonly number[]; readonly smoothed: readonly number[] };
  /** The suggested learning rate; `undefined` when none could be computed. */
  readonly lr: number | undefined;
  readonly suggestions?: { readonly [name in SuggestionName]?: { readonly lr: number; readonly index: number; readonly loss: number } | undefined };
  readonly confidence?: { readonly verdict: string; readonly reasons: readonly string[] };
  readonly stopMessage?: string;
}

/**
 * Loss against learning rate (log x), the smoothed curve over the raw per-step losses, and the
 * suggestion marked by a rule, a point and a label that states its confidence verdict. The y range
 * is the interesting part (from the lowest smoothed loss to the highest before it), as fastai draws
 * it: the divergent tail runs off the top.
 */
export function lrFinderPlot(result: LrFinderResultLike): PlotSpec | undefined {
  const { lr, loss, smoothed } = result.curve;
  const raw = lr.map((x, i) => ({ x, y: loss[i]!, series: "loss per step" })).filter((r) => r.x > 0 && Number.isFinite(r.y));
  const smooth = lr.map((x, i) => ({ x, y: smoothed[i]!, series: "smoothed loss" })).filter((r) => r.x > 0 && Number.isFinite(r.y));
  if (smooth.length < 2) return undefined;
  let low = 0;
  smooth.forEach((r, i) => void (r.y < smooth[low]!.y && (low = i)));
  // raw losses run below the smoothed curve (it lags): the lowest of both up to the minimum
  const lo = Math.min(smooth[low]!.y, ...raw.filter((r) => r.x <= smooth[low]!.x).map((r) => r.y));
  const hi = Math.max(...smooth.slice(0, low + 1).map((r) => r.y), lo + 1e-6);
  const pad = (hi - lo) * 0.08;
  // points off the plot are left out rather than clipped: nothing to draw, and no off-canvas shapes for resvg
  const shown = raw.filter((r) => r.y >= lo - pad && r.y <= hi + pad);
  const s = result.lr;
  const name = s === undefined ? undefined : (Object.entries(result.suggestions ?? {}).find(([, v]) => v?.lr === s)?.[0] ?? "suggestion");
  const verdict = result.confidence?.verdict;
  const ok = verdict === undefined || verdict === "ok";
  const text = s === undefined ? "" : `${name} ${s.toExponential(1)}${verdict ? ` (confidence: ${verdict})` : ""}`;
  const at = s === undefined ? undefined : result.suggestions?.[name as SuggestionName];
  const atY = at && Number.isFinite(at.loss) ? at.loss : undefined;
  const domain = ["loss per step", "smoothed loss", ...(s !== undefined ? ["suggestion"] : [])];
  const color = { field: "series", type: "nominal", title: null, scale: { domain, range: [GREY, BLUE, ok ? "#2a7d2a" : RED].slice(0, domain.length) } } as const;
  const x = { field: "x", type: "quantitative", title: "learning rate (log scale)", scale: { type: "log", nice: false }, axis: { labelExpr: DECADES } } as const;
  const y = { field: "y", type: "quantitative", title: "loss", scale: { domain: [lo - pad, hi + pad], zero: false } } as const;
  const subtitle = [result.stopMessage, ...(ok ? [] : (result.confidence?.reasons ?? []))].filter((t): t is string => !!t);
  const mark = s === undefined ? [] : [{ x: s, y: atY ?? lo, series: "suggestion", text }];
  // the label reads away from the nearer edge, so it stays inside the plot
  const lrs = raw.map((r) => r.x);
  const where = s === undefined ? 0 : Math.log(s / Math.min(...lrs)) / Math.log(Math.max(...lrs) / Math.min(...lrs));
  const right = where > 0.6;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "Learning-rate range test", subtitle },
    width: WIDTH,
    height: HEIGHT,
    config: CONFIG,
    layer: [
      { data: { values: shown }, mark: { type: "point", filled: true, size: 14, opacity: 1, clip: true }, encoding: { x, y, color } },
      { data: { values: smooth }, mark: { type: "line", strokeWidth: 2.5, clip: true }, encoding: { x, y, color } },
      ...(mark.length
        ? [
            { data: { values: mark }, mark: { type: "rule", strokeDash: [6, 4], strokeWidth: 1.5 }, encoding: { x: { field: "x", type: "quantitative" }, color } },
            ...(atY !== undefined ? [{ data: { values: mark }, mark: { type: "point", filled: true, size: 90, opacity: 1 }, encoding: { x, y, color } }] : []),
            { data: { values: mark }, mark: { type: "text", align: right ? "right" : "left", baseline: "top", dx: right ? -6 : 6, dy: 6, fontSize: 12, fontWeight: "bold", color: ok ? "#2a7d2a" : RED }, encoding: { x: { field: "x", type: "quantitative" }, y: { value: 0 }, text: { field: "text" } } },
          ]
        : []),
    ],
  } as PlotSpec;
}
