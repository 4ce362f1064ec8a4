import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { StateError } from "./errors.js";
import { comparableName, JSON_HINT, type OptimizerStateDict } from "./optimizer-state.js";
import { describeValue, type StateIssue } from "./state-schema.js";
import type { TrainerStateDict } from "./state.js";

/** One model weight as a checkpoint stores it. Weights restore by position; shape, dtype and `name` (without tfjs's counters, see `comparableName`) are checked. */
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

/**
 * A `StateError` unless `weights` fit the model one to one: count, shapes, dtypes, value types and
 * counts, and names compared without tfjs's counters (`comparableName`), so same-shape weights in
 * another order are refused. Every problem is listed, by position and name.
 */
export function checkWeights(model: LayersModel, weights: readonly SavedWeight[]): void {
  const summary = "the saved weights do not match the model";
  const current = model.weights;
  const saved: unknown = weights;
  if (!Array.isArray(saved)) throw new StateError(summary, [{ path: "weights", message: `must be an array of { name, shape, dtype, values }, got ${describeValue(saved)}` }]);
  // another count: positions no longer pair up, so comparing them would only add noise (no path: "...: 3 weights saved, ...")
  if (saved.length !== current.length) throw new StateError(summary, [{ path: "", message: `${saved.length} weights saved, the model has ${current.length}` }]);
  const issues: StateIssue[] = [];
  current.forEach((w, i) => {
    const s: unknown = saved[i];
    if (typeof s !== "object" || s === null) return void issues.push({ path: `weights[${i}]`, message: `weight ${i} (${w.name}): the saved one must be { name, shape, dtype, values }, got ${describeValue(s)}` });
    const { name, shape, dtype: sdtype, values } = s as Record<string, unknown>;
    const dims: readonly unknown[] = Array.isArray(shape) ? shape : [];
    const size = dims.reduce<number>((a, b) => a * (typeof b === "number" ? b : Number.NaN), 1);
    const dtype = w.read().dtype;
    const typed = dtype === "int32" ? values instanceof Int32Array : values instanceof Float32Array;
    const length = typed ? (values as Float32Array | Int32Array).length : undefined;
    if (dims.join(",") !== w.shape.join(",") || sdtype !== dtype || length !== size) {
      const got = typed ? `with ${length} values` : `with values ${describeValue(values)} (a ${dtype === "int32" ? "Int32Array" : "Float32Array"} is needed${typeof values === "object" && values !== null && !ArrayBuffer.isView(values) ? `; ${JSON_HINT}` : ""})`;
      issues.push({ path: `weights[${i}]`, message: `weight ${i} (${w.name}) is ${dtype} [${w.shape.join(", ")}], the saved one (${String(name)}) is ${String(sdtype)} [${dims.join(", ")}] ${got}` });
    }
    if (typeof name !== "string") issues.push({ path: `weights[${i}].name`, message: `must be the weight's name, got ${describeValue(name)}` });
    else if (comparableName(name) !== comparableName(w.name)) {
      issues.push({ path: `weights[${i}]`, message: `weight ${i} of the model is "${w.name}", the saved weight ${i} is "${name}" (names compared without tfjs's counters): the weights are in another order, or they are another model's` });
    }
  });
  if (issues.length) throw new StateError(summary, issues);
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
