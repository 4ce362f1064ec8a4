import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { DataError, OptionsError, ShapeMismatchError, parseOptions } from "@fitloop/core";
import { z } from "zod";
import { ownActivation, type Layer } from "./activation.js";

type LayerVariable = LayersModel["weights"][number];

export type PriorKind = "softmax" | "sigmoid" | "regression";

/**
 * Where the priors come from: the training labels (class indices `[n]`, one-hot or multi-hot
 * `[n, K]`, regression targets `[n]` or `[n, K]`; a plain array is one column), the class
 * probabilities themselves, or (regression) the target means.
 */
export type PriorSource = { readonly labels: tf.Tensor | ArrayLike<number> } | { readonly priors: readonly number[] } | { readonly mean: number | readonly number[] };

const optionsSchema = z.strictObject({
  kind: z.enum(["softmax", "sigmoid", "regression"], { message: 'must be "softmax" (bias = log priors), "sigmoid" (bias = log(p/(1-p))) or "regression" (bias = target mean)' }).optional(),
  layer: z.string().min(1, { message: "must be a layer name" }).optional(),
  kernelScale: z.number({ message: "must be a finite number >= 0" }).min(0, { message: "must be >= 0 (0 zeroes the kernel: the first loss is exactly the prior's; 1 leaves it alone)" }).default(0.1),
  eps: z.number({ message: "must be a number in (0, 0.5)" }).gt(0, { message: "must be > 0" }).lt(0.5, { message: "must be < 0.5" }).default(1e-6),
});

export interface PriorBiasOptions {
  /** Default: from the output activation (softmax, sigmoid); required when it is linear (logits or regression). */
  kind?: PriorKind;
  /** The layer whose bias is set; default the layer that makes the model's (single) output, behind any Activation layer. */
  layer?: string;
  /**
   * Multiplies that layer's kernel; default 0.1, 1 leaves it alone. The bias sets the first
   * prediction only when the kernel's contribution is small: with a Glorot kernel over ReLU features
   * the logits have a variance near 1 and the first loss stays well above the priors' (measured on
   * a ReLU MLP with priors 0.8/0.15/0.05: 1.01 with 1, 0.613 with 0.1, for 0.6129). Karpathy's
   * makemore scales the last layer by 0.01 for the same reason.
   */
  kernelScale?: number;
  /** Probabilities are clamped to `[eps, 1 - eps]` so an absent class gives a finite bias. Default 1e-6. */
  eps?: number;
}

export interface PriorBiasResult {
  readonly layer: string;
  readonly kind: PriorKind;
  /** Class priors (softmax: sum 1; sigmoid: per unit) or target means (regression). */
  readonly priors: readonly number[];
  readonly bias: readonly number[];
  /**
   * The loss of a model that outputs exactly the bias: the priors' entropy (softmax), the mean binary
   * entropy (sigmoid), the targets' variance (regression, from labels); `undefined` for given means.
   */
  readonly expectedLoss: number | undefined;
  toString(): string;
}

const PASS_BACK: ReadonlySet<string> = new Set(["Activation", "Softmax", "Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Flatten", "Reshape"]);

const roleOf = (w: LayerVariable) => (w.originalName ?? w.name).split("/").pop()!;

/** The layer with the output bias and the activation its output goes through. */
function outputLayer(model: LayersModel, name: string | undefined): { layer: Layer; activation: string } {
  const fail = (message: string) => new OptionsError("priorBiasInit", [{ path: "layer", message }]);
  let layer: Layer | undefined;
  let activation: string | undefined;
  if (name !== undefined) {
    layer = model.layers.find((l) => l.name === name);
    if (!layer) throw fail(`no layer named "${name}"; the model's layers: ${model.layers.map((l) => l.name).join(", ")}`);
  } else {
    if (model.outputs.length !== 1) throw fail(`the model has ${model.outputs.length} outputs: name the layer whose bias to set`);
    layer = model.outputs[0]!.sourceLayer as Layer;
    // Dense(linear) -> Activation("softmax"): the bias is the Dense's, the activation the next layer's
    while (!layer.weights.some((w) => roleOf(w) === "bias") && PASS_BACK.has(layer.getClassName())) {
      if (activation === undefined) activation = layer.getClassName() === "Softmax" ? "softmax" : ownActivation(layer);
      const before: Layer[] = layer.inboundNodes[0]?.inboundLayers ?? [];
      if (before.length !== 1) break;
      layer = before[0]!;
    }
  }
  if (!layer.weights.some((w) => roleOf(w) === "bias")) throw fail(`layer "${layer.name}" (${layer.getClassName()}) has no bias (useBias: false?)`);
  return { layer, activation: activation ?? ownActivation(layer) ?? "linear" };
}

/** Labels as rows x cols numbers (a tensor is read once). */
function readLabels(labels: tf.Tensor | ArrayLike<number>): { values: ArrayLike<number>; rows: number; cols: number } {
  if (labels instanceof tf.Tensor) {
    if (labels.rank !== 1 && labels.rank !== 2) throw new ShapeMismatchError(`priorBiasInit: labels must be [n] or [n, K], got shape [${labels.shape.join(", ")}]`);
    return { values: labels.dataSync(), rows: labels.shape[0]!, cols: labels.rank === 2 ? labels.shape[1]! : 1 };
  }
  return { values: labels, rows: labels.length, cols: 1 };
}

function priorsFromLabels(kind: PriorKind, labels: tf.Tensor | ArrayLike<number>, units: number): { priors: number[]; variance?: number } {
  const { values, rows, cols } = readLabels(labels);
  if (rows === 0) throw new DataError("EMPTY_DATA", "priorBiasInit: the labels are empty");
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new DataError("NON_FINITE_TARGET", `priorBiasInit: label of sample ${Math.floor(i / cols)} is ${values[i]}`, Math.floor(i / cols));
  }
  if (kind === "softmax" && cols === 1) {
    const counts = new Array<number>(units).fill(0);
    for (let i = 0; i < rows; i++) {
      const c = values[i]!;
      if (!Number.isInteger(c) || c < 0 || c >= units) throw new DataError("LABEL_OUT_OF_RANGE", `priorBiasInit: label ${c} of sample ${i} is not a class index in [0, ${units}) (the output has ${units} units)`, i);
      counts[c]!++;
    }
    return { priors: counts.map((k) => k / rows) };
  }
  if (cols !== units) throw new ShapeMismatchError(`priorBiasInit: labels have ${cols} column${cols > 1 ? "s" : ""} but the output has ${units} units`);
  const mean = new Array<number>(cols).fill(0);
  for (let i = 0; i < values.length; i++) mean[i % cols]! += values[i]! / rows;
  if (kind !== "regression") {
    for (let i = 0; i < values.length; i++) {
      if (values[i]! < 0 || values[i]! > 1) throw new DataError("LABEL_OUT_OF_RANGE", `priorBiasInit: label ${values[i]} of sample ${Math.floor(i / cols)} is outside [0, 1]`, Math.floor(i / cols));
    }
    return { priors: mean };
  }
  let variance = 0;
  for (let i = 0; i < values.length; i++) variance += (values[i]! - mean[i % cols]!) ** 2;
  return { priors: mean, variance: variance / values.length };
}

const entropy = (p: readonly number[]) => -p.reduce((s, q) => s + (q > 0 ? q * Math.log(q) : 0), 0);
const binaryEntropy = (p: number) => entropy([p, 1 - p]);

/**
 * Sets the output layer's bias from the class priors so training starts at the loss of predicting
 * the priors (Karpathy, "A Recipe for Training Neural Networks": init well): softmax `log p_k`,
 * sigmoid `log(p / (1 - p))`, regression the target mean. On an imbalanced problem the first steps
 * then learn features rather than the class frequencies (the "hockey stick" in the loss).
 */
export function priorBiasInit(model: LayersModel, source: PriorSource, options: PriorBiasOptions = {}): PriorBiasResult {
  const o = parseOptions("priorBiasInit", optionsSchema, options);
  const { layer, activation } = outputLayer(model, o.layer);
  const fits: Record<PriorKind, readonly string[]> = { softmax: ["softmax", "linear"], sigmoid: ["sigmoid", "linear"], regression: ["linear"] };
  const kind = o.kind ?? (activation === "softmax" || activation === "sigmoid" ? activation : undefined);
  if (kind === undefined) throw new OptionsError("priorBiasInit", [{ path: "kind", message: `is required: the output activation of "${layer.name}" is ${activation} (give "regression", or "softmax"/"sigmoid" when the outputs are logits)` }]);
  if (!fits[kind].includes(activation)) throw new OptionsError("priorBiasInit", [{ path: "kind", message: `"${kind}" does not fit the output activation ${activation} of "${layer.name}" (expects ${fits[kind].join(" or ")})` }]);
  const biasVar = layer.weights.find((w) => roleOf(w) === "bias")!;
  const units = biasVar.shape[biasVar.shape.length - 1]!;
  const bad = (path: string, message: string) => new OptionsError("priorBiasInit", [{ path, message }]);

  let priors: number[];
  let variance: number | undefined;
  if ("labels" in source) ({ priors, variance } = priorsFromLabels(kind, source.labels, units));
  else if ("priors" in source) {
    if (kind === "regression") throw bad("priors", 'is for "softmax" and "sigmoid"; for regression give { mean } or { labels }');
    priors = [...source.priors];
    if (priors.length !== units) throw bad("priors", `has ${priors.length} values but the output has ${units} units`);
    if (priors.some((p) => !(p >= 0 && p <= 1))) throw bad("priors", "must be probabilities in [0, 1]");
    if (kind === "softmax" && Math.abs(priors.reduce((a, b) => a + b, 0) - 1) > 1e-3) throw bad("priors", `must sum to 1 for softmax, got ${priors.reduce((a, b) => a + b, 0)}`);
  } else if ("mean" in source) {
    if (kind !== "regression") throw bad("mean", 'is for "regression"; for classes give { priors } or { labels }');
    priors = typeof source.mean === "number" ? new Array<number>(units).fill(source.mean) : [...source.mean];
    if (priors.length !== units || priors.some((m) => !Number.isFinite(m))) throw bad("mean", `must be a finite number or ${units} finite numbers (one per output)`);
  } else throw bad("source", "must be { labels }, { priors } or { mean }");

  const clamp = (p: number) => Math.min(1 - o.eps, Math.max(o.eps, p));
  const bias = kind === "softmax" ? priors.map((p) => Math.log(clamp(p))) : kind === "sigmoid" ? priors.map((p) => Math.log(clamp(p) / (1 - clamp(p)))) : priors;
  const expectedLoss = kind === "softmax" ? entropy(priors) : kind === "sigmoid" ? priors.reduce((s, p) => s + binaryEntropy(p), 0) / priors.length : variance;

  const b = tf.tensor1d(bias, "float32");
  biasVar.write(b);
  b.dispose();
  if (o.kernelScale !== 1) {
    const kernel = layer.weights.find((w) => roleOf(w) === "kernel");
    if (kernel) {
      const scaled = tf.tidy(() => tf.mul(kernel.read(), o.kernelScale));
      kernel.write(scaled);
      scaled.dispose();
    }
  }
  const fmt = (v: readonly number[]) => `[${v.map((x) => Number(x.toPrecision(4))).join(", ")}]`;
  const text = `priorBiasInit: ${layer.name} (${kind}) bias ${fmt(bias)} from ${kind === "regression" ? "target means" : "priors"} ${fmt(priors)}${expectedLoss !== undefined ? `; the loss at the priors is ${expectedLoss.toPrecision(4)}` : ""}${o.kernelScale !== 1 ? `; kernel x ${o.kernelScale}` : ""}`;
  return { layer: layer.name, kind, priors, bias, expectedLoss, toString: () => text };
}
