import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { mixSeed, parseOptions, permutation, resolveLoss, Rng, type LossFn } from "@fitloop/core";
import { z } from "zod";
import { accuracy, checkInputs, forward, fraction, lossSchema, onModel, positiveInt, rows, seedSchema, step, trainables, type CheckData, type CheckLoss } from "./common.js";
import { fmt, type Verdict, type VerdictStatus } from "./verdict.js";

export const inputIndependentBaselineSchema = z.strictObject({
  loss: lossSchema,
  /** Adam steps of each of the two trainings. */
  steps: positiveInt("Adam steps per training").default(150),
  batchSize: positiveInt("samples per step").default(32),
  learningRate: z.number().gt(0, { message: "must be > 0" }).default(1e-3),
  /** The last fraction of the data is held out: both trainings are judged on samples they never saw. */
  heldOut: fraction("held-out share of the data").default(0.25),
  /** Pass when real inputs beat zeros on held-out loss by at least this fraction of the zeros' loss. */
  minGain: fraction("relative improvement that passes").default(0.1),
  /** Seeds the batch order (the same order for both trainings). */
  seed: seedSchema,
});
export type InputIndependentBaselineOptions = z.input<typeof inputIndependentBaselineSchema>;

export interface BaselineDetails {
  /** Mean training loss per step, real inputs. */
  readonly realCurve: readonly number[];
  /** Mean training loss per step, zeroed inputs. */
  readonly zeroCurve: readonly number[];
}
export type BaselineVerdict = Verdict<BaselineDetails>;

/** Fewer held-out samples than this: the verdict warns whatever the gain (a handful of samples is noise). */
const MIN_HELD_OUT = 5;

interface Run {
  readonly curve: number[];
  readonly heldOutLoss: number;
  readonly heldOutAccuracy: number | undefined;
}

/**
 * Two short trainings from the same initial weights with the same batches, dropout off: one on the
 * real inputs, one on zeroed inputs (an input-independent baseline: it can only learn the label
 * priors). Each is judged by its loss on held-out samples, with its own kind of input (real or
 * zeros): held out, so that memorising the training samples (which works even with shuffled labels)
 * does not count. The baseline is the better of the zero-input model and the best constant
 * prediction (the training labels' priors), which a short training on zeros may not reach. Real
 * inputs must do clearly better. When they do not, the model does not use its inputs (multiplied by
 * 0, a disconnected branch) or the labels carry no information about them (shuffled labels, a label
 * mapping that collapses classes, inputs and labels from different orders).
 */
export function inputIndependentBaseline(model: tfl.LayersModel, data: CheckData, options: InputIndependentBaselineOptions): BaselineVerdict {
  const o = parseOptions("inputIndependentBaseline", inputIndependentBaselineSchema, options);
  checkInputs("inputIndependentBaseline", model, data, true, o.loss);
  const n = data.xs.shape[0]!;
  const test = Math.max(1, Math.round(n * o.heldOut));
  const train = n - test;
  const check = "inputIndependentBaseline";
  if (train < 1) return { check, status: "warn", summary: `skipped: ${n} samples are too few to hold ${test} out`, numbers: { samples: n } };
  const lossFn = resolveLoss(o.loss);
  const [real, zero] = ([false, true] as const).map((zeroed) => onModel(model, { noiseOff: true }, () => trainAndScore(model, data, lossFn, o, train, test, zeroed)));
  const prior = priorHeldOut(model, data, o.loss, lossFn, train, test);
  // classification: the better of the two input-independent baselines (a short training on zeros may
  // not reach the priors yet; a bias shift does). Regression: the zero run only, since the target mean
  // of un-centred targets (y = x + 5) is out of reach of a short training with either input
  const regression = o.loss === "meanSquaredError" || o.loss === "meanAbsoluteError";
  const baseline = !regression && prior !== undefined && prior < zero!.heldOutLoss ? prior : zero!.heldOutLoss;
  const gain = 1 - real!.heldOutLoss / baseline;
  const numbers: Record<string, number> = { realLoss: real!.heldOutLoss, zeroLoss: zero!.heldOutLoss, baselineLoss: baseline, gain, trainSamples: train, heldOutSamples: test, steps: o.steps };
  if (prior !== undefined) numbers["priorLoss"] = prior;
  if (real!.heldOutAccuracy !== undefined) numbers["realAccuracy"] = real!.heldOutAccuracy;
  if (zero!.heldOutAccuracy !== undefined) numbers["zeroAccuracy"] = zero!.heldOutAccuracy;
  const finite = Number.isFinite(real!.heldOutLoss) && Number.isFinite(zero!.heldOutLoss) && real!.curve.every(Number.isFinite) && zero!.curve.every(Number.isFinite);
  const graded: VerdictStatus = !finite || !Number.isFinite(gain) ? "fail" : gain >= o.minGain ? "pass" : gain > 0 ? "warn" : "fail";
  // a verdict on a handful of held-out samples is noise either way
  const tooFew = finite && test < MIN_HELD_OUT;
  const status: VerdictStatus = tooFew ? "warn" : graded;
  const acc = real!.heldOutAccuracy !== undefined ? ` (accuracy ${fmt(real!.heldOutAccuracy * 100)}% vs ${fmt(zero!.heldOutAccuracy! * 100)}%)` : "";
  const priorText = prior !== undefined ? `, training-label priors ${fmt(prior)}` : "";
  const head = `held-out loss, real inputs ${fmt(real!.heldOutLoss)} vs zeroed inputs ${fmt(zero!.heldOutLoss)}${acc}${priorText}`;
  const why = !finite
    ? ": a training loss or held-out loss is not finite (NaN/Inf in the inputs or labels, or the training diverged); nothing to compare"
    : tooFew
      ? `: ${graded === "pass" ? `${fmt(gain * 100)}% better` : `gain ${fmt(gain * 100)}%`}, but only ${test} held-out sample${test === 1 ? "" : "s"}: too few to judge (give more data or a larger heldOut)`
      : status === "pass"
        ? `: ${fmt(gain * 100)}% better`
        : `: real inputs are ${status === "warn" ? `only ${fmt(gain * 100)}% better` : "no better"}; the model ignores its inputs, or the labels do not follow from them (shuffled labels, a broken label mapping)`;
  return { check, status, summary: head + why, numbers, details: { realCurve: real!.curve, zeroCurve: zero!.curve } };
}

/**
 * Held-out loss of the best constant prediction fitted to the training labels (class frequencies,
 * target mean or median): what any input-independent model can reach at best. Undefined for a custom loss.
 */
function priorHeldOut(model: tfl.LayersModel, data: CheckData, loss: CheckLoss, lossFn: LossFn, train: number, test: number): number | undefined {
  const outShape = model.outputs[0]!.shape.slice(1);
  if (typeof loss === "function" || outShape.some((d) => d === null)) return undefined;
  const shape = outShape as number[];
  const width = shape.reduce((a, b) => a * b, 1);
  const y = rows(data.ys, 0, train);
  const values = y.dataSync();
  y.dispose();
  const constant = new Float32Array(width);
  if (loss === "sparseCategoricalCrossentropy") {
    // frequencies with a tiny pseudo-count, so a class absent from training is improbable, not impossible
    const counts = new Float64Array(width).fill(0.01);
    for (const v of values) if (v >= 0 && v < width) counts[Math.floor(v)]! += 1;
    const total = counts.reduce((a, b) => a + b, 0);
    counts.forEach((c, j) => (constant[j] = c / total));
  } else {
    if (values.length !== train * width) return undefined;
    for (let j = 0; j < width; j++) {
      const column = Array.from({ length: train }, (_, i) => values[i * width + j]!);
      if (loss === "meanAbsoluteError") {
        column.sort((a, b) => a - b);
        constant[j] = train % 2 ? column[(train - 1) / 2]! : (column[train / 2 - 1]! + column[train / 2]!) / 2;
      } else constant[j] = column.reduce((a, b) => a + b, 0) / train;
    }
  }
  return tf.tidy(() => {
    const pred = tf.tile(tf.tensor(constant, [1, ...shape]), [test, ...shape.map(() => 1)]);
    return tf.mean(lossFn(rows(data.ys, train, test), pred)).dataSync()[0]!;
  });
}

function trainAndScore(model: tfl.LayersModel, data: CheckData, lossFn: LossFn, o: { steps: number; batchSize: number; learningRate: number; seed: number; loss: CheckLoss }, train: number, test: number, zeroed: boolean): Run {
  const prep = (x: tf.Tensor) => (zeroed ? tf.zerosLike(x) : x);
  const trainX = tf.keep(tf.tidy(() => prep(rows(data.xs, 0, train))));
  const trainY = tf.keep(rows(data.ys, 0, train));
  const optimizer = tf.train.adam(o.learningRate);
  const vars = trainables(model);
  const batch = Math.min(o.batchSize, train);
  const perEpoch = Math.max(1, Math.floor(train / batch));
  const curve: number[] = [];
  try {
    let order: Int32Array = new Int32Array(0);
    for (let s = 0; s < o.steps; s++) {
      const b = s % perEpoch;
      // same seed for both runs: the same batches in the same order, only the inputs differ
      if (b === 0) order = permutation(new Rng(mixSeed(o.seed, Math.floor(s / perEpoch))), train);
      const slice = order.subarray(b * batch, (b + 1) * batch);
      const cost = tf.tidy(() => {
        const idx = tf.tensor1d(slice, "int32");
        const xs = tf.gather(trainX, idx);
        const ys = tf.gather(trainY, idx);
        return step(optimizer, () => tf.mean(lossFn(ys, forward(model, xs, true))) as tf.Scalar, vars);
      });
      curve.push(cost);
    }
    return tf.tidy(() => {
      const xs = prep(rows(data.xs, train, test));
      const ys = rows(data.ys, train, test);
      const pred = forward(model, xs, false);
      return { curve, heldOutLoss: tf.mean(lossFn(ys, pred)).dataSync()[0]!, heldOutAccuracy: accuracy(o.loss, ys, pred) };
    });
  } finally {
    optimizer.dispose();
    tf.dispose([trainX, trainY]);
  }
}
