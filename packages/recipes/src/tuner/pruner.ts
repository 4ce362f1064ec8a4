/**
 * Pruning: stop a trial whose intermediate values are clearly worse than those of finished trials
 * at the same step. The rule is Optuna's `PercentilePruner` (and `MedianPruner` = 50th percentile),
 * so a study pruned here is pruned as Optuna would have pruned it.
 */
import { parseOptions } from "@fitloop/core";
import { z } from "zod";
import type { JsonValue } from "./json.js";
import type { StudyDirection, TrialRecord } from "./replay.js";

/** What a pruner sees: the study's direction and trials as of the last sync. */
export interface PrunerContext {
  readonly direction: StudyDirection;
  readonly trials: readonly TrialRecord[];
}

/**
 * A pruner's answer with side effects: whether to prune, and system attributes `Trial.shouldPrune()`
 * records on the trial (in this order) before answering, as Optuna's pruners write them (successive
 * halving's `completed_rung_{k}`), so other workers, fitloop or Optuna, see them.
 */
export interface PruneDecision {
  readonly prune: boolean;
  readonly systemAttrs?: { readonly [key: string]: JsonValue };
}

export interface Pruner {
  readonly name: string;
  /** Whether `trial` (RUNNING, with its intermediate values so far) should stop now; a `PruneDecision` to also record attributes. */
  shouldPrune(study: PrunerContext, trial: TrialRecord): boolean | PruneDecision;
}

const count = (min: number) => z.number({ message: `must be an integer >= ${min}` }).int({ message: `must be an integer >= ${min}` }).min(min, { message: `must be an integer >= ${min}` });
const optionsSchema = z.strictObject({
  startupTrials: count(0).default(5),
  warmupSteps: count(0).default(0),
  intervalSteps: count(1).default(1),
  minTrials: count(1).default(1),
});

export interface MedianPrunerOptions {
  /** No pruning until this many trials are COMPLETE. Default 5 (Optuna's). */
  readonly startupTrials?: number;
  /** No pruning before this step (steps count from 0: epochs). Default 0. */
  readonly warmupSteps?: number;
  /** Check every this many steps after the warm-up. Default 1. */
  readonly intervalSteps?: number;
  /** At least this many finished trials must have a value at the step. Default 1. */
  readonly minTrials?: number;
}

/** numpy's `nanpercentile` with linear interpolation; NaN when there is no number. */
export function nanPercentile(values: readonly number[], q: number): number {
  const a = values.filter((v) => !Number.isNaN(v)).sort((x, y) => x - y);
  if (!a.length) return Number.NaN;
  const pos = (q / 100) * (a.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return lo === hi ? a[lo]! : a[lo]! + (a[hi]! - a[lo]!) * (pos - lo);
}

/** Optuna's `_is_first_in_interval_step`: the first report at or after each checkpoint step. */
function firstInInterval(step: number, steps: readonly number[], warmup: number, interval: number): boolean {
  const checkpoint = Math.floor((step - warmup) / interval) * interval + warmup;
  const secondLast = steps.reduce((m, s) => (s > m && s !== step ? s : m), -1);
  return secondLast < checkpoint;
}

/**
 * Prunes a trial whose best intermediate value so far is worse than the `percentile`-th of the
 * COMPLETE trials' values at the same step (for maximize, the `100 - percentile`-th): Optuna's
 * `PercentilePruner`. A trial whose reported values are all NaN is pruned.
 */
export function percentilePruner(percentile: number, options: MedianPrunerOptions = {}): Pruner {
  const p = parseOptions("percentilePruner", z.number({ message: "must be in [0, 100]" }).min(0).max(100), percentile);
  const o = parseOptions("percentilePruner", optionsSchema, options);
  return {
    name: p === 50 ? "median" : `percentile(${p})`,
    shouldPrune(study, trial) {
      const complete = study.trials.filter((t) => t.state === "COMPLETE");
      if (!complete.length || complete.length < o.startupTrials) return false;
      const steps = Object.keys(trial.intermediateValues).map(Number);
      if (!steps.length) return false;
      const step = Math.max(...steps);
      if (step < o.warmupSteps || !firstInInterval(step, steps, o.warmupSteps, o.intervalSteps)) return false;
      const mine = Object.values(trial.intermediateValues).filter((v) => !Number.isNaN(v));
      const max = study.direction === "maximize";
      if (!mine.length) return true;
      const best = max ? Math.max(...mine) : Math.min(...mine);
      const others = complete.flatMap((t) => (step in t.intermediateValues ? [t.intermediateValues[step]!] : []));
      if (others.length < o.minTrials) return false;
      const threshold = nanPercentile(others, max ? 100 - p : p);
      if (Number.isNaN(threshold)) return false;
      return max ? best < threshold : best > threshold;
    },
  };
}

/** Optuna's `MedianPruner`: prune a trial worse than the median of finished trials at the same step. */
export function medianPruner(options: MedianPrunerOptions = {}): Pruner {
  return percentilePruner(50, options);
}
