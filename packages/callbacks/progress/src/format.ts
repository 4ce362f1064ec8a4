import type { EpochProgress, FitOutcome, LogAggregate } from "@fitloop/core";

/**
 * The text of the progress output, as pure functions: the bar and the plain lines are the same parts,
 * so a terminal and a CI log read alike (and tests can check the format without a run).
 */

/**
 * A log value, Keras-like: 4 significant digits ("0.5432", "12.35", "1235"), whole numbers from
 * 10^4 ("12345": more digits rather than an exponent), an exponent below 10^-4 ("1.234e-5"), and
 * non-finite values by name ("NaN", "Infinity", "-Infinity").
 */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return "0.000";
  if (a >= 9999.5 && a < 1e15) return String(Math.round(v)); // 9999.5 would be "1.000e+4" with 4 digits
  if (a < 1e-4 || a >= 1e15) return v.toExponential(3).replace("e+", "e");
  return v.toPrecision(4);
}

/** A duration in seconds, as Keras prints one: "0.4s", "12s", "1:05", "1:02:03"; "?" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const two = (n: number) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}:${two(s % 60)}`;
  return `${Math.floor(s / 3600)}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
}

/** Milliseconds per step: "52ms/step", "0.84ms/step". */
export function formatStepTime(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "?ms/step";
  return `${ms >= 1 ? String(Math.round(ms)) : ms.toPrecision(2)}ms/step`;
}

/** Samples per second: whole numbers from 100 on, 3 significant digits below. */
export function formatRate(perSecond: number): string {
  return `${perSecond >= 100 ? String(Math.round(perSecond)) : perSecond.toPrecision(3)} samples/s`;
}

/** The epoch value a per-batch plugin log has so far (core's reduction, applied to the running aggregate). */
export function reduceAggregate(a: LogAggregate): number {
  switch (a.reduce) {
    case "sum":
      return a.sum;
    case "min":
      return a.min;
    case "max":
      return a.max;
    case "last":
      return a.last;
    default:
      return a.sum / a.count;
  }
}

/**
 * The epoch's running values, from core's running totals (`state.epochProgress`): the loss and
 * metrics as sample-weighted means (what the epoch will report), plugin logs by their reduction.
 */
export function runningLogs(p: Readonly<EpochProgress>): [string, number][] {
  const out: [string, number][] = [];
  if (p.samples > 0) for (const [k, sum] of Object.entries(p.sums)) out.push([k, sum / p.samples]);
  for (const [k, a] of Object.entries(p.plugins)) out.push([k, reduceAggregate(a)]);
  return out;
}

/**
 * The entries to show: those named in `metrics` (a name also selects its `val_` form), or all when
 * `metrics` is undefined; training values first, then validation, each in log order (Keras' order).
 */
export function selectLogs(entries: Iterable<readonly [string, number]>, metrics: readonly string[] | undefined): [string, number][] {
  const train: [string, number][] = [];
  const val: [string, number][] = [];
  for (const [k, v] of entries) {
    const isVal = k.startsWith("val_");
    if (metrics && !metrics.includes(k) && !(isVal && metrics.includes(k.slice(4)))) continue;
    (isVal ? val : train).push([k, v]);
  }
  return [...train, ...val];
}

/** What one progress line shows. */
export interface ProgressView {
  /** 0-based epoch, and the fit's number of epochs. */
  readonly epoch: number;
  readonly epochs: number;
  /** Batches done in this epoch, and the epoch's batches when the source knows them. */
  readonly done: number;
  readonly total: number | undefined;
  /** Training (shows the ETA), validating, or the epoch is over (shows its time and ms/step). */
  readonly phase: "train" | "validate" | "end";
  /** Seconds since the epoch's training began. */
  readonly elapsed: number;
  /** Seconds left in the epoch's training (train phase, known total, after a batch). */
  readonly eta: number | undefined;
  readonly msPerStep: number | undefined;
  readonly samplesPerSecond: number | undefined;
  readonly values: readonly (readonly [string, number])[];
}

/** Width of the bar between the brackets, as Keras draws it. */
export const BAR_WIDTH = 30;

/** `[==========>.........]`: a head while the epoch runs, full when done. */
export function barString(done: number, total: number, width = BAR_WIDTH): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const full = Math.floor(fraction * width);
  if (full >= width) return `[${"=".repeat(width)}]`;
  return `[${"=".repeat(full)}>${".".repeat(width - full - 1)}]`;
}

/**
 * One progress line: `Epoch 2/3 - 12/24 [=====>....] - ETA 1.2s - 456 samples/s - loss: 0.8123`.
 * `bar` draws the bar (known totals only); without it the same parts make a plain log line.
 */
export function progressText(v: ProgressView, bar: boolean): string {
  const parts = [`Epoch ${v.epoch + 1}/${v.epochs}`];
  if (v.total === undefined) parts.push(`${v.done} batches`);
  else parts.push(`${String(v.done).padStart(String(v.total).length)}/${v.total}${bar ? ` ${barString(v.done, v.total)}` : ""}`);
  if (v.phase === "end") parts.push(v.msPerStep === undefined ? formatDuration(v.elapsed) : `${formatDuration(v.elapsed)} ${formatStepTime(v.msPerStep)}`);
  else if (v.phase === "validate") parts.push("validating");
  else parts.push(v.eta === undefined ? formatDuration(v.elapsed) : `ETA ${formatDuration(v.eta)}`);
  if (v.samplesPerSecond !== undefined && Number.isFinite(v.samplesPerSecond) && v.samplesPerSecond > 0) parts.push(formatRate(v.samplesPerSecond));
  for (const [k, x] of v.values) parts.push(`${k}: ${formatNumber(x)}`);
  return parts.join(" - ");
}

/** Where the run was when it ended early: the last epoch the output followed. */
export interface EndPosition {
  readonly epoch: number;
  readonly epochs: number;
  /** Batches done in the epoch, and its batches when known. */
  readonly done: number;
  readonly total: number | undefined;
  readonly phase: "train" | "validate" | "end";
}

/**
 * The line that says why a run ended early (nothing for a completed run), e.g. `Stopped (epoch 2/5,
 * batch 10/24): EarlyStopping: ...`; `at` is undefined before the first epoch. Only the first line
 * of a multi-line error message: the error itself reaches the caller.
 */
export function endText(outcome: Pick<FitOutcome, "status" | "reason">, at: EndPosition | undefined): string | undefined {
  if (outcome.status === "completed") return undefined;
  const word = outcome.status === "stopped" ? "Stopped" : outcome.status === "cancelled" ? "Cancelled" : "Failed";
  let where: string;
  if (at === undefined) where = "before the first epoch";
  else if (at.phase === "end" && (at.total === undefined || at.done >= at.total)) where = `after epoch ${at.epoch + 1}/${at.epochs}`;
  else if (at.phase === "validate") where = `epoch ${at.epoch + 1}/${at.epochs}, validation`;
  else where = `epoch ${at.epoch + 1}/${at.epochs}, batch ${at.done}${at.total === undefined ? "" : `/${at.total}`}`;
  const reason = outcome.reason?.split("\n")[0];
  return `${word} (${where})${reason ? `: ${reason}` : ""}`;
}

/** Whether `CI` says this is a CI job (any value but "", "0" and "false"). */
export function isCI(env: Readonly<Record<string, string | undefined>>): boolean {
  const v = env["CI"];
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}
