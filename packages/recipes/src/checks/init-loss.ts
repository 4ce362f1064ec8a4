import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { parseOptions, resolveLoss } from "@fitloop/core";
import { z } from "zod";
import { checkInputs, lossSchema, meanLoss, onModel, outputWidth, type CheckData, type CheckLoss } from "./common.js";
import { fmt, type Verdict, type VerdictStatus } from "./verdict.js";

export const verifyInitLossSchema = z.strictObject({
  loss: lossSchema,
  /** The loss a well-initialised model should start at; required for a custom loss function. */
  prior: z.number().min(0, { message: "must be a finite number >= 0" }).optional(),
  /** Relative excess over the expected loss that still passes. */
  tolerance: z.number().gt(0, { message: "must be > 0" }).default(0.25),
  /** Relative excess from which the check fails (between the two: warn). */
  failAbove: z.number().gt(0, { message: "must be > 0" }).default(1),
});
export type VerifyInitLossOptions = z.input<typeof verifyInitLossSchema>;

export interface InitLossDetails {
  /** The label frequencies the prior was computed from (class data), per class. */
  readonly priors?: readonly number[];
}
export type InitLossVerdict = Verdict<InitLossDetails>;

/** The loss of the best constant prediction for these labels, and the loss of an uninformed one (uniform probabilities). */
export interface PriorLoss {
  /** Entropy of the class priors (cross-entropy), variance (MSE), mean absolute deviation from the median (MAE). */
  readonly prior: number;
  /** log C for categorical losses, log 2 for binary: what a model that outputs uniform probabilities gets. */
  readonly uniform: number | undefined;
  readonly priors: readonly number[] | undefined;
}

const entropy = (p: readonly number[]) => p.reduce((s, q) => (q > 0 ? s - q * Math.log(q) : s), 0);

/** The loss of the best input-independent prediction, computed on the host in float64. */
export function priorLoss(loss: CheckLoss, ys: tf.Tensor, classes: number): PriorLoss | undefined {
  if (typeof loss === "function") return undefined;
  const y = ys.dataSync();
  const n = ys.shape[0]!;
  if (loss === "sparseCategoricalCrossentropy") {
    const counts = new Array<number>(classes).fill(0);
    for (const v of y) if (v >= 0 && v < classes) counts[Math.floor(v)]!++;
    const priors = counts.map((c) => c / n);
    return { prior: entropy(priors), uniform: Math.log(classes), priors };
  }
  const width = y.length / n;
  const column = (j: number) => Array.from({ length: n }, (_, i) => y[i * width + j]!);
  const columns = Array.from({ length: width }, (_, j) => column(j));
  const mean = (a: readonly number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  if (loss === "categoricalCrossentropy") {
    const priors = columns.map(mean);
    return { prior: entropy(priors), uniform: Math.log(width), priors };
  }
  if (loss === "binaryCrossentropy") {
    const priors = columns.map(mean);
    return { prior: mean(priors.map((p) => entropy([p, 1 - p]))), uniform: Math.log(2), priors };
  }
  if (loss === "meanSquaredError") return { prior: mean(columns.map((c) => mean(c.map((v) => (v - mean(c)) ** 2)))), uniform: undefined, priors: undefined };
  const median = (c: readonly number[]) => {
    const s = [...c].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  return { prior: mean(columns.map((c) => mean(c.map((v) => Math.abs(v - median(c)))))), uniform: undefined, priors: undefined };
}

/** The loss of predicting 0 for every target (what a fresh regression model about does), and the targets' mean. */
function zeroPredictionLoss(loss: "meanSquaredError" | "meanAbsoluteError", ys: tf.Tensor): { loss: number; mean: number } {
  const y = ys.dataSync();
  let [sum, total] = [0, 0];
  for (const v of y) {
    sum += loss === "meanSquaredError" ? v * v : Math.abs(v);
    total += v;
  }
  return { loss: sum / y.length, mean: total / y.length };
}

/**
 * Loss at initialisation vs what it should be. A fresh classifier that has learned nothing should
 * predict about uniform probabilities: loss log C (2.303 for 10 classes), or the entropy of the class
 * priors when its output bias is set to them; a regression model the targets' variance. Much more
 * means a badly initialised output layer (a large bias, an overconfident scale, logits fed to a loss
 * that expects probabilities) and wasted first steps; labels of one class only (a broken label mapping)
 * make the prior 0. Regression targets that are not centred (y = x + 5) make a healthy fresh model
 * start at about the loss of predicting 0 instead: that warns and names the targets (standardise them,
 * or `priorBiasInit` with their mean). The loss is taken in training mode with dropout off (what the first step sees).
 */
export function verifyInitLoss(model: tfl.LayersModel, data: CheckData, options: VerifyInitLossOptions): InitLossVerdict {
  const o = parseOptions("verifyInitLoss", verifyInitLossSchema, options);
  checkInputs("verifyInitLoss", model, data, true, o.loss);
  const classes = outputWidth(model);
  const initLoss = onModel(model, { noiseOff: true }, () => tf.tidy(() => meanLoss(model, resolveLoss(o.loss), data.xs, data.ys, true).dataSync()[0]!));
  const p = o.prior !== undefined ? { prior: o.prior, uniform: undefined, priors: undefined } : priorLoss(o.loss, data.ys, classes);
  const check = "verifyInitLoss";
  if (!p) {
    return { check, status: "warn", summary: `init loss ${fmt(initLoss)}; no prior is known for a custom loss: pass options.prior to compare`, numbers: { initLoss } };
  }
  const numbers: Record<string, number> = { initLoss, priorLoss: p.prior };
  if (p.uniform !== undefined) numbers["uniformLoss"] = p.uniform;
  const details: InitLossDetails = p.priors ? { priors: p.priors } : {};
  if (!Number.isFinite(initLoss)) return { check, status: "fail", summary: `init loss is ${initLoss}: the model's output or the loss is not finite at initialisation`, numbers, details };
  const present = p.priors?.filter((q) => q > 0).length;
  if (p.prior <= 1e-9) {
    const what = present === 1 ? `every label is class ${p.priors!.findIndex((q) => q > 0)}` : "the targets are constant";
    return { check, status: "fail", summary: `${what} (prior loss 0, init loss ${fmt(initLoss)}): a broken label mapping? nothing to learn from these labels`, numbers, details };
  }
  // What a well-initialised model starts at: uniform probabilities when there are classes, else the prior.
  const expected = p.uniform ?? p.prior;
  const excess = initLoss / expected - 1;
  numbers["expectedLoss"] = expected;
  numbers["excess"] = excess;
  let status: VerdictStatus = excess <= o.tolerance ? "pass" : excess <= o.failAbove ? "warn" : "fail";
  // Regression: a fresh model predicts about 0, which costs mean(y^2) (MSE) or mean |y| (MAE), not the
  // variance, when the targets are not centred. A healthy model then starts high because of the data,
  // not a bug: a warning that names the targets, not a failure that blames the output layer.
  const regression = o.loss === "meanSquaredError" || o.loss === "meanAbsoluteError";
  const zero = regression && o.prior === undefined ? zeroPredictionLoss(o.loss as "meanSquaredError" | "meanAbsoluteError", data.ys) : undefined;
  const uncentred = zero !== undefined && status !== "pass" && zero.loss > p.prior * (1 + o.tolerance) && initLoss <= zero.loss * (1 + o.failAbove);
  if (zero !== undefined) {
    numbers["zeroPredictionLoss"] = zero.loss;
    numbers["targetMean"] = zero.mean;
  }
  if (uncentred) status = "warn";
  const reference =
    o.loss === "binaryCrossentropy" ? `${fmt(expected)} (0.5 per output), prior ${fmt(p.prior)}` : p.uniform !== undefined ? `${fmt(expected)} (uniform over ${classes}), prior ${fmt(p.prior)}` : `prior ${fmt(p.prior)}`;
  let summary = `init loss ${fmt(initLoss)} vs expected ${reference}`;
  if (uncentred) summary += `: ${fmt(excess * 100)}% above, but predicting 0 already costs ${fmt(zero!.loss)}: the targets are not centred or scaled (mean ${fmt(zero!.mean)}); standardise them, or start the output bias at their mean (priorBiasInit(model, { mean }, { kind: "regression" }))`;
  else if (status !== "pass") summary += `: ${fmt(excess * 100)}% too high; a badly initialised output layer (large bias or scale, or logits into a loss that wants probabilities)`;
  else if (initLoss < p.prior * 0.5) summary += "; far below the prior: is the model already trained, or do the labels leak into the inputs?";
  else if (p.uniform !== undefined && p.prior < p.uniform * 0.9) summary += `; classes are imbalanced: an output bias of log(priors) would start at ${fmt(p.prior)}`;
  if (present !== undefined && p.priors && present < p.priors.length && o.loss !== "binaryCrossentropy") summary += `; ${p.priors.length - present} classes have no label in this batch`;
  return { check, status: status === "pass" && initLoss < p.prior * 0.5 ? "warn" : status, summary, numbers, details };
}
