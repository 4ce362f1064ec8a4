import { DataError, OptionsError } from "@fitloop/core";

/**
 * Checks a shape given as an option (`sampleShape`, `labelShape`, `imageShape`): an array of
 * positive integers whose product is a safe integer; `[]` only when `allowEmpty` (a scalar label).
 * Throws an `OptionsError` naming `owner` and `path`.
 */
export function checkShape(owner: string, path: string, shape: unknown, allowEmpty: boolean): readonly number[] {
  const issue = shapeIssue(shape, allowEmpty);
  if (issue) throw new OptionsError(owner, [{ path, message: issue }]);
  return shape as readonly number[];
}

/** What is wrong with `shape` as a shape, or undefined. */
export function shapeIssue(shape: unknown, allowEmpty: boolean): string | undefined {
  if (!Array.isArray(shape)) return `must be an array of positive integers, e.g. [784] or [28, 28, 1], got ${describe(shape)}`;
  if (shape.length === 0 && !allowEmpty) return "must not be [] (a sample needs at least one dimension; one feature is [1])";
  const bad = shape.findIndex((d) => typeof d !== "number" || !Number.isSafeInteger(d) || d < 1);
  if (bad >= 0) return `[${shape.map((d) => describe(d)).join(", ")}]: dimension ${bad} is ${describe(shape[bad])}; every dimension must be an integer >= 1`;
  if (!Number.isSafeInteger(sizeOf(shape as number[]))) return `[${shape.join(", ")}] has more values per sample than can be indexed`;
  return undefined;
}

function describe(v: unknown): string {
  return typeof v === "number" ? String(v) : (JSON.stringify(v) ?? String(v));
}

/** Product of a shape (1 for `[]`). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

const isArrayLike = (v: unknown): v is ArrayLike<unknown> =>
  v !== null && typeof v === "object" && typeof (v as { length?: unknown }).length === "number";

/** Shape of a nested value: `[]` for a number, `[len, ...shape(first)]` for an array. */
function shapeOf(v: unknown): number[] {
  const shape: number[] = [];
  let cur: unknown = v;
  while (isArrayLike(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  return shape;
}

export interface Flattened {
  readonly values: Float32Array;
  readonly rows: number;
  readonly shape: readonly number[];
}

/**
 * Flattens `input` (a flat array with `shape`, or one nested array per sample) into a
 * `Float32Array`. Rows whose shape differs from the first row are `RAGGED_SAMPLE`; values that
 * are not numbers are `INPUT_WRONG_TYPE`; both name the sample index.
 */
export function flattenRows(input: unknown, name: "x" | "y", shape: readonly number[] | undefined): Flattened {
  if (!isArrayLike(input)) throw new DataError(name === "x" ? "INPUT_WRONG_TYPE" : "LABEL_WRONG_TYPE", `${name} must be an array or typed array, got ${typeof input}`);
  const nested = input.length > 0 && isArrayLike(input[0]);
  if (!nested) {
    const rowShape = shape ?? (name === "y" ? [] : undefined);
    if (!rowShape) throw new DataError("MISSING_SAMPLE_SHAPE", `${name} is a flat array: give sampleShape (e.g. [784] or [28, 28, 1]) or one array per sample`);
    const f = sizeOf(rowShape);
    if (input.length % f !== 0) {
      throw new DataError(
        "RAGGED_SAMPLE",
        `${name} has ${input.length} values, not a multiple of ${option(name)} [${rowShape.join(", ")}] (${f} values per sample); sample ${Math.floor(input.length / f)} is incomplete`,
        Math.floor(input.length / f),
      );
    }
    const values = input instanceof Float32Array ? input : toFloat32(input, name, f);
    return { values, rows: input.length / f, shape: [...rowShape] };
  }
  const rowShape = shapeOf(input[0]);
  if (rowShape.includes(0)) throw new DataError("EMPTY_SAMPLE", `${name}[0] has shape [${rowShape.join(", ")}]: a sample with no values`, 0);
  const f = sizeOf(rowShape);
  if (shape && sizeOf(shape) !== f) {
    throw new DataError("RAGGED_SAMPLE", `${name}[0] has shape [${rowShape.join(", ")}] (${f} values) but ${option(name)} [${shape.join(", ")}] has ${sizeOf(shape)}`, 0);
  }
  const values = new Float32Array(input.length * f);
  for (let i = 0; i < input.length; i++) {
    const row = input[i];
    const got = shapeOf(row);
    if (got.length !== rowShape.length || got.some((d, k) => d !== rowShape[k]) || !sameShapeDeep(row, rowShape, 0)) {
      throw new DataError("RAGGED_SAMPLE", `${name}[${i}] has shape [${describeShape(row)}] but ${name}[0] has shape [${rowShape.join(", ")}]: every sample must have the same shape`, i);
    }
    writeRow(row, values, i * f, name, i);
  }
  return { values, rows: input.length, shape: shape ? [...shape] : rowShape };
}

const option = (name: "x" | "y") => (name === "x" ? "sampleShape" : "labelShape");

function toFloat32(input: ArrayLike<unknown>, name: "x" | "y", f: number): Float32Array {
  const out = new Float32Array(input.length);
  for (let k = 0; k < input.length; k++) {
    const v = input[k];
    if (typeof v !== "number") wrongType(name, Math.floor(k / f), v);
    out[k] = v as number;
  }
  return out;
}

function wrongType(name: "x" | "y", index: number, v: unknown): never {
  throw new DataError(name === "x" ? "INPUT_WRONG_TYPE" : "LABEL_WRONG_TYPE", `${name} of sample ${index} contains ${JSON.stringify(v) ?? String(v)} (${typeof v}); expected numbers`, index);
}

/** Every sub-array at depth `d` has length `shape[d]` (not only the first one). */
function sameShapeDeep(v: unknown, shape: readonly number[], d: number): boolean {
  if (d === shape.length) return !isArrayLike(v);
  if (!isArrayLike(v) || v.length !== shape[d]) return false;
  if (d === shape.length - 1) return true; // leaves are checked while writing
  for (let k = 0; k < v.length; k++) if (!sameShapeDeep(v[k], shape, d + 1)) return false;
  return true;
}

function describeShape(v: unknown): string {
  return isArrayLike(v) ? shapeOf(v).join(", ") : typeof v;
}

function writeRow(row: unknown, out: Float32Array, offset: number, name: "x" | "y", index: number): number {
  if (!isArrayLike(row)) {
    if (typeof row !== "number") wrongType(name, index, row);
    out[offset] = row as number;
    return offset + 1;
  }
  for (let k = 0; k < row.length; k++) offset = writeRow(row[k], out, offset, name, index);
  return offset;
}

/** Class indices: numbers (or one-element rows) that are integers in `[0, numClasses)`. */
export function checkLabels(y: unknown, numClasses: number, offset = 0): Int32Array {
  if (!isArrayLike(y)) throw new DataError("LABEL_WRONG_TYPE", `y must be an array of class indices, got ${typeof y}`);
  const out = new Int32Array(y.length);
  for (let i = 0; i < y.length; i++) {
    let v = y[i];
    if (isArrayLike(v) && v.length === 1) v = v[0];
    if (typeof v !== "number") {
      const hint = isArrayLike(v) ? " (one-hot rows? pass class indices, or leave numClasses unset for vector targets)" : "";
      throw new DataError("LABEL_WRONG_TYPE", `label of sample ${offset + i} is ${JSON.stringify(v) ?? String(v)} (${isArrayLike(v) ? "array" : typeof v}); expected an integer class index${hint}`, offset + i);
    }
    if (!Number.isInteger(v)) throw new DataError("LABEL_NOT_INTEGER", `label of sample ${offset + i} is ${v}; class labels must be integers in [0, ${numClasses - 1}]`, offset + i);
    if (v < 0 || v >= numClasses) throw new DataError("LABEL_OUT_OF_RANGE", `label of sample ${offset + i} is ${v}; with ${numClasses} classes labels must be in [0, ${numClasses - 1}]`, offset + i);
    out[i] = v;
  }
  return out;
}

/** Throws `NON_FINITE_INPUT` / `NON_FINITE_LABEL` naming the first sample with NaN or Inf. */
export function checkFinite(values: Float32Array, rowSize: number, what: "input" | "label", offset = 0): void {
  for (let k = 0; k < values.length; k++) {
    const v = values[k]!;
    // v - v is NaN for NaN and ±Inf: one test instead of two.
    if (v - v !== 0) {
      const index = offset + Math.floor(k / rowSize);
      throw new DataError(what === "input" ? "NON_FINITE_INPUT" : "NON_FINITE_LABEL", `${what} of sample ${index} has ${v} at position ${k % rowSize}; clean or impute the data first`, index);
    }
  }
}

/** Seeds must be safe integers (they are mixed into 32-bit generator states). */
export function checkSeed(owner: string, seed: unknown, path = "seed"): number {
  if (typeof seed !== "number" || !Number.isSafeInteger(seed)) {
    throw new OptionsError(owner, [{ path, message: `must be an integer, got ${typeof seed === "number" ? seed : JSON.stringify(seed) ?? String(seed)}` }]);
  }
  return seed;
}
