/**
 * `fitloop study show`: a study as a table or as JSON, for any study in the journal (fitloop's,
 * Optuna's, or both at once): state, value, parameters, reported steps, who ran it, what it retried.
 */
import type { Logger } from "@fitloop/core";
import { Study, formatValue, type JsonObject, type StudyView, type TrialRecord } from "@fitloop/recipes";
import { durationSeconds, retryOf, studyProgress, workerLabel } from "./progress.js";
import { openStorage } from "./storage.js";

export interface ShowStudyOptions {
  /** A Redis URL or the path of a journal file (never created). */
  readonly storage: string;
  readonly study: string;
  /** Redis only: Optuna's key prefix. */
  readonly prefix?: string;
  /** JSON instead of the table. */
  readonly json?: boolean;
  /** The storage's warnings. Default the console. */
  readonly logger?: Logger;
}

/** One trial in `study show --json`. Non-finite numbers (NaN, Infinity) come out as null, as JSON has none. */
export interface TrialJson {
  readonly number: number;
  readonly state: TrialRecord["state"];
  readonly value: number | null;
  readonly params: TrialRecord["params"];
  /** Reported values by step. */
  readonly intermediateValues: { readonly [step: string]: number };
  /** `host:pid` of the fitloop worker; null for an Optuna worker's trial. */
  readonly worker: string | null;
  /** The failed trial this one repeats. */
  readonly retryOf: number | null;
  readonly durationSeconds: number | null;
  readonly datetimeStart: string | null;
  readonly datetimeComplete: string | null;
  readonly userAttrs: JsonObject;
  readonly systemAttrs: JsonObject;
}

export interface StudyJson {
  readonly study: string;
  readonly direction: StudyView["direction"];
  readonly best: number | null;
  readonly counts: ReturnType<typeof studyProgress>;
  readonly trials: readonly TrialJson[];
}

function bestOf(view: StudyView): TrialRecord | undefined {
  const sign = view.direction === "minimize" ? 1 : -1;
  let best: TrialRecord | undefined;
  for (const t of view.trials) if (t.state === "COMPLETE" && t.value !== undefined && !Number.isNaN(t.value) && (!best || sign * t.value < sign * best.value!)) best = t;
  return best;
}

/** `6` for steps 0..5; `3 (3-5)` when they do not start at 0 (a retry that resumed at epoch 3). */
function stepsCell(t: TrialRecord): string {
  const steps = Object.keys(t.intermediateValues).map(Number);
  if (!steps.length) return "-";
  const lo = Math.min(...steps);
  const hi = Math.max(...steps);
  return lo === 0 && hi === steps.length - 1 ? String(steps.length) : `${steps.length} (${lo}-${hi})`;
}

const paramCell = (v: TrialRecord["params"][string] | undefined) => (v === undefined ? "-" : typeof v === "number" ? formatValue(v) : String(v));

/** The study as a text table, the best trial marked `*`, under a line counting the states. */
export function studyTable(view: StudyView): string {
  const p = studyProgress(view.trials);
  const best = bestOf(view);
  const names = [...new Set(view.trials.flatMap((t) => Object.keys(t.params)))];
  const head = `study "${view.name}" (${view.direction}): ${view.trials.length} trials: ${p.complete} complete, ${p.pruned} pruned, ${p.failed} failed, ${p.running} running, ${p.waiting} waiting; ${p.finished} finished`;
  const bestLine = best ? `best: trial ${best.number} value ${formatValue(best.value)}` : "best: none yet";
  const rows = [["", "#", "state", "value", ...names, "steps", "worker", "retry of", "time", "note"]];
  for (const t of view.trials) {
    const reason = t.userAttrs[t.state === "PRUNED" ? "fitloop:prune_reason" : "fitloop:fail_reason"];
    const seconds = durationSeconds(t);
    const retried = retryOf(t);
    rows.push([
      t === best ? "*" : "",
      String(t.number),
      t.state,
      formatValue(t.value),
      ...names.map((n) => paramCell(t.params[n])),
      stepsCell(t),
      workerLabel(t) ?? "-",
      retried === undefined ? "-" : `#${retried}`,
      seconds === undefined ? "-" : `${seconds.toFixed(1)} s`,
      (t.state === "FAIL" || t.state === "PRUNED") && typeof reason === "string" ? reason : "",
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd());
  return [head, bestLine, "", ...lines].join("\n");
}

const finite = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x : null);

/** The study as plain JSON data (`study show --json`). */
export function studyJson(view: StudyView): StudyJson {
  return {
    study: view.name,
    direction: view.direction,
    best: bestOf(view)?.number ?? null,
    counts: studyProgress(view.trials),
    trials: view.trials.map((t) => ({
      number: t.number,
      state: t.state,
      value: finite(t.value),
      params: t.params,
      intermediateValues: Object.fromEntries(Object.entries(t.intermediateValues)),
      worker: workerLabel(t) ?? null,
      retryOf: retryOf(t) ?? null,
      durationSeconds: durationSeconds(t) ?? null,
      datetimeStart: t.datetimeStart,
      datetimeComplete: t.datetimeComplete,
      userAttrs: t.userAttrs,
      systemAttrs: t.systemAttrs,
    })),
  };
}

/** Opens the storage, reads the study (never creates it) and returns the table, or the JSON text. */
export async function showStudy(options: ShowStudyOptions): Promise<string> {
  const storage = await openStorage(options.storage, { create: false, ...(options.prefix !== undefined ? { prefix: options.prefix } : {}), ...(options.logger ? { logger: options.logger } : {}) });
  try {
    const study = await Study.open({ storage: storage.journal, name: options.study, create: false });
    return options.json ? JSON.stringify(studyJson(study), null, 2) : studyTable(study);
  } finally {
    await storage.close();
  }
}
