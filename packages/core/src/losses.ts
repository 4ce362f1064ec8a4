import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, type OptionIssue } from "./errors.js";
import { metrics as layerMetrics } from "@tensorflow/tfjs-layers";

/** Per-sample (or already reduced) loss or metric; the loop takes the mean. */
export type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

export const LOSS_NAMES = [
  "sparseCategoricalCrossentropy",
  "categoricalCrossentropy",
  "binaryCrossentropy",
  "meanSquaredError",
  "meanAbsoluteError",
] as const;
export type LossName = (typeof LOSS_NAMES)[number];

/** The same functions `model.fit` uses for these names (tfjs-layers), so results match. */
const LOSSES: Record<LossName, LossFn> = {
  sparseCategoricalCrossentropy: (t, p) => sparseCE(t, p),
  categoricalCrossentropy: (t, p) => layerMetrics.categoricalCrossentropy(t, p),
  binaryCrossentropy: (t, p) => layerMetrics.binaryCrossentropy(t, p),
  meanSquaredError: (t, p) => layerMetrics.meanSquaredError(t, p),
  meanAbsoluteError: (t, p) => layerMetrics.meanAbsoluteError(t, p),
};

/**
 * The one-kernel sparse cross-entropy a backend package may register (`@fitloop/wasm` does, on wasm,
 * with its gradient: the kernel name is the contract, core does not import the package). Inputs
 * `probs` float32 [N, C] and `labels` int32 or float32 [N] (floored by the kernel); attrs `{epsilon}`;
 * output the per-sample loss [N], the values of the tfjs ops below.
 */
const SPARSE_CE_KERNEL = "FitloopSparseCrossentropy";
/**
 * tfjs-layers' fuzz factor: its `epsilon()` (the first backend's `epsilon()`, 1e-7 on float32
 * backends) is not exported from tfjs-layers' entry point, so its default is written here.
 */
const LAYERS_EPSILON = 1e-7;

/** The registered one-kernel loss for float32 [N, C] predictions and [N] or [N, 1] labels, else undefined. */
function fusedSparseCE(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor | undefined {
  if (yPred.dtype !== "float32" || yPred.rank !== 2 || (yTrue.dtype !== "int32" && yTrue.dtype !== "float32")) return undefined;
  const n = yPred.shape[0]!;
  if (yTrue.shape[0] !== n || !(yTrue.rank === 1 || (yTrue.rank === 2 && yTrue.shape[1] === 1))) return undefined;
  if (!tf.getKernel(SPARSE_CE_KERNEL, tf.getBackend())) return undefined;
  return tf.tidy(() => {
    const labels = yTrue.rank === 1 ? yTrue : tf.reshape(yTrue, [n]);
    return tf.engine().runKernel(SPARSE_CE_KERNEL, { probs: yPred, labels }, { epsilon: LAYERS_EPSILON }) as tf.Tensor;
  });
}

function sparseCE(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  const fused = fusedSparseCE(yTrue, yPred);
  if (fused) return fused;
  return tf.tidy(() => {
    const numClasses = yPred.shape[yPred.shape.length - 1]!;
    const flat = tf.reshape(yTrue, [-1]);
    const labels = flat.dtype === "int32" ? flat : tf.cast(tf.floor(flat), "int32");
    const oneHot = tf.reshape(tf.oneHot(labels, numClasses), yPred.shape);
    return layerMetrics.categoricalCrossentropy(oneHot, yPred);
  });
}

export function resolveLoss(loss: LossName | LossFn): LossFn {
  return typeof loss === "function" ? loss : LOSSES[loss];
}

/** Accuracy that fits the loss: sparse, categorical (one-hot/soft labels) or binary. */
export function accuracyFor(loss: LossName | LossFn): LossFn {
  if (loss === "sparseCategoricalCrossentropy") {
    return (t, p) => tf.tidy(() => tf.cast(tf.equal(tf.cast(tf.reshape(t, [-1]), "int32"), tf.argMax(p, -1)), "float32"));
  }
  if (loss === "binaryCrossentropy") return (t, p) => layerMetrics.binaryAccuracy(t, p);
  return (t, p) => layerMetrics.categoricalAccuracy(t, p);
}

/** Metrics by log name. Strings `"acc"`/`"accuracy"` pick the accuracy that fits the loss. */
export type MetricSpec = "acc" | "accuracy" | Record<string, LossFn>;

export function resolveMetrics(specs: readonly MetricSpec[], loss: LossName | LossFn): [string, LossFn][] {
  const out: [string, LossFn][] = [];
  for (const spec of specs) {
    if (spec === "acc" || spec === "accuracy") out.push([spec, accuracyFor(loss)]);
    else for (const [name, fn] of Object.entries(spec)) out.push([name, fn]);
  }
  // a metric under a name the loop writes would overwrite that log silently
  const issues: OptionIssue[] = [];
  const seen = new Set<string>();
  out.forEach(([name], i) => {
    if (name === "loss" || name === "lr" || name.startsWith("val_") || name.length === 0) issues.push({ path: `metrics[${i}]`, message: `"${name}" is a name the loop writes (loss, lr, val_*); choose another` });
    else if (seen.has(name)) issues.push({ path: `metrics[${i}]`, message: `"${name}" appears twice` });
    seen.add(name);
  });
  if (issues.length) throw new OptionsError("Trainer", issues);
  return out;
}
