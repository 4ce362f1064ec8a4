import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { parseOptions, Rng } from "@fitloop/core";
import { z } from "zod";
import { checkInputs, forward, onModel, positiveInt, rows, seedSchema, taped, type CheckData } from "./common.js";
import { fmt, type Verdict, type VerdictStatus } from "./verdict.js";

export const checkBatchIndependenceSchema = z.strictObject({
  /** Samples in the batch (the first rows of the data); at least 2. */
  batchSize: z.number().int({ message: "must be an integer >= 2" }).min(2, { message: "must be >= 2 (one sample cannot mix with others)" }).default(8),
  /** Samples whose output is backpropagated, spread over the batch. */
  probes: positiveInt("samples backpropagated").default(3),
  /** `false` (default): inference mode, where nothing may mix. `true` shows what training mode mixes (BatchNorm does). */
  training: z.boolean().default(false),
  /** Seeds the random projection of the output. */
  seed: seedSchema,
});
export type CheckBatchIndependenceOptions = z.input<typeof checkBatchIndependenceSchema>;

export interface IndependenceDetails {
  /** Per probed sample: its index, the largest gradient on its own input, the largest on any other sample's. */
  readonly probes: readonly { readonly sample: number; readonly own: number; readonly others: number; readonly mixedWith: readonly number[] }[];
}
export type IndependenceVerdict = Verdict<IndependenceDetails>;

/**
 * Backpropagates one sample's output (a random projection of it, so a softmax's outputs that sum to
 * 1 do not cancel) to the whole input batch. In inference mode sample i's output may depend on
 * sample i only: a nonzero gradient on any other sample's input means a layer mixes the batch (a
 * reshape or transpose that crosses the batch axis, a normalisation over axis 0, a batch-mean
 * subtraction); then predictions change with what else is in the batch. A zero gradient on its own
 * input means the output ignores the input.
 */
export function checkBatchIndependence(model: tfl.LayersModel, data: Pick<CheckData, "xs">, options: CheckBatchIndependenceOptions = {}): IndependenceVerdict {
  const o = parseOptions("checkBatchIndependence", checkBatchIndependenceSchema, options);
  checkInputs("checkBatchIndependence", model, data, false);
  const check = "checkBatchIndependence";
  const n = Math.min(o.batchSize, data.xs.shape[0]!);
  if (n < 2) return { check, status: "warn", summary: "skipped: needs at least 2 samples", numbers: { batchSize: n } };
  if (data.xs.dtype !== "float32") return { check, status: "warn", summary: `skipped: ${data.xs.dtype} inputs (an embedding's indices) have no gradient`, numbers: { batchSize: n } };
  const picks = [...new Set(Array.from({ length: Math.min(o.probes, n) }, (_, k) => Math.round((k * (n - 1)) / Math.max(1, Math.min(o.probes, n) - 1))))];
  const rng = new Rng(o.seed);
  const probes = onModel(model, { noiseOff: true }, () =>
    tf.tidy(() => {
      const xs = rows(data.xs, 0, n);
      const outShape = forward(model, rows(xs, 0, 1), o.training).shape.slice(1);
      const size = outShape.reduce((a, b) => a * b, 1);
      return picks.map((i) => {
        const r = tf.tensor(Float32Array.from({ length: size }, () => rng.next() * 2 - 1), [1, ...outShape]);
        const g = taped((x: tf.Tensor) => tf.sum(tf.mul(tf.slice(forward(model, x, o.training), [i], [1]), r)), (f) => tf.grad(f)(xs), (x) => tf.sum(tf.mul(x, 0)));
        const perSample = tf.max(tf.abs(tf.reshape(g, [n, -1])), 1).dataSync();
        const others = Array.from(perSample).filter((_, j) => j !== i);
        return { sample: i, own: perSample[i]!, others: Math.max(...others), mixedWith: [...perSample.keys()].filter((j) => j !== i && perSample[j]! > 0) };
      });
    }),
  );
  const own = Math.min(...probes.map((p) => p.own));
  const others = Math.max(...probes.map((p) => p.others));
  // any nonzero cross-sample gradient is mixing: independent rows give exact zeros, not rounding noise
  const finite = probes.every((p) => Number.isFinite(p.own) && Number.isFinite(p.others));
  const status: VerdictStatus = !finite || others > 0 ? "fail" : own > 0 ? "pass" : "warn";
  const mode = o.training ? "training" : "inference";
  const numbers = { ownGradient: own, crossGradient: others, batchSize: n, probes: probes.length };
  const mixed = probes.find((p) => p.mixedWith.length > 0);
  const summary = !finite
    ? `${mode} mode: the gradient of the outputs on the inputs is not finite (NaN/Inf in the inputs, or a layer that overflows); nothing to judge`
    : status === "fail"
      ? `${mode} mode: sample ${mixed!.sample}'s output has gradient up to ${fmt(others)} on ${mixed!.mixedWith.length} other samples' inputs (own ${fmt(mixed!.own)}): a layer mixes information across the batch`
      : status === "warn"
        ? `${mode} mode: the outputs have zero gradient on every input, their own included: the model ignores its inputs (or the gradient is cut)`
        : `${mode} mode: each of ${probes.length} probed outputs depends on its own input only (own gradient >= ${fmt(own)}, others exactly 0)`;
  return { check, status, summary, numbers, details: { probes } };
}
