import { expect } from "vitest";
import type * as tf from "@tensorflow/tfjs-core";

/** Mean and (population) variance of a tensor's values, read once. */
export function moments(t: tf.Tensor): { mean: number; variance: number; maxAbs: number; n: number } {
  const v = t.dataSync();
  let s = 0;
  let maxAbs = 0;
  for (const x of v) {
    s += x;
    maxAbs = Math.max(maxAbs, Math.abs(x));
  }
  const mean = s / v.length;
  let q = 0;
  for (const x of v) q += (x - mean) ** 2;
  return { mean, variance: q / v.length, maxAbs, n: v.length };
}

/** The sample variance of n draws is within `sigmas` standard errors of the true one (relative error sqrt(2/n) for a gaussian, sqrt(0.8/n) for a uniform). */
export function expectVariance(t: tf.Tensor, expected: number, label: string, sigmas = 4.5): number {
  const m = moments(t);
  const rel = m.variance / expected - 1;
  expect(Math.abs(rel), `${label}: variance ${m.variance} vs ${expected} (n ${m.n})`).toBeLessThan(sigmas * Math.sqrt(2 / m.n));
  expect(Math.abs(m.mean), `${label}: mean`).toBeLessThan(sigmas * Math.sqrt(expected / m.n));
  return rel;
}

/** Largest |(A^T A - g^2 I)_ij| of a row-major rows x cols matrix. */
export function gramError(values: ArrayLike<number>, rows: number, cols: number, gain = 1): number {
  let worst = 0;
  for (let i = 0; i < cols; i++) {
    for (let j = i; j < cols; j++) {
      let dot = 0;
      for (let r = 0; r < rows; r++) dot += values[r * cols + i]! * values[r * cols + j]!;
      worst = Math.max(worst, Math.abs(dot - (i === j ? gain * gain : 0)));
    }
  }
  return worst;
}
