import type * as tf from "@tensorflow/tfjs-core";
import { DataError, OptionsError, parseOptions } from "@fitloop/core";
import { z } from "zod";
import { checkFinite, checkLabels, checkShape, flattenRows, sizeOf } from "./validate.js";

/**
 * An in-memory data set held as typed arrays: one row of `x` per sample (row-major, channels last
 * for images), one label per sample in `y`. Typed arrays make a batch one row gather and one
 * `tf.tensor` call, with no tensor kept alive between batches.
 */
export interface ArrayDataset {
  /** Features, `size * prod(sampleShape)` values. */
  readonly x: Float32Array;
  /** Class indices (`Int32Array`, when `numClasses` is set) or targets (`Float32Array`, `size * prod(labelShape)`). */
  readonly y: Int32Array | Float32Array;
  readonly size: number;
  /** Shape of one sample, e.g. `[28, 28, 1]` or `[2]`. */
  readonly sampleShape: readonly number[];
  /** Shape of one label: `[]` for a class index or a scalar target, `[k]` for a target vector. */
  readonly labelShape: readonly number[];
  /** Number of classes when `y` holds class indices; `undefined` for regression targets. */
  readonly numClasses: number | undefined;
  readonly classNames?: readonly string[];
}

/** Nested rows (`number[][]`, `number[][][]`, ...) or a flat array of all values. */
export type NumericInput = ArrayLike<number> | ReadonlyArray<NumericInput>;

export interface FromArraysOptions {
  /** Features: a flat array (with `sampleShape`) or one nested array per sample. */
  x: NumericInput;
  /** Labels: class indices (with `numClasses`) or regression targets (flat or one array per sample). */
  y: NumericInput;
  /** Shape of one sample; inferred from nested `x` when omitted. */
  sampleShape?: readonly number[];
  /** Set for classification: labels must be integers in `[0, numClasses)`. */
  numClasses?: number;
  /** Shape of one regression target; default `[]` (or inferred from nested `y`). */
  labelShape?: readonly number[];
  classNames?: readonly string[];
  /**
   * Accept NaN/Inf in `x` (to look at raw data with `dataReport` before cleaning it). Training
   * still refuses them: the trainer's pre-flight check scans every sample of a `DataLoader`.
   */
  allowNonFinite?: boolean;
}

/**
 * Builds and checks an in-memory data set. Throws `DataError` naming the first offending sample:
 * `RAGGED_SAMPLE` (a row of another length), `NON_FINITE_INPUT` (NaN/Inf), `LABEL_WRONG_TYPE`,
 * `LABEL_NOT_INTEGER`, `LABEL_OUT_OF_RANGE`, `LENGTH_MISMATCH`, `EMPTY_DATA`.
 * A `Float32Array` given as `x` is used as is (not copied).
 */
export function fromArrays(options: FromArraysOptions): ArrayDataset {
  parseOptions("fromArrays", fromArraysSchema, options);
  if (options.sampleShape !== undefined) checkShape("fromArrays", "sampleShape", options.sampleShape, false);
  if (options.labelShape !== undefined) checkShape("fromArrays", "labelShape", options.labelShape, true);
  if (options.classNames !== undefined && options.numClasses !== undefined && options.classNames.length !== options.numClasses) {
    throw new OptionsError("fromArrays", [{ path: "classNames", message: `has ${options.classNames.length} names but numClasses is ${options.numClasses}` }]);
  }
  const xs = flattenRows(options.x, "x", options.sampleShape);
  const classification = options.numClasses !== undefined;
  const size = xs.rows;
  if (size === 0) throw new DataError("EMPTY_DATA", "the data set has 0 samples");
  const ys = classification ? null : flattenRows(options.y, "y", options.labelShape ?? guessLabelShape(options.y));
  const y = classification ? checkLabels(options.y, options.numClasses!) : ys!.values;
  const yRows = classification ? y.length : ys!.rows;
  if (yRows !== size) throw new DataError("LENGTH_MISMATCH", `x has ${size} samples but y has ${yRows}`, Math.min(size, yRows));
  if (!options.allowNonFinite) checkFinite(xs.values, sizeOf(xs.shape), "input");
  if (!classification) checkFinite(y as Float32Array, sizeOf(ys!.shape), "label");
  const ds: ArrayDataset = {
    x: xs.values,
    y,
    size,
    sampleShape: xs.shape,
    labelShape: classification ? [] : ys!.shape,
    numClasses: options.numClasses,
    ...(options.classNames ? { classNames: options.classNames } : {}),
  };
  return ds;
}

const fromArraysSchema = z.strictObject({
  x: z.custom<NumericInput>(() => true),
  y: z.custom<NumericInput>(() => true),
  sampleShape: z.custom<readonly number[]>(() => true).optional(),
  numClasses: z.number({ message: "must be an integer >= 1 (classes)" }).int({ message: "must be an integer >= 1 (classes)" }).min(1, { message: "must be an integer >= 1 (classes)" }).optional(),
  labelShape: z.custom<readonly number[]>(() => true).optional(),
  classNames: z.array(z.string({ message: "must be strings" }), { message: "must be an array of strings" }).optional(),
  allowNonFinite: z.boolean({ message: "must be a boolean" }).optional(),
});

function guessLabelShape(y: NumericInput): readonly number[] | undefined {
  const first = (y as ArrayLike<unknown>)[0];
  return first !== null && typeof first === "object" ? undefined : [];
}

/**
 * Copies tensors into a data set (`xs`: `[n, ...sampleShape]`; `ys`: class indices `[n]` or `[n, 1]`
 * with `numClasses`, else regression targets `[n, ...labelShape]`). The tensors stay the caller's.
 */
export async function fromTensors(xs: tf.Tensor, ys: tf.Tensor, options: { numClasses?: number; classNames?: readonly string[] } = {}): Promise<ArrayDataset> {
  const issues = [
    ...(isLiveTensor(xs) ? [] : [{ path: "xs", message: `must be a live tf.Tensor [n, ...sampleShape], got ${describeTensorArg(xs)}` }]),
    ...(isLiveTensor(ys) ? [] : [{ path: "ys", message: `must be a live tf.Tensor [n] or [n, ...labelShape], got ${describeTensorArg(ys)}` }]),
  ];
  if (issues.length) throw new OptionsError("fromTensors", issues);
  const o = parseOptions("fromTensors", fromTensorsSchema, options);
  if (xs.rank < 2) throw new OptionsError("fromTensors", [{ path: "xs", message: `has shape [${xs.shape.join(", ")}]; it needs a sample axis and at least one feature axis ([n, features]; one feature is [n, 1])` }]);
  checkShape("fromTensors", "xs.shape", xs.shape.slice(1), false);
  const n = xs.shape[0] ?? 0;
  if (ys.shape[0] !== n) throw new DataError("LENGTH_MISMATCH", `xs has ${n} samples but ys has ${String(ys.shape[0])}`);
  // Copy: on the cpu backend `data()` can hand back the backend's own buffer.
  const x = Float32Array.from(await xs.data());
  const yData = await ys.data();
  const classification = o.numClasses !== undefined;
  if (classification && !(ys.rank === 1 || (ys.rank === 2 && ys.shape[1] === 1))) {
    throw new OptionsError("fromTensors", [{ path: "ys", message: `has shape [${ys.shape.join(", ")}]; with numClasses it must hold class indices [n] or [n, 1] (one-hot rows? take argMax first)` }]);
  }
  return fromArrays({
    x,
    y: classification ? Array.from(yData) : Float32Array.from(yData),
    sampleShape: xs.shape.slice(1),
    ...(classification ? { numClasses: o.numClasses! } : { labelShape: ys.shape.slice(1) }),
    ...(o.classNames ? { classNames: o.classNames } : {}),
  });
}

const fromTensorsSchema = z.strictObject({
  numClasses: z.number().int({ message: "must be an integer >= 1" }).min(1, { message: "must be an integer >= 1" }).optional(),
  classNames: z.array(z.string()).optional(),
});

const isLiveTensor = (t: unknown): t is tf.Tensor =>
  typeof t === "object" && t !== null && Array.isArray((t as tf.Tensor).shape) && typeof (t as tf.Tensor).data === "function" && (t as tf.Tensor).isDisposed === false;

const describeTensorArg = (t: unknown) =>
  typeof t === "object" && t !== null && (t as tf.Tensor).isDisposed === true ? "a disposed tensor" : Array.isArray(t) ? "an array (use fromArrays)" : t === null ? "null" : typeof t;

/** The samples at `indices`, copied, in that order. */
export function subset(ds: ArrayDataset, indices: ArrayLike<number>): ArrayDataset {
  const f = sizeOf(ds.sampleShape);
  const l = ds.numClasses === undefined ? sizeOf(ds.labelShape) : 1;
  const x = new Float32Array(indices.length * f);
  const y = ds.y instanceof Int32Array ? new Int32Array(indices.length * l) : new Float32Array(indices.length * l);
  for (let r = 0; r < indices.length; r++) {
    const i = indices[r]!;
    if (!Number.isInteger(i) || i < 0 || i >= ds.size) throw new DataError("INDEX_OUT_OF_RANGE", `subset: index ${i} (at position ${r}) is outside [0, ${ds.size})`, i);
    x.set(ds.x.subarray(i * f, (i + 1) * f), r * f);
    y.set(ds.y.subarray(i * l, (i + 1) * l), r * l);
  }
  return { ...ds, x, y, size: indices.length };
}

/** Features of sample `i` (a view, not a copy). */
export function sampleX(ds: ArrayDataset, i: number): Float32Array {
  if (!Number.isInteger(i) || i < 0 || i >= ds.size) throw new DataError("INDEX_OUT_OF_RANGE", `sampleX: index ${i} is outside [0, ${ds.size})`, Number.isInteger(i) ? i : undefined);
  const f = sizeOf(ds.sampleShape);
  return ds.x.subarray(i * f, (i + 1) * f);
}
