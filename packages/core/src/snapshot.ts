import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { StateError } from "./errors.js";
import type { OptimizerStateDict } from "./optimizer-state.js";
import type { TrainerStateDict } from "./trainer.js";

/** One model weight as a checkpoint stores it. `name` is informational: weights restore by position and shape. */
export interface SavedWeight {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: "float32" | "int32";
  readonly values: Float32Array | Int32Array;
}

/**
 * Everything needed to continue a run exactly (`fit({ resumeFrom })`): position, data cursor, epoch
 * totals, history, RNG and every plugin's state (`trainer`), optimizer slots with their variable
 * order and shapes (`optimizer`), and every model weight, trainable or not (`weights`).
 */
export interface RunSnapshot {
  readonly format: "fitloop.run/1";
  readonly trainer: TrainerStateDict;
  readonly optimizer: OptimizerStateDict;
  readonly weights: readonly SavedWeight[];
}

export const SNAPSHOT_FORMAT = "fitloop.run/1";

/** The trainable variables in the order the loop passes their gradients (the optimizer's slot order). */
export function trainableVariables(model: LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** Every weight of the model (`model.weights`: trainable and not), read from the device. */
export async function captureWeights(model: LayersModel): Promise<SavedWeight[]> {
  return Promise.all(
    model.weights.map(async (w) => {
      const t = w.read();
      const data = await t.data();
      return t.dtype === "int32"
        ? { name: w.name, shape: [...t.shape], dtype: "int32" as const, values: Int32Array.from(data as Int32Array) }
        : { name: w.name, shape: [...t.shape], dtype: "float32" as const, values: Float32Array.from(data as Float32Array) };
    }),
  );
}

/** A `StateError` unless `weights` fit the model one to one (count, shapes, dtypes, value counts). */
export function checkWeights(model: LayersModel, weights: readonly SavedWeight[]): void {
  const current = model.weights;
  if (!Array.isArray(weights) || weights.length !== current.length) {
    throw new StateError(`the saved weights do not match the model: ${Array.isArray(weights) ? weights.length : "no"} weights saved, the model has ${current.length}`);
  }
  current.forEach((w, i) => {
    const s = weights[i]!;
    const shape: readonly number[] = Array.isArray(s?.shape) ? s.shape : [];
    const size = shape.reduce((a: number, b: number) => a * b, 1);
    const dtype = w.read().dtype;
    const typed = dtype === "int32" ? s?.values instanceof Int32Array : s?.values instanceof Float32Array;
    if (shape.join(",") !== w.shape.join(",") || s.dtype !== dtype || !typed || s.values.length !== size) {
      throw new StateError(`the saved weights do not match the model: weight ${i} (${w.name}) is ${dtype} [${w.shape.join(", ")}], the saved one (${String(s?.name)}) is ${String(s?.dtype)} [${shape.join(", ")}] with ${s?.values?.length ?? 0} values`);
    }
  });
}

/** Sets every model weight from `weights` (checked with `checkWeights` first). */
export function loadWeights(model: LayersModel, weights: readonly SavedWeight[]): void {
  checkWeights(model, weights);
  const tensors = weights.map((w) => tf.tensor(w.values, [...w.shape], w.dtype));
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors); // the variables keep the data (tfjs counts references)
  }
}
