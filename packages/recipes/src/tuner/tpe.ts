/**
 * The Tree-structured Parzen Estimator: Optuna 3.1's `TPESampler` in its default, independent
 * (univariate) mode, so a study sampled here is sampled as Optuna would sample it. Per parameter: the
 * study's COMPLETE and PRUNED trials are ranked (a pruned trial by how far it got, then by its last
 * intermediate value), the best `gamma(n)` make the "below" density l(x) and the rest the "above"
 * density g(x), `eiCandidates` values are drawn from l and the one maximising log l(x) - log g(x) is
 * taken. Until `startupTrials` trials have finished, parameters are drawn at random, as
 * `randomSampler` draws them.
 */
import { OptionsError, parseOptions } from "@fitloop/core";
import { z } from "zod";
import { ParzenEstimator, argmaxNumpy, defaultWeights, type ParzenEstimatorParameters } from "./parzen.js";
import type { StudyDirection, TrialRecord } from "./replay.js";
import type { Sampler } from "./sampler.js";
import { incompatibility, sample, toExternal, toInternal, type CategoricalChoice, type Distribution } from "./space.js";

export { defaultWeights } from "./parzen.js";

/** Optuna's `default_gamma`: the best 10% of the finished trials (rounded up), at most 25, make l(x). */
export function defaultGamma(n: number): number {
  return Math.min(Math.ceil(0.1 * n), 25);
}

/** Optuna's `hyperopt_default_gamma`: `min(ceil(0.25 * sqrt(n)), 25)`. */
export function hyperoptDefaultGamma(n: number): number {
  return Math.min(Math.ceil(0.25 * Math.sqrt(n)), 25);
}

export interface TpeSamplerOptions {
  /** Random sampling until this many trials are COMPLETE or PRUNED (Optuna's `n_startup_trials`). Default 10. */
  readonly startupTrials?: number;
  /** Candidates drawn from l(x) per parameter (Optuna's `n_ei_candidates`). Default 24. */
  readonly eiCandidates?: number;
  /** How many of the `n` finished trials make l(x). Default `defaultGamma`: `min(ceil(0.1 n), 25)`. */
  readonly gamma?: (n: number) => number;
  /** One weight per observation, oldest first. Default `defaultWeights`: older ones than the last 25 ramp down. */
  readonly weights?: (n: number) => readonly number[];
  /** Add a wide Gaussian (uniform over the choices, for a categorical) centred on the range. Default true. */
  readonly considerPrior?: boolean;
  /** The prior's weight, as if it were this many observations. Default 1.0. */
  readonly priorWeight?: number;
  /** Bandwidths at least `range / min(100, 1 + components)`. Default true. */
  readonly considerMagicClip?: boolean;
  /** The end observations' bandwidths also reach to the range's ends. Default false. */
  readonly considerEndpoints?: boolean;
}

const count = (min: number) => z.number({ message: `must be an integer >= ${min}` }).int({ message: `must be an integer >= ${min}` }).min(min, { message: `must be an integer >= ${min}` });
const fn = (what: string) => z.custom<(n: number) => never>((f) => typeof f === "function", { message: `must be a function (${what})` });
const optionsSchema = z.strictObject({
  startupTrials: count(0).default(10),
  eiCandidates: count(1).default(24),
  gamma: fn("n) => number of trials in l(x)").optional(),
  weights: fn("n) => n weights").optional(),
  considerPrior: z.boolean().default(true),
  priorWeight: z.number({ message: "must be a finite number > 0" }).finite({ message: "must be a finite number > 0" }).positive({ message: "must be a finite number > 0" }).default(1.0),
  considerMagicClip: z.boolean().default(true),
  considerEndpoints: z.boolean().default(false),
});

/** How a finished trial ranks: `[step, value]`, compared in that order, lower is better. */
export type ObservationScore = readonly [step: number, value: number];

/**
 * Optuna's `_get_observation_pairs` for one parameter: for each COMPLETE trial with a value and each
 * PRUNED trial, in study order, its score and its internal value of the parameter (`null` when the
 * trial lacks it). A COMPLETE trial scores `[-Infinity, value]`; a PRUNED one `[-step, value]` at its
 * last reported step (`Infinity` for a NaN there), or `[1, 0]` if it reported nothing, so trials that
 * got further rank better. Values are negated for maximize. A value recorded with a distribution
 * incompatible with `distribution` (Optuna would have refused it) counts as missing.
 */
export function observationPairs(trials: readonly TrialRecord[], name: string, distribution: Distribution, direction: StudyDirection): { values: (number | null)[]; scores: ObservationScore[] } {
  const sign = direction === "minimize" ? 1 : -1;
  const values: (number | null)[] = [];
  const scores: ObservationScore[] = [];
  for (const t of trials) {
    if (t.state === "COMPLETE") {
      if (t.values === null || t.values.length === 0) continue;
      scores.push([Number.NEGATIVE_INFINITY, sign * t.values[0]!]);
    } else if (t.state === "PRUNED") {
      const steps = Object.keys(t.intermediateValues).map(Number);
      if (steps.length) {
        const step = Math.max(...steps);
        const v = t.intermediateValues[step]!;
        scores.push(Number.isNaN(v) ? [-step, Number.POSITIVE_INFINITY] : [-step, sign * v]);
      } else scores.push([1, 0.0]);
    } else continue;
    values.push(paramValue(t, name, distribution));
  }
  return { values, scores };
}

function paramValue(t: TrialRecord, name: string, current: Distribution): number | null {
  if (!(name in t.params)) return null;
  const d = t.distributions[name];
  if (!d || incompatibility(d, current) !== undefined) return null;
  try {
    const v = toInternal(d, t.params[name]!);
    return Number.isNaN(v) ? null : v;
  } catch {
    return null;
  }
}

/** numpy's float order (NaN last) as a comparator. */
const cmp = (a: number, b: number) => (a < b || (Number.isNaN(b) && !Number.isNaN(a)) ? -1 : b < a || (Number.isNaN(a) && !Number.isNaN(b)) ? 1 : 0);

/**
 * Optuna's `_split_observation_pairs` (one objective): a stable sort by `[step, value]`; the first
 * `nBelow` are "below" (the good ones), the rest "above"; each list in study order.
 */
export function splitObservationPairs(scores: readonly ObservationScore[], nBelow: number): { below: number[]; above: number[] } {
  const order = scores.map((_, i) => i).sort((i, j) => cmp(scores[i]![0], scores[j]![0]) || cmp(scores[i]![1], scores[j]![1]));
  const up = (a: number, b: number) => a - b;
  return { below: order.slice(0, nBelow).sort(up), above: order.slice(nBelow).sort(up) };
}

/** The l(x) and g(x) estimators of one parameter, from the split observations. */
export function tpeEstimators(values: readonly (number | null)[], split: { below: readonly number[]; above: readonly number[] }, distribution: Distribution, parameters: ParzenEstimatorParameters): { below: ParzenEstimator; above: ParzenEstimator } {
  const pick = (idx: readonly number[]) => idx.map((i) => values[i]).filter((v): v is number => v !== null && v !== undefined && !Number.isNaN(v));
  return { below: new ParzenEstimator(pick(split.below), distribution, parameters), above: new ParzenEstimator(pick(split.above), distribution, parameters) };
}

/** `TPESampler._compare`: the candidate (internal value) with the largest `log l - log g` (numpy's argmax: the first, a NaN first). */
export function tpeCompare(candidates: readonly number[], below: ParzenEstimator, above: ParzenEstimator): { index: number; value: number; logL: number[]; logG: number[] } {
  if (!candidates.length) throw new RangeError("no candidates");
  const logL = below.logPdf(candidates);
  const logG = above.logPdf(candidates);
  const index = argmaxNumpy(logL.map((l, i) => l - logG[i]!));
  return { index, value: candidates[index]!, logL, logG };
}

/** Optuna's `single()`: a distribution with one possible value, which Optuna never asks a sampler for. */
function singleValue(d: Distribution): CategoricalChoice | undefined {
  if (d.kind === "categorical") return d.choices.length === 1 ? d.choices[0] : undefined;
  if (d.low === d.high) return d.low;
  if (d.kind === "int" || d.step !== null) return d.high - d.low < (d.step ?? 1) ? d.low : undefined;
  return undefined;
}

/**
 * Optuna 3.1's `TPESampler()` with its defaults (independent sampling, `n_startup_trials=10`,
 * `n_ei_candidates=24`, `default_gamma`, `default_weights`, prior weight 1, magic clip on, endpoints
 * off). Draws come from the trial's seeded stream, so a study is reproducible from its seed and
 * history; they are not numpy's, so a trial's values differ from what Python would draw (the
 * densities and the choice among the same candidates are Optuna's).
 */
export function tpeSampler(options: TpeSamplerOptions = {}): Sampler {
  const o = parseOptions("tpeSampler", optionsSchema, options);
  const gamma = (o.gamma as ((n: number) => number) | undefined) ?? defaultGamma;
  const weights = (o.weights as ((n: number) => readonly number[]) | undefined) ?? defaultWeights;
  const parameters: ParzenEstimatorParameters = { considerPrior: o.considerPrior, priorWeight: o.priorWeight, considerMagicClip: o.considerMagicClip, considerEndpoints: o.considerEndpoints, weights };
  return {
    name: "tpe",
    sample(ctx, name, distribution) {
      const { values, scores } = observationPairs(ctx.trials, name, distribution, ctx.direction);
      const n = scores.length;
      // the startup draws are randomSampler()'s, single-valued distributions included, so both samplers start alike
      if (n < o.startupTrials) return sample(distribution, ctx.random);
      const single = singleValue(distribution);
      if (single !== undefined) return single;
      const nBelow: unknown = gamma(n);
      if (typeof nBelow !== "number" || !Number.isInteger(nBelow) || nBelow < 0) throw new OptionsError("tpeSampler", [{ path: "gamma", message: `gamma(${n}) returned ${String(nBelow)}; it must return an integer >= 0` }]);
      const { below, above } = tpeEstimators(values, splitObservationPairs(scores, nBelow), distribution, parameters);
      const candidates = below.sample(ctx.random, o.eiCandidates);
      return toExternal(distribution, tpeCompare(candidates, below, above).value);
    },
  };
}
