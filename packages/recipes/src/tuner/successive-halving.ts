/**
 * Successive halving (asynchronous, as Optuna 3.1's `SuccessiveHalvingPruner`): rung `k` is reached at
 * step `minResource * reductionFactor ** (minEarlyStoppingRate + k)`; a trial reaching it records its
 * value there as the system attribute `completed_rung_{k}` and goes on only if that value is in the top
 * `1 / reductionFactor` of the values every trial recorded for the rung. The attributes are written to
 * the journal under Optuna's names, so fitloop and Optuna workers on one study prune alike.
 */
import { parseOptions } from "@fitloop/core";
import { z } from "zod";
import type { JsonValue } from "./json.js";
import type { Pruner, PruneDecision } from "./pruner.js";
import type { StudyDirection, TrialRecord } from "./replay.js";

export interface SuccessiveHalvingPrunerOptions {
  /**
   * The step of the first rung. `"auto"` (the default, Optuna's): at the first check when a COMPLETE
   * trial exists, `max(floor(last step of the longest COMPLETE trial / 100), 1)`, then kept by this
   * pruner (each process estimates it once, as each Optuna pruner object does).
   */
  readonly minResource?: "auto" | number;
  /** Only the top `1 / reductionFactor` go on at each rung. Default 4. */
  readonly reductionFactor?: number;
  /** Rungs start at `minResource * reductionFactor ** minEarlyStoppingRate`. Default 0. */
  readonly minEarlyStoppingRate?: number;
  /** Prune a trial at a rung until more than this many trials reached it. Needs a numeric `minResource`. Default 0. */
  readonly bootstrapCount?: number;
}

const intMin = (min: number) => z.number({ message: `must be an integer >= ${min}` }).int({ message: `must be an integer >= ${min}` }).min(min, { message: `must be an integer >= ${min}` });
const optionsSchema = z
  .strictObject({
    minResource: z.union([z.literal("auto"), intMin(1)], { message: 'must be "auto" or an integer >= 1' }).default("auto"),
    reductionFactor: intMin(2).default(4),
    minEarlyStoppingRate: intMin(0).default(0),
    bootstrapCount: intMin(0).default(0),
  })
  .refine((o) => !(o.bootstrapCount > 0 && o.minResource === "auto"), { path: ["bootstrapCount"], message: 'must be 0 with minResource "auto" (Optuna: mutually incompatible)' });

/** Optuna's `_completed_rung_key`. */
export const completedRungKey = (rung: number): string => `completed_rung_${rung}`;

const lastStep = (t: TrialRecord): number | undefined => {
  const steps = Object.keys(t.intermediateValues).map(Number);
  return steps.length ? Math.max(...steps) : undefined;
};

/** Optuna's `_get_current_rung`: the first rung the trial has no `completed_rung_{k}` for. */
export function currentRung(trial: TrialRecord): number {
  let rung = 0;
  while (completedRungKey(rung) in trial.systemAttrs) rung++;
  return rung;
}

/** Optuna's `_estimate_min_resource`: `max(floor(longest COMPLETE trial's last step / 100), 1)`, or undefined without one. */
export function estimateMinResource(trials: readonly TrialRecord[]): number | undefined {
  const steps = trials.flatMap((t) => (t.state === "COMPLETE" && lastStep(t) !== undefined ? [lastStep(t)!] : []));
  if (!steps.length) return undefined;
  return Math.max(Math.floor(Math.max(...steps) / 100), 1);
}

/**
 * Optuna's `_is_trial_promotable_to_next_rung`: `value` is at least as good as the
 * `max(floor(n / reductionFactor), 1)`-th best of the `n` competing values (its own included).
 */
export function promotable(value: number, competing: readonly number[], reductionFactor: number, direction: StudyDirection): boolean {
  let idx = Math.floor(competing.length / reductionFactor) - 1;
  if (idx === -1) idx = 0;
  const sorted = [...competing].sort((a, b) => a - b);
  return direction === "maximize" ? value >= sorted[sorted.length - (idx + 1)]! : value <= sorted[idx]!;
}

/**
 * Optuna 3.1's `SuccessiveHalvingPruner` (ASHA). `Trial.shouldPrune()` writes the `completed_rung_{k}`
 * attributes it returns before answering. A trial's rung values compete with every trial of the
 * study that recorded the rung (any state, any worker). A NaN value at a rung prunes.
 */
export function successiveHalvingPruner(options: SuccessiveHalvingPrunerOptions = {}): Pruner {
  const o = parseOptions("successiveHalvingPruner", optionsSchema, options);
  let minResource: number | undefined = o.minResource === "auto" ? undefined : o.minResource;
  return {
    name: "successive-halving",
    shouldPrune(study, trial): PruneDecision {
      const systemAttrs: { [key: string]: JsonValue } = {};
      const answer = (prune: boolean): PruneDecision => ({ prune, systemAttrs });
      const step = lastStep(trial);
      if (step === undefined) return answer(false);
      let rung = currentRung(trial);
      const value = trial.intermediateValues[step]!;
      const trials = study.trials; // one snapshot, as Optuna fetches them once
      for (;;) {
        if (minResource === undefined) {
          minResource = estimateMinResource(trials);
          if (minResource === undefined) return answer(false);
        }
        const promotionStep = minResource * o.reductionFactor ** (o.minEarlyStoppingRate + rung);
        if (step < promotionStep) return answer(false);
        if (Number.isNaN(value)) return answer(true);
        const key = completedRungKey(rung);
        systemAttrs[key] = value;
        // Optuna's `_get_competing_values`; a non-number left by some other writer is skipped (Python's sort would raise)
        const competing = trials.flatMap((t) => (typeof t.systemAttrs[key] === "number" && !Number.isNaN(t.systemAttrs[key]) ? [t.systemAttrs[key] as number] : []));
        competing.push(value);
        if (competing.length <= o.bootstrapCount) return answer(true);
        if (!promotable(value, competing, o.reductionFactor, study.direction)) return answer(true);
        rung++;
      }
    },
  };
}
