import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { DataError, LOSS_NAMES, OptionsError, ShapeMismatchError, type LossFn, type LossName } from "@fitloop/core";
import { z } from "zod";

/** Inputs and labels as tensors (the caller's: the checks never dispose them). One input tensor. */
export interface CheckData {
  readonly xs: tf.Tensor;
  /** What the loss takes: class indices `[n]` for sparse cross-entropy, else the output's shape. */
  readonly ys: tf.Tensor;
}

/** A loss by name (core's, the same functions `model.fit` uses) or a function `(yTrue, yPred) => per-sample loss`. */
export type CheckLoss = LossName | LossFn;

export const lossSchema = z.union([z.enum(LOSS_NAMES), z.custom<LossFn>((v) => typeof v === "function")], {
  message: `must be one of ${LOSS_NAMES.join(", ")} or a function (yTrue, yPred) => tf.Tensor`,
});
export const seedSchema = z.number().int({ message: "must be an integer" }).default(0);
export const positiveInt = (what: string) => z.number().int({ message: `must be an integer >= 1 (${what})` }).min(1, { message: `must be >= 1 (${what})` });
export const fraction = (what: string) => z.number().gt(0, { message: `must be in (0, 1) (${what})` }).lt(1, { message: `must be in (0, 1) (${what})` });

const isModel = (v: unknown): v is tfl.LayersModel =>
  typeof v === "object" && v !== null && typeof (v as { apply?: unknown }).apply === "function" && Array.isArray((v as { trainableWeights?: unknown }).trainableWeights);
const isLiveTensor = (v: unknown): v is tf.Tensor => v instanceof tf.Tensor && !v.isDisposed;

/** Refuses what is not a single-input LayersModel and data that does not fit it, before any work. */
export function checkInputs(owner: string, model: unknown, data: unknown, needLabels = true, loss?: CheckLoss): asserts model is tfl.LayersModel {
  checkModel(owner, model);
  checkData(owner, model, data, needLabels, loss);
}

/** Refuses what is not a single-input, single-output LayersModel (typed error naming `model`). */
export function checkModel(owner: string, model: unknown): asserts model is tfl.LayersModel {
  if (!isModel(model)) throw new OptionsError(owner, [{ path: "model", message: "must be a tfjs-layers model (tf.sequential() or tf.model())" }]);
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new OptionsError(owner, [{ path: "model", message: `has ${model.inputs.length} inputs and ${model.outputs.length} outputs; the checks take single-input, single-output models` }]);
  }
}

function checkData(owner: string, model: tfl.LayersModel, data: unknown, needLabels: boolean, loss: CheckLoss | undefined): void {
  const d = data as Partial<CheckData> | null;
  const issues = [];
  if (typeof d !== "object" || d === null || !isLiveTensor(d.xs)) issues.push({ path: "data.xs", message: "must be a live tf.Tensor of inputs" });
  if (needLabels && (typeof d !== "object" || d === null || !isLiveTensor(d.ys))) issues.push({ path: "data.ys", message: "must be a live tf.Tensor of labels" });
  if (issues.length) throw new OptionsError(owner, issues);
  const { xs, ys } = d as CheckData;
  if (xs.shape[0] === 0) throw new DataError("EMPTY_DATA", `${owner}: data.xs has 0 samples`);
  const want = model.inputs[0]!.shape.slice(1);
  if (xs.rank !== want.length + 1 || want.some((s, i) => s !== null && s !== xs.shape[i + 1])) {
    throw new ShapeMismatchError(`${owner}: data.xs has shape [${xs.shape.join(", ")}] but the model takes [n, ${want.map((s) => s ?? "?").join(", ")}]`);
  }
  if (needLabels && ys.shape[0] !== xs.shape[0]) throw new ShapeMismatchError(`${owner}: data.xs has ${xs.shape[0]} samples but data.ys has ${ys.shape[0]}`);
  if (needLabels && loss !== undefined) checkLabelShape(owner, model, ys, loss);
}

/**
 * The labels' shape against the output's, before any work: a named loss broadcasts `[n]` against
 * `[n, 1]` to `[n, n]` (MSE) or throws deep inside tfjs (binary cross-entropy). Sparse cross-entropy
 * takes class indices `[n]` (or `[n, 1]`); every other named loss the output's shape. A custom loss
 * function is not checked (it may take anything).
 */
function checkLabelShape(owner: string, model: tfl.LayersModel, ys: tf.Tensor, loss: CheckLoss): void {
  if (typeof loss === "function") return;
  const out = model.outputs[0]!.shape.slice(1);
  const shown = `[n, ${out.map((s) => s ?? "?").join(", ")}]`;
  const got = `[${ys.shape.join(", ")}]`;
  if (loss === "sparseCategoricalCrossentropy") {
    if (ys.rank === 1 || (ys.rank === 2 && ys.shape[1] === 1)) return;
    throw new ShapeMismatchError(`${owner}: data.ys has shape ${got} but ${loss} takes class indices [n] (the model outputs ${shown})`);
  }
  const want = ys.shape.slice(1);
  if (want.length !== out.length || out.some((s, i) => s !== null && s !== want[i])) {
    throw new ShapeMismatchError(`${owner}: data.ys has shape ${got} but the model outputs ${shown}; ${loss} takes labels of the output's shape (reshape the labels, e.g. to [${ys.shape[0]}, 1])`);
  }
}

/** The last-axis width of the model's output (classes for a classifier). */
export function outputWidth(model: tfl.LayersModel): number {
  return model.outputs[0]!.shape.at(-1) ?? 1;
}

/** Rows `[start, start + count)` of a tensor (a new tensor). */
export function rows(t: tf.Tensor, start: number, count: number): tf.Tensor {
  return tf.slice(t, [start], [count]);
}

/** The model's output for `xs` (one tensor). */
export function forward(model: tfl.LayersModel, xs: tf.Tensor, training: boolean): tf.Tensor {
  return model.apply(xs, { training }) as tf.Tensor;
}

/** Mean loss of the model on `data` as a scalar tensor. */
export function meanLoss(model: tfl.LayersModel, lossFn: LossFn, xs: tf.Tensor, ys: tf.Tensor, training: boolean): tf.Scalar {
  return tf.tidy(() => tf.mean(lossFn(ys, forward(model, xs, training))) as tf.Scalar);
}

/** Accuracy for class labels (sparse indices or one-hot rows), else undefined. */
export function accuracy(loss: CheckLoss, ys: tf.Tensor, pred: tf.Tensor): number | undefined {
  if (loss !== "sparseCategoricalCrossentropy" && loss !== "categoricalCrossentropy") return undefined;
  return tf.tidy(() => {
    const truth = loss === "sparseCategoricalCrossentropy" ? tf.cast(tf.reshape(ys, [-1]), "int32") : tf.argMax(ys, -1);
    return tf.mean(tf.cast(tf.equal(truth, tf.argMax(pred, -1)), "float32")).dataSync()[0]!;
  });
}

/** Layers that add noise in training; their strength is set to 0 while a check trains (regularisation off). */
const NOISE: readonly { readonly pattern: RegExp; readonly field: "rate" | "stddev" }[] = [
  { pattern: /Dropout/, field: "rate" }, // Dropout, SpatialDropout1D, GaussianDropout, AlphaDropout
  { pattern: /^GaussianNoise$/, field: "stddev" },
];

/** Recurrent cells' dropout fields (LSTM, GRU, SimpleRNN: the layer's getters read the cell's). */
const CELL_NOISE = ["dropout", "recurrentDropout"] as const;

/** The cells of a recurrent layer (`cell`, or a stacked cell's `cells`). */
function cellsOf(layer: tfl.layers.Layer): Record<string, unknown>[] {
  const cell = (layer as unknown as { cell?: unknown }).cell;
  if (typeof cell !== "object" || cell === null) return [];
  const inner = (cell as { cells?: unknown }).cells;
  return Array.isArray(inner) ? (inner as Record<string, unknown>[]) : [cell as Record<string, unknown>];
}

/** Every layer, nested models' layers included. */
function allLayers(model: tfl.LayersModel): tfl.layers.Layer[] {
  const out: tfl.layers.Layer[] = [];
  const walk = (layers: readonly tfl.layers.Layer[]) => {
    for (const l of layers) {
      out.push(l);
      const inner = (l as unknown as { layers?: unknown }).layers;
      if (Array.isArray(inner)) walk(inner as tfl.layers.Layer[]);
    }
  };
  walk(model.layers);
  return out;
}

export interface GuardOptions {
  /** Set dropout rates and noise strengths to 0 for the duration (regularisation off). */
  readonly noiseOff: boolean;
}

/**
 * Runs `fn` on the user's model in place, then puts back every weight (trainable and not: BatchNorm
 * statistics too) bit for bit and every noise layer's rate, also when `fn` throws. In place rather
 * than on a clone: a clone through `getConfig`/`fromConfig` needs every custom layer registered for
 * serialisation and takes new layer names from tfjs's global counters; restoring the tensors is exact.
 * `fn` must be synchronous, so no training elsewhere can see the changed weights in between.
 */
export function onModel<T>(model: tfl.LayersModel, options: GuardOptions, fn: () => T): T {
  const variables = [...new Set(model.weights.map((w) => w.read() as tf.Variable))];
  // tf.clone shares the buffer; training assigns new buffers to the variables, never writes in place
  const saved = variables.map((v) => tf.keep(tf.clone(v)));
  const noise: { layer: Record<string, unknown>; field: string }[] = [];
  if (options.noiseOff) {
    for (const layer of allLayers(model)) {
      for (const n of NOISE) if (n.pattern.test(layer.getClassName())) noise.push({ layer: layer as unknown as Record<string, unknown>, field: n.field });
      for (const cell of cellsOf(layer)) for (const field of CELL_NOISE) if (typeof cell[field] === "number") noise.push({ layer: cell, field });
    }
  }
  const rates = noise.map(({ layer, field }) => layer[field] as number);
  try {
    for (const { layer, field } of noise) layer[field] = 0;
    const out = fn();
    if (out instanceof Promise) throw new TypeError("onModel takes a synchronous function");
    return out;
  } finally {
    noise.forEach(({ layer, field }, i) => (layer[field] = rates[i]!));
    variables.forEach((v, i) => {
      if (v.dataId !== saved[i]!.dataId) v.assign(saved[i]!);
    });
    tf.dispose(saved);
  }
}

/** Trainable variables of the model (deduplicated: a shared layer's weights once). */
export function trainables(model: tfl.LayersModel): tf.Variable[] {
  return [...new Set(model.trainableWeights.map((w) => w.read() as tf.Variable))];
}

/** Reads a scalar tensor and disposes it. */
export function take(t: tf.Tensor): number {
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
}

/**
 * One optimizer step inside the caller's tidy; returns the loss before the step. A loss or layer that
 * throws leaves nothing behind (see `taped`).
 */
export function step(optimizer: tf.Optimizer, lossOf: () => tf.Scalar, vars: tf.Variable[]): number {
  const { value, grads } = taped(lossOf, (f) => optimizer.computeGradients(f as () => tf.Scalar, vars));
  const cost = value.dataSync()[0]!;
  optimizer.applyGradients(grads);
  return cost;
}

/** True when `t` holds a NaN or an infinity. */
export function hasNonFinite(t: tf.Tensor): boolean {
  return tf.tidy(() => !tf.all(tf.isFinite(t)).dataSync()[0]);
}

/**
 * Runs `run` with a version of `f` that does not throw under the gradient tape: tfjs keeps a copy of
 * every op's saved inputs while it records (`keep(clone(...))`) and releases them only in the backward
 * pass, so a forward pass that throws halfway leaks them. The wrapper catches the error, returns a
 * zero (`fallback`: connected to the inputs for `tf.grad`, which refuses an unconnected result before
 * it releases the tape), lets the backward pass release the tape, and then throws the original error.
 */
export function taped<A extends unknown[], R>(f: (...args: A) => tf.Tensor, run: (safe: (...args: A) => tf.Tensor) => R, fallback: (...args: A) => tf.Tensor = () => tf.scalar(0)): R {
  let failure: { error: unknown } | undefined;
  const safe = (...args: A): tf.Tensor => {
    try {
      return f(...args);
    } catch (error) {
      failure ??= { error };
      return fallback(...args);
    }
  };
  let out: R;
  try {
    out = run(safe);
  } catch (e) {
    if (failure) throw failure.error;
    throw e;
  }
  if (failure) throw failure.error;
  return out;
}
