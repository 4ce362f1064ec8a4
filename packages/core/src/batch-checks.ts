import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import type { Batch } from "./callback.js";
import { DataError, ShapeMismatchError, type BatchLocation } from "./errors.js";
import type { LossFn, LossName } from "./losses.js";

/**
 * Checks of every batch during training, after the pre-flight check of the first one (or of all
 * samples, for sources with `peekAll`):
 * - on the host, for free: the batch is two live tensors, with as many labels as samples, of the
 *   model's input shape and of the first batch's label shape (except where the model's output shape is open);
 * - on the device, every `every`-th batch: NaN/Inf in the inputs, and targets the loss cannot take
 *   (NaN/Inf; class indices out of range; cross-entropy targets outside [0, 1]). These are two
 *   scalars that ride in the step's one packed read, so they cost a few small kernels and no
 *   extra device read; only a batch found bad is read back, to name the sample.
 * A bad training batch is refused before its update is applied.
 */
export class BatchChecker {
  private labelTail: readonly number[] | undefined;
  private readonly inputTail: readonly (number | null)[];
  /** The model's output shape without the batch dim: a label dim the model leaves open (null) may vary by batch. */
  private readonly outputTail: readonly (number | null)[];

  constructor(
    private readonly model: LayersModel,
    private readonly loss: LossName | LossFn,
    readonly role: "train" | "validation",
    /** Device checks every Nth batch; 0: none after the pre-flight. */
    private readonly every: number,
    /** The pre-flight scanned every sample the batches are made of (`peekCoversBatches`): no device checks. */
    covered: boolean,
  ) {
    this.inputTail = (model.inputs[0]?.shape ?? []).slice(1);
    this.outputTail = (model.outputs[0]?.shape ?? []).slice(1);
    if (covered) this.every = 0;
  }

  /** Structure and shapes of one batch; throws before any work on it. */
  checkShapes(batch: unknown, where: BatchLocation): asserts batch is Batch {
    const at = describe(where);
    if (typeof batch !== "object" || batch === null) throw new DataError("INVALID_BATCH", `${at}: a batch must be { xs, ys } tensors, got ${batch === null ? "null" : typeof batch}`, { batch: where });
    for (const key of ["xs", "ys"] as const) {
      const t = (batch as Record<string, unknown>)[key];
      if (!(t instanceof tf.Tensor)) throw new DataError("INVALID_BATCH", `${at}: ${key} is not a tensor (got ${t === null ? "null" : typeof t})`, { batch: where });
      if (t.isDisposed) throw new DataError("INVALID_BATCH", `${at}: ${key} was already disposed (the loop owns yielded tensors: yield new ones per batch)`, { batch: where });
    }
    const { xs, ys } = batch as Batch;
    const n = xs.shape[0];
    if (xs.rank === 0 || n === 0) throw new DataError("EMPTY_DATA", `${at}: the batch has no samples (xs shape [${xs.shape.join(",")}])`, { batch: where });
    if (ys.shape[0] !== n) throw new DataError("LENGTH_MISMATCH", `${at}: xs has ${n} samples but ys has ${String(ys.shape[0])}`, { batch: where });
    const tail = xs.shape.slice(1);
    if (tail.length !== this.inputTail.length || this.inputTail.some((d, i) => d !== null && d !== tail[i])) {
      throw new ShapeMismatchError(`${at}: inputs have shape [${xs.shape.join(",")}] but the model expects [batch,${this.inputTail.map((d) => d ?? "any").join(",")}]`, where);
    }
    const labels = ys.shape.slice(1);
    const first = this.labelTail;
    if (first === undefined) this.labelTail = labels;
    else {
      // labels shaped like the output (regression, one-hot, sequences) may vary where the output is open: a
      // variable-length sequence padded per batch; elsewhere they keep the first batch's shape
      const open = (i: number) => labels.length === this.outputTail.length && this.outputTail[i] === null;
      if (labels.length !== first.length || labels.some((d, i) => d !== first[i] && !open(i))) {
        throw new ShapeMismatchError(`${at}: labels have shape [${ys.shape.join(",")}] but earlier batches had [batch,${first.map((d, i) => (open(i) ? "any" : d)).join(",")}]`, where);
      }
    }
  }

  /** Whether the batch at this position gets the device checks. */
  due(position: number): boolean {
    return this.every > 0 && position % this.every === 0;
  }

  /**
   * Two scalars: `[inputs, targets]`, each 0 for a clean batch and NaN or > 0 otherwise; the
   * caller disposes them.
   */
  flags(batch: Batch, outputShape: readonly number[]): [tf.Scalar, tf.Scalar] {
    // the kernel reads labels as float32 or int32 words: other dtypes (bool: one byte each) take the op path
    if ((batch.ys.dtype === "float32" || batch.ys.dtype === "int32") && tf.getKernel(BATCH_CHECK_KERNEL, tf.getBackend())) {
      const attrs = { target: targetRule(this.loss), classes: outputShape[outputShape.length - 1] ?? 0 };
      return tf.engine().runKernel(BATCH_CHECK_KERNEL, { xs: batch.xs, ys: batch.ys }, attrs as unknown as tf.NamedAttrMap) as unknown as [tf.Scalar, tf.Scalar];
    }
    return tf.tidy(() => {
      const x = batch.xs.dtype === "float32" ? tf.sum(tf.mul(batch.xs, 0)) : tf.scalar(0); // NaN iff some value is NaN or +-Inf
      return [x as tf.Scalar, targetFlag(this.loss, batch.ys, outputShape)];
    });
  }

  /** After the read: throws the `DataError` that names the sample when a flag is set. */
  async explain(flags: ArrayLike<number>, batch: Batch | undefined, where: BatchLocation, outputShape: readonly number[]): Promise<void> {
    const badInputs = flags[0] !== 0;
    const badTargets = flags[1] !== 0;
    if (!badInputs && !badTargets) return;
    const at = describe(where);
    if (!batch) {
      // validation: the batch is gone by the time its flags are read
      const code = badInputs ? "NON_FINITE_INPUT" : targetRule(this.loss) === "finite" ? "NON_FINITE_TARGET" : "LABEL_OUT_OF_RANGE";
      throw new DataError(code, `${at}: ${badInputs ? "inputs contain NaN or Inf" : `a target is invalid (${ruleText(this.loss, outputShape)})`}`, { batch: where });
    }
    if (badInputs) {
      const bad = await firstNonFinite(batch.xs);
      throw new DataError("NON_FINITE_INPUT", `${at}, sample ${bad?.index ?? "?"} of the batch: input contains ${bad?.value ?? "NaN/Inf"}${bad ? ` at feature ${bad.feature}` : ""}; the batch was refused before its update`, { batch: where, ...(bad ? { sampleIndex: bad.index } : {}) });
    }
    const values = await batch.ys.data();
    const found = findBadTarget(this.loss, values, outputShape, batch.ys.shape[0] ?? 1);
    throw new DataError(found?.code ?? "INVALID_TARGET", `${at}, sample ${found?.sample ?? "?"} of the batch: target ${found ? String(found.value) : "?"} is invalid (${ruleText(this.loss, outputShape)}); the batch was refused before its update`, { batch: where, ...(found ? { sampleIndex: found.sample } : {}) });
  }
}

/**
 * The fused kernel of this check (one dispatch; fitloop's wasm kernels register it). Elsewhere the
 * same flags come from a few tfjs ops.
 */
export const BATCH_CHECK_KERNEL = "FitloopBatchCheck";

function targetRule(loss: LossName | LossFn): "none" | "finite" | "unit" | "classes" {
  if (typeof loss === "function") return "none";
  if (loss === "sparseCategoricalCrossentropy") return "classes";
  return loss === "categoricalCrossentropy" || loss === "binaryCrossentropy" ? "unit" : "finite";
}

/** "train batch 3 of epoch 0 (0-based)": how errors name a batch. */
export function describe(where: BatchLocation): string {
  return `${where.role} batch ${where.index} of epoch ${where.epoch} (0-based)`;
}

/** 0 for valid targets, NaN or > 0 otherwise. Custom losses define their own targets: NaN there may be a mask. */
function targetFlag(loss: LossName | LossFn, ys: tf.Tensor, outputShape: readonly number[]): tf.Scalar {
  if (typeof loss === "function") return tf.scalar(0);
  const y = ys.dtype === "float32" ? ys : tf.cast(ys, "float32");
  const nonFinite = tf.mul(y, 0);
  if (loss === "sparseCategoricalCrossentropy") {
    const top = outputShape[outputShape.length - 1]! - 1;
    return tf.sum(tf.addN([nonFinite, tf.relu(tf.neg(y)), tf.relu(tf.sub(y, top)), tf.abs(tf.sub(y, tf.floor(y)))]));
  }
  if (loss === "categoricalCrossentropy" || loss === "binaryCrossentropy") return tf.sum(tf.addN([nonFinite, tf.relu(tf.neg(y)), tf.relu(tf.sub(y, 1))]));
  return tf.sum(nonFinite);
}

function ruleText(loss: LossName | LossFn, outputShape: readonly number[]): string {
  if (loss === "sparseCategoricalCrossentropy") return `sparseCategoricalCrossentropy takes integer class indices in [0, ${outputShape[outputShape.length - 1]! - 1}]`;
  if (loss === "categoricalCrossentropy" || loss === "binaryCrossentropy") return `${String(loss)} takes finite targets in [0, 1]`;
  return `${typeof loss === "string" ? loss : "the loss"} takes finite targets, not NaN or Inf`;
}

/** The first target the loss cannot take: its sample (row), value and error code. */
export function findBadTarget(loss: LossName | LossFn, values: ArrayLike<number>, outputShape: readonly number[], samples: number): { sample: number; value: number; code: string } | undefined {
  if (typeof loss === "function") return undefined;
  const per = Math.max(1, values.length / Math.max(1, samples));
  const classes = outputShape[outputShape.length - 1]!;
  const regression = loss !== "sparseCategoricalCrossentropy" && loss !== "categoricalCrossentropy" && loss !== "binaryCrossentropy";
  const bad =
    loss === "sparseCategoricalCrossentropy"
      ? (v: number) => !Number.isInteger(v) || v < 0 || v >= classes
      : loss === "categoricalCrossentropy" || loss === "binaryCrossentropy"
        ? (v: number) => !(v >= 0 && v <= 1)
        : (v: number) => !Number.isFinite(v);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (bad(v)) return { sample: Math.floor(i / per), value: v, code: regression ? "NON_FINITE_TARGET" : "LABEL_OUT_OF_RANGE" };
  }
  return undefined;
}

/** The first sample with a NaN/Inf input: its index, feature and value (reads the batch back). */
export async function firstNonFinite(xs: tf.Tensor): Promise<{ index: number; feature: number; value: string } | undefined> {
  if (xs.dtype !== "float32") return undefined;
  const n = xs.shape[0]!;
  const flags = tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(tf.reshape(xs, [n, -1]))), 1));
  const rows = await flags.data();
  flags.dispose();
  const index = rows.findIndex((v) => v !== 0);
  if (index < 0) return undefined;
  // gather, not slice: tfjs-wasm's Slice copies the whole source tensor to JS first
  const row = tf.tidy(() => tf.reshape(tf.gather(xs, tf.tensor1d([index], "int32")), [-1]));
  const values = await row.data();
  row.dispose();
  const feature = values.findIndex((v) => !Number.isFinite(v));
  return { index, feature, value: String(values[feature]) };
}
