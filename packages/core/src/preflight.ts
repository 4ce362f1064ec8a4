import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import type { Batch } from "./callback.js";
import type { DataSource } from "./data.js";
import { DataError, ShapeMismatchError } from "./errors.js";
import type { LossFn, LossName } from "./losses.js";
import { findBadTarget, firstNonFinite } from "./batch-checks.js";

/**
 * Checks data against the model before the first step: empty sources, input shapes, NaN/Inf in
 * inputs, labels that do not fit the output and the loss. Sources with `peekAll` are scanned in
 * full; streaming sources are checked on their first batch.
 */
export async function preflight(model: LayersModel, loss: LossName | LossFn, data: DataSource, role: "train" | "validation"): Promise<void> {
  if (data.size === 0 || data.batchesPerEpoch === 0) throw new DataError("EMPTY_DATA", `${role} data is empty (0 samples)`);
  const all = data.peekAll?.();
  if (all) {
    try {
      return await checkBatch(model, loss, all, role);
    } finally {
      data.releasePeek?.(); // the scan is done, passed or not: the source's copy is not needed any more
    }
  }
  const first = await firstBatch(data);
  if (!first) throw new DataError("EMPTY_DATA", `${role} data yielded no batches`);
  try {
    await checkBatch(model, loss, first, role);
  } finally {
    tf.dispose([first.xs, first.ys]);
  }
}

async function firstBatch(data: DataSource): Promise<Batch | undefined> {
  const source = data.batches({ epoch: 0, batchIndex: 0 });
  const it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (source as Iterable<Batch>)[Symbol.iterator]();
  const r = await it.next();
  await it.return?.();
  return r.done ? undefined : r.value;
}

async function checkBatch(model: LayersModel, loss: LossName | LossFn, batch: Batch, role: string): Promise<void> {
  const { xs, ys } = batch;
  const n = xs.shape[0] ?? 0;
  if (n === 0) throw new DataError("EMPTY_DATA", `${role} data has a batch with 0 samples`);
  if (ys.shape[0] !== n) throw new DataError("LENGTH_MISMATCH", `${role} data: xs has ${n} samples but ys has ${String(ys.shape[0])}`);
  const inShape = model.inputs[0]?.shape ?? [];
  const want = inShape.slice(1);
  const got = xs.shape.slice(1);
  if (want.length !== got.length || want.some((d, i) => d !== null && d !== got[i])) {
    throw new ShapeMismatchError(`${role} inputs have shape [${xs.shape.join(",")}] but the model expects [${inShape.map((d) => d ?? "batch").join(",")}]`);
  }
  // Tensors are immutable: one already scanned clean is not scanned again by the next fit().
  const bad = cleanInputs.has(xs) ? undefined : await firstNonFinite(xs);
  if (bad === undefined) cleanInputs.add(xs);
  if (bad !== undefined) {
    throw new DataError("NON_FINITE_INPUT", `${role} input sample ${bad.index} contains ${bad.value} at feature ${bad.feature}; clean or impute the data first`, bad.index);
  }
  const outShape = outputShape(model, xs);
  if (typeof loss === "function") return; // custom losses define their own label contract
  const key = `${loss}:${outShape.slice(1).join(",")}`;
  if (checkedLabels.get(ys)?.has(key)) return;
  await checkLabels(loss, outShape, ys, role);
  (checkedLabels.get(ys) ?? checkedLabels.set(ys, new Set()).get(ys)!).add(key);
}

/** Inputs already found free of NaN/Inf, and labels already checked per `loss:outputShape`. */
const cleanInputs = new WeakSet<tf.Tensor>();
const checkedLabels = new WeakMap<tf.Tensor, Set<string>>();

/** Output shape for one sample: the model's symbolic shape when fully known, else a 1-sample predict. */
function outputShape(model: LayersModel, xs: tf.Tensor): number[] {
  const symbolic = model.outputs[0]?.shape;
  if (symbolic && symbolic.slice(1).every((d) => d !== null)) return [1, ...(symbolic.slice(1) as number[])];
  // gather, not slice: tfjs-wasm's Slice copies the whole source tensor to JS first
  return tf.tidy(() => (model.predict(tf.gather(xs, tf.tensor1d([0], "int32"))) as tf.Tensor).shape);
}

async function checkLabels(loss: LossName | LossFn, outShape: number[], ys: tf.Tensor, role: string): Promise<void> {
  if (typeof loss === "function") return; // custom losses define their own label contract
  const outTail = outShape.slice(1);
  const yTail = ys.shape.slice(1);
  if (loss === "sparseCategoricalCrossentropy") {
    const classes = outShape[outShape.length - 1]!;
    if (!(yTail.length === 0 || (yTail.length === 1 && yTail[0] === 1))) {
      throw new ShapeMismatchError(`${role} labels have shape [${ys.shape.join(",")}]; sparseCategoricalCrossentropy expects class indices of shape [n] or [n,1] (model output [batch,${outTail.join(",")}])`);
    }
    const values = await ys.data();
    const index = values.findIndex((v) => !Number.isInteger(v) || v < 0 || v >= classes);
    if (index >= 0) {
      throw new DataError("LABEL_OUT_OF_RANGE", `${role} label of sample ${index} is ${values[index]}; the model outputs ${classes} classes, so labels must be integers in [0, ${classes - 1}]`, index);
    }
    return;
  }
  if (yTail.length !== outTail.length || yTail.some((d, i) => d !== outTail[i])) {
    const hint = loss === "categoricalCrossentropy" && yTail.length <= 1 && (yTail[0] ?? 1) === 1 ? " (labels look like class indices: use sparseCategoricalCrossentropy or one-hot encode them)" : "";
    throw new ShapeMismatchError(`${role} labels have shape [${ys.shape.join(",")}] but the model outputs [batch,${outTail.join(",")}] for ${loss}${hint}`);
  }
  // cross-entropy targets in [0, 1]; regression targets finite (a NaN target makes the loss NaN from the first step)
  const values = await ys.data();
  const bad = findBadTarget(loss, values, outShape, ys.shape[0]!);
  if (bad) {
    const rule = loss === "categoricalCrossentropy" || loss === "binaryCrossentropy" ? `${loss} expects targets in [0, 1]` : `${loss} needs finite targets`;
    throw new DataError(bad.code, `${role} target of sample ${bad.sample} has value ${bad.value}; ${rule}`, bad.sample);
  }
}
