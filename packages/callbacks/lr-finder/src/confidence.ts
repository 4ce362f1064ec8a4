import { z } from "zod";
import { suggestionWindow } from "./suggest.js";

/**
 * fitloop's own verdict on whether a range test's curve can be trusted (fastai has none). The
 * definitions are in the README ("How far to trust a suggestion"); this is them as code.
 */

export type Verdict = "ok" | "too-short" | "flat" | "noisy" | "diverged-early";

export interface ConfidenceThresholds {
  /** Fewer usable points than this (after fastai's trimming) is `too-short`. Default 20. */
  minPoints?: number;
  /** A relative fall of the smoothed loss smaller than this is `flat` (and, before divergence, `diverged-early`). Default 0.05. */
  minDrop?: number;
  /** Noise left in the smoothed curve larger than this fraction of its fall is `noisy`. Default 0.1. */
  maxNoise?: number;
}

export const DEFAULT_THRESHOLDS: Readonly<Required<ConfidenceThresholds>> = { minPoints: 20, minDrop: 0.05, maxNoise: 0.1 };

export const confidenceSchema = z.strictObject({
  minPoints: z.number({ message: "must be an integer >= 2" }).int({ message: "must be an integer >= 2" }).min(2, { message: "must be an integer >= 2" }).optional(),
  minDrop: z.number({ message: "must be a number in [0, 1)" }).min(0, { message: "must be in [0, 1)" }).lt(1, { message: "must be in [0, 1)" }).optional(),
  maxNoise: z.number({ message: "must be a number > 0" }).gt(0, { message: "must be > 0" }).finite({ message: "must be finite" }).optional(),
});

export interface Confidence {
  /** The first of `diverged-early`, `too-short`, `flat`, `noisy` that applies, else `ok`. */
  readonly verdict: Verdict;
  /** One sentence per verdict that applies (several can), with the numbers; empty when `ok`. */
  readonly reasons: readonly string[];
  /** Usable points: those fastai suggests from (`suggestionWindow`). */
  readonly points: number;
  /** Relative fall of the smoothed loss over the usable points: `(first - lowest) / |first|`; NaN with fewer than 2 points. */
  readonly drop: number;
  /** Relative fall of the smoothed loss from the very first recorded point to the lowest finite one (the whole curve). */
  readonly dropFromStart: number;
  /**
   * The noise left in the smoothed curve over its fall on the usable points: `noiseStd(raw) *
   * sqrt((1 - beta) / (1 + beta)) / (first - lowest)`; NaN with fewer than 3 points, Infinity when it does not fall.
   */
  readonly noise: number;
}

export interface ConfidenceInput {
  /** Raw losses, one per step. */
  readonly loss: readonly number[];
  /** Smoothed losses (same length). */
  readonly smoothed: readonly number[];
  /** The sweep's configured steps (the trimming follows it, as fastai's). */
  readonly steps: number;
  /** The sweep stopped because the loss diverged or was not finite. */
  readonly diverged: boolean;
  /** The smoothing the curve was made with (fastai's beta; default 0.98). */
  readonly smoothing?: number;
}

const median = (values: readonly number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * The standard deviation of independent noise on a slowly varying series, from its first
 * differences: a difference of two noisy values has std `sigma * sqrt(2)`, and the median absolute
 * deviation (times 1.4826) estimates a std robustly, ignoring the trend and a few outliers.
 */
export function noiseStd(values: readonly number[]): number {
  if (values.length < 3) return Number.NaN;
  const d = values.slice(1).map((v, i) => v - values[i]!);
  const m = median(d);
  return (1.4826 * median(d.map((x) => Math.abs(x - m)))) / Math.SQRT2;
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

/** The confidence verdict for a recorded curve (see the README for the definitions). */
export function confidence(input: ConfidenceInput, thresholds: ConfidenceThresholds = {}): Confidence {
  const t = { ...DEFAULT_THRESHOLDS, ...thresholds };
  const { loss, smoothed, steps } = input;
  if (loss.length !== smoothed.length) throw new RangeError(`confidence: loss has ${loss.length} values but smoothed has ${smoothed.length}`);
  const { start, end } = suggestionWindow(smoothed, steps);
  const points = end - start;
  const usable = smoothed.slice(start, end);
  const fall = (first: number, values: readonly number[]) => (values.length < 2 ? Number.NaN : first === 0 ? 0 : (first - Math.min(...values)) / Math.abs(first));
  const drop = fall(usable[0]!, usable);
  let firstBad = smoothed.findIndex((v) => !Number.isFinite(v));
  if (firstBad < 0) firstBad = smoothed.length;
  const finite = smoothed.slice(0, firstBad);
  const dropFromStart = finite.length === 0 ? Number.NaN : finite.length === 1 ? 0 : fall(finite[0]!, finite);
  const absoluteFall = points >= 2 ? usable[0]! - Math.min(...usable) : Number.NaN;
  const beta = input.smoothing ?? 0.98;
  // an EMA with weight beta of independent noise of std sigma has std sigma * sqrt((1 - beta) / (1 + beta))
  const sigma = noiseStd(loss.slice(start, end)) * Math.sqrt((1 - beta) / (1 + beta));
  const noise = points < 3 ? Number.NaN : absoluteFall > 0 ? sigma / absoluteFall : Number.POSITIVE_INFINITY;

  const found: [Verdict, string][] = [];
  if (input.diverged && !(dropFromStart >= t.minDrop)) {
    found.push(["diverged-early", `the loss diverged before it ever fell by ${pct(t.minDrop)} (it fell by ${pct(Number.isNaN(dropFromStart) ? 0 : dropFromStart)} at most): startLr is probably too high`]);
  }
  if (points < t.minPoints) found.push(["too-short", `only ${points} usable point(s) after dropping the first steps/10 and the last 5 (at least ${t.minPoints} wanted): run more steps, or lower startLr if it diverged`]);
  if (points >= 2 && drop < t.minDrop) found.push(["flat", `the smoothed loss fell by only ${pct(drop)} over the usable points (at least ${pct(t.minDrop)} wanted): raise endLr, or the model may not be learning`]);
  if (points >= 3 && !(noise <= t.maxNoise)) {
    found.push(["noisy", `the noise left in the smoothed loss (std ${sigma.toPrecision(3)}) is ${Number.isFinite(noise) ? `${pct(noise)} of` : "large against"} its fall (at most ${pct(t.maxNoise)} wanted): use larger batches`]);
  }
  return { verdict: found[0]?.[0] ?? "ok", reasons: found.map(([, r]) => r), points, drop, dropFromStart, noise };
}
