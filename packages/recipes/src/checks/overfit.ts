import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { parseOptions, resolveLoss } from "@fitloop/core";
import { z } from "zod";
import { accuracy, checkInputs, forward, lossSchema, onModel, positiveInt, rows, step, trainables, type CheckData } from "./common.js";
import { fmt, type Verdict, type VerdictStatus } from "./verdict.js";

export const overfitOneBatchSchema = z.strictObject({
  loss: lossSchema,
  /** Samples of the batch (the first rows of the data). */
  batchSize: positiveInt("samples in the batch").default(16),
  /** Most Adam steps. */
  steps: positiveInt("Adam steps").default(200),
  learningRate: z.number().gt(0, { message: "must be > 0" }).default(3e-3),
  /** Pass once the loss is at most this fraction of the initial loss. */
  target: z.number().gt(0, { message: "must be in (0, 1)" }).lt(1, { message: "must be in (0, 1)" }).default(0.02),
  /** Warn (not fail) when the loss fell to at most this fraction without reaching the target. */
  warnAt: z.number().gt(0, { message: "must be in (0, 1)" }).lt(1, { message: "must be in (0, 1)" }).default(0.2),
});
export type OverfitOneBatchOptions = z.input<typeof overfitOneBatchSchema>;

export interface OverfitDetails {
  /** Loss before the first step, then after each step (stops early at the target). */
  readonly curve: readonly number[];
}
export type OverfitVerdict = Verdict<OverfitDetails>;

/**
 * Drives the loss on one small batch towards zero with Adam, regularisation off: dropout and noise
 * layers at rate 0, and only the data loss (weight regularisers are not added). A model that cannot
 * memorise 16 samples has a bug in its wiring (inputs ignored, a frozen or detached layer, a loss that
 * does not fit the output) or is far too small. Training mode (BatchNorm uses batch statistics), on
 * the user's model in place; every weight is put back afterwards. Stops as soon as the target is met.
 */
export function overfitOneBatch(model: tfl.LayersModel, data: CheckData, options: OverfitOneBatchOptions): OverfitVerdict {
  const o = parseOptions("overfitOneBatch", overfitOneBatchSchema, options);
  checkInputs("overfitOneBatch", model, data, true, o.loss);
  const n = Math.min(o.batchSize, data.xs.shape[0]!);
  const lossFn = resolveLoss(o.loss);
  const { curve, finalAccuracy } = onModel(model, { noiseOff: true }, () => {
    const xs = tf.keep(rows(data.xs, 0, n));
    const ys = tf.keep(rows(data.ys, 0, n));
    const optimizer = tf.train.adam(o.learningRate);
    const vars = trainables(model);
    const lossOf = () => tf.mean(lossFn(ys, forward(model, xs, true))) as tf.Scalar;
    try {
      // minimize returns the loss before its step: curve[i] is the loss after i steps, one forward per step
      const curve: number[] = [];
      let goal = -Infinity;
      for (let s = 0; s < o.steps; s++) {
        const before = tf.tidy(() => step(optimizer, lossOf, vars));
        curve.push(before);
        if (s === 0) goal = before * o.target;
        if (before <= goal || !Number.isFinite(before)) break;
      }
      if (curve.length === o.steps && curve.at(-1)! > goal) curve.push(tf.tidy(() => lossOf().dataSync()[0]!));
      // training mode, like the loss (BatchNorm's moving statistics lag behind a few steps)
      const finalAccuracy = tf.tidy(() => accuracy(o.loss, ys, forward(model, xs, true)));
      return { curve, finalAccuracy };
    } finally {
      optimizer.dispose();
      tf.dispose([xs, ys]);
    }
  });
  const initial = curve[0]!;
  const final = curve.at(-1)!;
  const steps = curve.length - 1;
  const ratio = final / initial;
  const numbers: Record<string, number> = { initialLoss: initial, finalLoss: final, ratio, steps, batchSize: n };
  if (finalAccuracy !== undefined) numbers["accuracy"] = finalAccuracy;
  const status: VerdictStatus = !Number.isFinite(final) ? "fail" : ratio <= o.target ? "pass" : ratio <= o.warnAt ? "warn" : "fail";
  const acc = finalAccuracy !== undefined ? `, batch accuracy ${fmt(finalAccuracy * 100)}%` : "";
  const head = `loss on ${n} samples ${fmt(initial)} -> ${fmt(final)} in ${steps} steps (${fmt(ratio * 100)}% of initial${acc})`;
  const why =
    status === "pass"
      ? ""
      : !Number.isFinite(final)
        ? ": the loss became non-finite; learning rate too high, or a NaN in the model"
        : status === "warn"
          ? `: fell but not to ${fmt(o.target * 100)}%; give it more steps, or the model is small for its task`
          : ": cannot memorise one batch; inputs ignored, a detached or frozen layer, or a loss that does not fit the output?";
  return { check: "overfitOneBatch", status, summary: head + why, numbers, details: { curve } };
}
