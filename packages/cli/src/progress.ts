/** How far a study is, and how its trials are written on one line: shared by `tune` and `study show`. */
import { formatValue, isFinished, parseLocalIsoTimestamp, workerOf, type JsonValue, type TrialRecord } from "@fitloop/recipes";

/** Trials that were failed because their worker died and were queued again (Optuna's `retry_history`). */
export function retriedNumbers(trials: readonly TrialRecord[]): Set<number> {
  const out = new Set<number>();
  for (const t of trials) {
    const history = t.systemAttrs["retry_history"];
    if (Array.isArray(history)) for (const n of history as JsonValue[]) if (typeof n === "number") out.add(n);
  }
  return out;
}

export interface StudyProgress {
  /** What `--trials` counts: COMPLETE, PRUNED and FAIL trials, except FAILs that were queued again. */
  readonly finished: number;
  readonly complete: number;
  readonly pruned: number;
  readonly failed: number;
  readonly running: number;
  readonly waiting: number;
}

export function studyProgress(trials: readonly TrialRecord[]): StudyProgress {
  const retried = retriedNumbers(trials);
  const count = (s: TrialRecord["state"]) => trials.filter((t) => t.state === s).length;
  return {
    finished: trials.filter((t) => isFinished(t.state) && !(t.state === "FAIL" && retried.has(t.number))).length,
    complete: count("COMPLETE"),
    pruned: count("PRUNED"),
    failed: count("FAIL"),
    running: count("RUNNING"),
    waiting: count("WAITING"),
  };
}

/** `lr=0.00123 units=16`. */
export function describeParams(params: TrialRecord["params"], separator = " "): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${typeof v === "number" ? formatValue(v) : String(v)}`)
    .join(separator);
}

/** `host:pid` of the fitloop worker that ran the trial; undefined for Optuna's (they record none). */
export function workerLabel(t: TrialRecord): string | undefined {
  const w = workerOf(t);
  if (!w) return undefined;
  return `${w.host ?? "?"}:${w.pid ?? "?"}`;
}

/** From start to completion, by the journal's timestamps; undefined while running or without them. */
export function durationSeconds(t: TrialRecord): number | undefined {
  if (!t.datetimeStart || !t.datetimeComplete) return undefined;
  const ms = parseLocalIsoTimestamp(t.datetimeComplete) - parseLocalIsoTimestamp(t.datetimeStart);
  return Number.isFinite(ms) ? Math.max(0, ms) / 1000 : undefined;
}

/** The failed trial this one repeats (Optuna's `failed_trial`). */
export function retryOf(t: TrialRecord): number | undefined {
  const n = t.systemAttrs["failed_trial"];
  return typeof n === "number" ? n : undefined;
}
