import { FitloopError } from "./errors.js";
import type { Logs } from "./state.js";

/** Whether a monitored metric improves downwards (`min`) or upwards (`max`). */
export type MonitorMode = "min" | "max";
/** `absolute`: improve by more than `minDelta`; `relative`: by more than `minDelta * |best|`. */
export type MinDeltaMode = "absolute" | "relative";

export interface ImprovementRule {
  readonly mode: MonitorMode;
  readonly minDelta: number;
  readonly minDeltaMode: MinDeltaMode;
}

// Names (without `val_`) whose direction `mode: "auto"` knows. Anything else needs an explicit mode:
// guessing "min" for an unknown metric (Keras' ReduceLROnPlateau does) silently inverts a schedule.
const MAX_PATTERN = /(^|_)(acc|accuracy|[a-z_]*_accuracy|auc|precision|recall|f1|f1_score|fbeta|iou|miou|r2|map|top_\d+)$/;
const MIN_PATTERN = /(^|_)(loss|[a-z_]*_loss|error|mse|mae|mape|msle|rmse|crossentropy|[a-z_]*_crossentropy|hinge|perplexity|ppl|kld|kl_divergence|logcosh|poisson)$/;

/** The direction of `monitor` for `mode`; `undefined` when `auto` cannot tell from the name. */
export function resolveMonitorMode(monitor: string, mode: "auto" | MonitorMode): MonitorMode | undefined {
  if (mode !== "auto") return mode;
  const name = monitor.replace(/^val_/, "");
  if (MAX_PATTERN.test(name)) return "max";
  if (MIN_PATTERN.test(name)) return "min";
  return undefined;
}

/** The worst possible value, so that any finite first value is an improvement. */
export function initialBest(mode: MonitorMode): number {
  return mode === "min" ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
}

/**
 * Keras' rule (`current - minDelta < best` for min), or PyTorch's `threshold_mode="rel"` with `|best|`
 * so it also holds for negative values. A non-finite value never improves.
 */
export function isImprovement(current: number, best: number, rule: ImprovementRule): boolean {
  if (!Number.isFinite(current)) return false;
  if (!Number.isFinite(best)) return rule.mode === "min" ? current < best : current > best;
  const delta = rule.minDeltaMode === "relative" ? rule.minDelta * Math.abs(best) : rule.minDelta;
  return rule.mode === "min" ? current < best - delta : current > best + delta;
}

/** A monitored key is not in the logs where it should be. */
export class MissingMonitorError extends FitloopError {
  constructor(
    readonly owner: string,
    readonly monitor: string,
    readonly available: readonly string[],
    where: string,
  ) {
    const hint = monitor.startsWith("val_") && !available.some((k) => k.startsWith("val_")) ? " (val_* metrics need `validation` data in fit())" : "";
    super("MONITOR_MISSING", `${owner} monitors "${monitor}", but the logs ${where} have no such key${hint}.${available.length ? ` Available: ${available.join(", ")}.` : ""}`);
  }
}

/**
 * Before the first step: a `val_*` monitor in a fit without validation data can never be there, so
 * say it now (a `MissingMonitorError`) rather than after a whole epoch of training.
 */
export function checkMonitorPossible(state: { readonly hasValidation: boolean }, monitor: string, owner: string): void {
  if (monitor.startsWith("val_") && !state.hasValidation) throw new MissingMonitorError(owner, monitor, [], "of a fit() without validation data");
}

/** The monitored value, or a `MissingMonitorError` naming the keys that are there. */
export function monitorValue(logs: Readonly<Logs>, monitor: string, owner: string, where: string): number {
  const v = logs[monitor];
  if (typeof v !== "number") throw new MissingMonitorError(owner, monitor, Object.keys(logs), where);
  return v;
}
