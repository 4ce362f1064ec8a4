import type { ArrayDataset } from "../dataset.js";
import { sizeOf } from "../validate.js";

/** Class counts of one split. `imbalance` is largest / smallest count (Infinity when a class is absent). */
export interface ClassBalance {
  readonly counts: readonly number[];
  readonly names: readonly string[];
  readonly imbalance: number;
  /** Classes with no sample in this split. */
  readonly missing: readonly number[];
}

/** Statistics of every feature (NaN and Inf skipped) and a summary over all of them. */
export interface FeatureStats {
  readonly count: number;
  readonly mean: Float64Array;
  readonly std: Float64Array;
  readonly min: Float32Array;
  readonly max: Float32Array;
  /** Features with the same value in every sample (they carry no information). */
  readonly constant: number;
  readonly overall: { readonly mean: number; readonly std: number; readonly min: number; readonly max: number };
}

export interface NonFiniteCounts {
  readonly nan: number;
  readonly inf: number;
  /** Samples with at least one NaN or Inf. */
  readonly samples: number;
  readonly firstIndex: number | undefined;
}

export function classBalance(ds: ArrayDataset): ClassBalance {
  const k = ds.numClasses!;
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < ds.size; i++) counts[ds.y[i]!]!++;
  const missing = counts.flatMap((c, i) => (c === 0 ? [i] : []));
  const max = Math.max(...counts);
  const min = Math.min(...counts);
  return { counts, names: ds.classNames ?? counts.map((_, i) => String(i)), imbalance: min === 0 ? Infinity : max / min, missing };
}

/** Per-feature statistics over `values` laid out as rows of `f`. */
export function featureStats(values: Float32Array, f: number): FeatureStats {
  const rows = values.length / f;
  const sum = new Float64Array(f);
  const sq = new Float64Array(f);
  const seen = new Float64Array(f);
  const min = new Float32Array(f).fill(Infinity);
  const max = new Float32Array(f).fill(-Infinity);
  for (let base = 0; base < values.length; base += f) {
    for (let j = 0; j < f; j++) {
      const v = values[base + j]!;
      if (v - v !== 0) continue; // NaN or Inf: counted separately
      sum[j]! += v;
      seen[j]!++;
      if (v < min[j]!) min[j] = v;
      if (v > max[j]!) max[j] = v;
    }
  }
  const mean = Float64Array.from(sum, (s, j) => (seen[j]! > 0 ? s / seen[j]! : NaN));
  for (let base = 0; base < values.length; base += f) {
    for (let j = 0; j < f; j++) {
      const v = values[base + j]!;
      if (v - v === 0) sq[j]! += (v - mean[j]!) ** 2;
    }
  }
  const std = Float64Array.from(sq, (s, j) => (seen[j]! > 0 ? Math.sqrt(s / seen[j]!) : NaN));
  let constant = 0;
  for (let j = 0; j < f; j++) if (seen[j]! > 0 && min[j] === max[j]) constant++;
  const total = seen.reduce((a, b) => a + b, 0);
  const allMean = sum.reduce((a, b) => a + b, 0) / total;
  // Total variance = mean of (within-feature variance + squared offset of the feature's mean).
  let allVar = 0;
  for (let j = 0; j < f; j++) if (seen[j]! > 0) allVar += (sq[j]! + seen[j]! * (mean[j]! - allMean) ** 2) / total;
  return { count: rows, mean, std, min, max, constant, overall: { mean: allMean, std: Math.sqrt(allVar), min: extreme(min, -1), max: extreme(max, 1) } };
}

/** Smallest (`sign` -1) or largest (`sign` 1) value, without spreading a big array into arguments. */
export function extreme(values: ArrayLike<number>, sign: 1 | -1): number {
  let best = sign * -Infinity;
  for (let k = 0; k < values.length; k++) {
    const v = values[k]!;
    if (Number.isFinite(v) && (sign > 0 ? v > best : v < best)) best = v;
  }
  return best;
}

export function nonFinite(values: Float32Array, f: number): NonFiniteCounts {
  let nan = 0;
  let inf = 0;
  let samples = 0;
  let firstIndex: number | undefined;
  for (let base = 0, i = 0; base < values.length; base += f, i++) {
    let bad = false;
    for (let j = 0; j < f; j++) {
      const v = values[base + j]!;
      if (Number.isNaN(v)) nan++;
      else if (v === Infinity || v === -Infinity) inf++;
      else continue;
      bad = true;
    }
    if (bad) {
      samples++;
      firstIndex ??= i;
    }
  }
  return { nan, inf, samples, firstIndex };
}

/** Rows of `ds.x` as 32-bit words, so equality is exact (bit for bit) and hashing is cheap. */
export function rowWords(ds: ArrayDataset): { words: Uint32Array; f: number } {
  const f = sizeOf(ds.sampleShape);
  return { words: new Uint32Array(ds.x.buffer, ds.x.byteOffset, ds.x.length), f };
}

export function hashRow(words: Uint32Array, f: number, i: number): number {
  let h = 0x811c9dc5;
  for (let k = i * f; k < (i + 1) * f; k++) h = Math.imul(h ^ words[k]!, 0x01000193);
  return h >>> 0;
}

export function sameRow(a: Uint32Array, i: number, b: Uint32Array, j: number, f: number): boolean {
  for (let k = 0; k < f; k++) if (a[i * f + k] !== b[j * f + k]) return false;
  return true;
}
