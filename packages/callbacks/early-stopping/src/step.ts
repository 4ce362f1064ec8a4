import { initialBest, isImprovement, type ImprovementRule } from "@fitloop/core";
import type { ResolvedEarlyStoppingOptions } from "./options.js";

/** Why a run was stopped. `baseline`: patience ran out while the best value never beat the baseline. */
export type StopKind = "patience" | "baseline" | "stoppingThreshold" | "divergenceThreshold" | "nonFinite";

export const STOP_KINDS: readonly StopKind[] = ["patience", "baseline", "stoppingThreshold", "divergenceThreshold", "nonFinite"];

/** The part of the options the decision reads. */
export type EarlyStoppingRule = Pick<
  ResolvedEarlyStoppingOptions,
  "monitor" | "direction" | "minDelta" | "minDeltaMode" | "patience" | "baseline" | "startFromEpoch" | "stoppingThreshold" | "divergenceThreshold" | "checkFinite"
>;

/**
 * Where the decision stands, as plain data (JSON has no Infinity: `null` before the first finite
 * value). `wait` is Keras' counter: epochs since the wait was last reset.
 */
export interface EarlyStoppingState {
  readonly wait: number;
  readonly best: number | null;
  readonly bestEpoch: number | null;
  /** The epoch at whose end this rule asked to stop, or `null`. */
  readonly stoppedEpoch: number | null;
}

export interface EarlyStoppingDecision {
  /** False for epochs before `startFromEpoch`: nothing was looked at and the state is unchanged. */
  readonly monitored: boolean;
  /** The value is the new best (the class then copies the weights when `restoreBestWeights`). */
  readonly improved: boolean;
  readonly stop: boolean;
  readonly kind: StopKind | undefined;
  /** One sentence saying why, when `stop`. */
  readonly reason: string | undefined;
}

export function initialEarlyStoppingState(): EarlyStoppingState {
  return { wait: 0, best: null, bestEpoch: null, stoppedEpoch: null };
}

/**
 * One epoch of the decision, on plain data. Keras 3's `EarlyStopping.on_epoch_end` for the wait,
 * the best value and the patience stop (including its `baseline` rule and `epoch > 0`), checked in
 * the order of Lightning's `_evaluate_stopping_criteria`: not finite -> `stoppingThreshold` ->
 * `divergenceThreshold` -> patience. A value that is the new best is recorded as best even on an
 * epoch a threshold stops (so restoring the best weights gives the weights that reached the
 * threshold). A non-finite value is never an improvement.
 */
export function earlyStoppingStep(state: EarlyStoppingState, current: number, epoch: number, rule: EarlyStoppingRule): { state: EarlyStoppingState; decision: EarlyStoppingDecision } {
  if (epoch < rule.startFromEpoch) return { state, decision: { monitored: false, improved: false, stop: false, kind: undefined, reason: undefined } };
  const improvement: ImprovementRule = { mode: rule.direction, minDelta: rule.minDelta, minDeltaMode: rule.minDeltaMode };
  let { wait, best, bestEpoch } = state;
  // Keras counts the epoch first, then resets on an improvement that also beats the baseline.
  wait++;
  const improved = isImprovement(current, best ?? initialBest(rule.direction), improvement);
  if (improved) {
    best = current;
    bestEpoch = epoch;
    if (rule.baseline === undefined || isImprovement(current, rule.baseline, improvement)) wait = 0;
  }
  const next = { wait, best, bestEpoch };
  const stopWith = (kind: StopKind, reason: string) => ({ state: { ...next, stoppedEpoch: epoch }, decision: { monitored: true, improved, stop: true, kind, reason } });

  const m = rule.monitor;
  const bestPart = best === null ? "no finite value so far" : `best ${fmt(best)} at epoch ${bestEpoch}`;
  const better = rule.direction === "min" ? "below" : "above";
  const worse = rule.direction === "min" ? "above" : "below";
  if (rule.checkFinite && !Number.isFinite(current)) {
    return stopWith("nonFinite", `${m} is ${current} at the end of epoch ${epoch}; ${bestPart}`);
  }
  // strict comparisons, as Lightning's monitor_op
  const t = rule.stoppingThreshold;
  if (t !== undefined && (rule.direction === "min" ? current < t : current > t)) {
    return stopWith("stoppingThreshold", `${m} ${fmt(current, 6)} at epoch ${epoch} is ${better} the stopping threshold ${t}`);
  }
  const d = rule.divergenceThreshold;
  if (d !== undefined && (rule.direction === "min" ? current > d : current < d)) {
    return stopWith("divergenceThreshold", `${m} ${fmt(current, 6)} at epoch ${epoch} is ${worse} the divergence threshold ${d}; ${bestPart}`);
  }
  // Keras returns on an improvement before the patience check, and never stops at epoch 0.
  if (!improved && wait >= rule.patience && epoch > 0) {
    const epochs = `${wait} epoch${wait === 1 ? "" : "s"}`;
    const beatBaseline = best !== null && rule.baseline !== undefined && isImprovement(best, rule.baseline, improvement);
    if (rule.baseline !== undefined && !beatBaseline) {
      return stopWith("baseline", `${m} did not beat the baseline ${fmt(rule.baseline)} in ${epochs}; ${bestPart}`);
    }
    const by = rule.minDeltaMode === "relative" ? `${fmt(rule.minDelta * 100)}% of the best` : fmt(rule.minDelta);
    return stopWith("patience", `${m} did not improve by more than ${by} for ${epochs}; ${bestPart}`);
  }
  return { state: { ...next, stoppedEpoch: state.stoppedEpoch }, decision: { monitored: true, improved, stop: false, kind: undefined, reason: undefined } };
}

/** A number for a message: `digits` significant digits, no trailing zeros. */
export function fmt(v: number, digits = 4): string {
  return Number.isFinite(v) ? String(Number(v.toPrecision(digits))) : String(v);
}
