import { EventFileError } from "./errors.js";
import type { HistogramData } from "./event.js";

const DBL_MAX = Number.MAX_VALUE;

let exponential: readonly number[] | undefined;

/**
 * TensorFlow's default histogram bucket limits (`tensorflow/core/lib/histogram/histogram.cc`):
 * ±1e-12 growing by 10 % up to 1e20, 0 between them, and ±DBL_MAX at the ends (1,551 limits).
 */
export function exponentialBucketLimits(): readonly number[] {
  if (exponential) return exponential;
  const pos: number[] = [];
  for (let v = 1e-12; v < 1e20; v *= 1.1) pos.push(v);
  pos.push(DBL_MAX);
  exponential = Object.freeze([...pos.map((v) => -v).reverse(), 0, ...pos]);
  return exponential;
}

/** The first index whose limit is > v (C++ `std::upper_bound`): the bucket v falls in. */
function upperBound(limits: readonly number[], v: number): number {
  let lo = 0;
  let hi = limits.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (limits[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const bad = (message: string) => new EventFileError("INVALID_EVENT", `histogram: ${message}`);

/**
 * A histogram of `values` as TensorBoard reads it (`HistogramProto`). Non-finite values are left
 * out (of the counts, `num`, `min`, `max` and sums alike). `buckets`:
 * - a count N (default 30): N equal-width buckets from min to max, what TensorFlow 2's
 *   `tf.summary.histogram` (so Keras' TensorBoard callback) writes; all values equal give one bucket;
 * - `"exponential"`: TensorFlow's default limits (see `exponentialBucketLimits`), runs of empty
 *   buckets merged as TensorFlow's `Histogram::EncodeToProto` does;
 * - an increasing array of limits: bucket i counts `limits[i-1] <= v < limits[i]` (the first from
 *   -infinity); values at or above the last limit go to an extra bucket ending at DBL_MAX.
 */
export function histogram(values: ArrayLike<number>, buckets: number | "exponential" | readonly number[] = 30): HistogramData {
  let min = Infinity;
  let max = -Infinity;
  let num = 0;
  let sum = 0;
  let sumSquares = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    num++;
    sum += v;
    sumSquares += v * v;
  }
  // TensorFlow always writes at least one bucket: readers rely on it
  if (num === 0) return { min: 0, max: 0, num: 0, sum: 0, sumSquares: 0, bucketLimit: [DBL_MAX], bucket: [0] };
  const stats = { min, max, num, sum, sumSquares };

  if (typeof buckets === "number") {
    if (!Number.isInteger(buckets) || buckets < 1 || buckets > 100_000) throw bad(`buckets must be an integer from 1 to 100000, "exponential" or an array of limits, got ${String(buckets)}`);
    if (min === max) return { ...stats, bucketLimit: [max], bucket: [num] };
    const width = (max - min) / buckets;
    const counts = new Array<number>(buckets).fill(0);
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (Number.isFinite(v)) counts[Math.min(buckets - 1, Math.floor((v - min) / width))]!++;
    }
    // right edges; the last is max exactly (TensorBoard uses max there anyway)
    const bucketLimit = counts.map((_, i) => (i === buckets - 1 ? max : min + (i + 1) * width));
    return { ...stats, bucketLimit, bucket: counts };
  }

  const exp = buckets === "exponential";
  const limits = exp ? exponentialBucketLimits() : buckets;
  if (!exp) {
    if (!Array.isArray(limits) || limits.length === 0) throw bad(`buckets must be a count, "exponential" or a non-empty array of limits, got ${String(buckets)}`);
    for (let i = 0; i < limits.length; i++) {
      if (typeof limits[i] !== "number" || Number.isNaN(limits[i]) || (i > 0 && !(limits[i]! > limits[i - 1]!))) throw bad(`bucket limits must be strictly increasing numbers (limit ${i} is ${String(limits[i])})`);
    }
  }
  const counts = new Array<number>(limits.length + 1).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) counts[upperBound(limits, v)]!++;
  }
  const allLimits = [...limits, DBL_MAX];
  const bucketLimit: number[] = [];
  const bucket: number[] = [];
  const last = counts[limits.length] ? limits.length : limits.length - 1; // the overflow bucket only when used
  for (let i = 0; i <= last; ) {
    let end = allLimits[i]!;
    const count = counts[i]!;
    let j = i + 1;
    // merge a run of empty buckets into one (exponential only: explicit limits are kept as given)
    while (exp && count <= 0 && j <= last && counts[j]! <= 0) end = allLimits[j++]!;
    bucketLimit.push(end);
    bucket.push(count);
    i = j;
  }
  return { ...stats, bucketLimit, bucket };
}
