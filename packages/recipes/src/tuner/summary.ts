/**
 * Results of a study: a text table and vega-lite plots (objective by trial with the best so far,
 * and objective against each parameter). Pure functions of the trials, so they work on a study
 * another process or Python wrote; `@fitloop/recipes/node` renders the plots to SVG/PNG files.
 */
import type { PlotSpec } from "@fitloop/report";
import { parseLocalIsoTimestamp } from "./json.js";
import type { StudyDirection, TrialRecord } from "./replay.js";
import type { Distribution } from "./space.js";

/** What the summaries need: a `Study` (after `sync()` or `tune`) fits. */
export interface StudyView {
  readonly name: string;
  readonly direction: StudyDirection;
  readonly trials: readonly TrialRecord[];
}

/** 4 significant digits, or scientific for very small and very large magnitudes (learning rates). */
export function formatValue(x: number | undefined): string {
  if (x === undefined) return "-";
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a < 1e-3 || a >= 1e5) return x.toExponential(2).replace(/\.?0+e/, "e");
  return String(Number(x.toPrecision(4)));
}

const seconds = (t: TrialRecord): string => {
  if (!t.datetimeStart || !t.datetimeComplete) return "-";
  const ms = parseLocalIsoTimestamp(t.datetimeComplete) - parseLocalIsoTimestamp(t.datetimeStart);
  // an enqueued trial's start can be stamped after a completion on another clock: never "-0.0 s"
  return Number.isFinite(ms) ? `${(Math.max(0, ms) / 1000).toFixed(1)} s` : "-";
};

const note = (t: TrialRecord): string => {
  const reason = t.userAttrs[t.state === "PRUNED" ? "fitloop:prune_reason" : "fitloop:fail_reason"];
  const retry = t.systemAttrs["retry_history"];
  const parts = [typeof reason === "string" && (t.state === "FAIL" || t.state === "PRUNED") ? reason : "", Array.isArray(retry) && retry.length ? `retry of #${String(retry.at(-1))}` : ""];
  return parts.filter(Boolean).join("; ");
};

function paramNames(trials: readonly TrialRecord[]): string[] {
  const names = new Set<string>();
  for (const t of trials) for (const k of Object.keys(t.params)) names.add(k);
  return [...names];
}

export interface SummaryOptions {
  /** Row order. Default "number". */
  readonly sortBy?: "number" | "value";
  /** At most this many rows (after sorting). Default all. */
  readonly limit?: number;
}

/**
 * The study as a text table: one row per trial (state, value, parameters, seed, duration, why it
 * failed or was pruned), the best trial marked `*`, with a header that counts the states.
 */
export function studySummary(study: StudyView, options: SummaryOptions = {}): string {
  const trials = study.trials;
  const count = (s: TrialRecord["state"]) => trials.filter((t) => t.state === s).length;
  const sign = study.direction === "minimize" ? 1 : -1;
  const complete = trials.filter((t) => t.state === "COMPLETE" && t.value !== undefined && !Number.isNaN(t.value));
  const best = complete.reduce<TrialRecord | undefined>((b, t) => (!b || sign * t.value! < sign * b.value! ? t : b), undefined);
  const names = paramNames(trials);
  const head = `study "${study.name}" (${study.direction}): ${trials.length} trials: ${count("COMPLETE")} complete, ${count("PRUNED")} pruned, ${count("FAIL")} failed, ${count("RUNNING")} running, ${count("WAITING")} waiting`;
  const bestLine = best ? `best: #${best.number} value ${formatValue(best.value)} (${names.filter((n) => n in best.params).map((n) => `${n}=${cell(best.params[n])}`).join(", ")})` : "best: none yet";
  let rows = [...trials];
  if (options.sortBy === "value") rows.sort((a, b) => (a.value === undefined ? 1 : b.value === undefined ? -1 : sign * (a.value - b.value)));
  if (options.limit !== undefined) rows = rows.slice(0, options.limit);
  const table = [["", "#", "state", "value", ...names, "seed", "time", "note"]];
  for (const t of rows) {
    const seed = t.systemAttrs["fitloop:seed"];
    table.push([t === best ? "*" : "", String(t.number), t.state, formatValue(t.value), ...names.map((n) => cell(t.params[n])), typeof seed === "number" ? String(seed) : "-", seconds(t), note(t)]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const lines = table.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd());
  return [head, bestLine, "", ...lines].join("\n");
}

function cell(v: TrialRecord["params"][string] | undefined): string {
  if (v === undefined) return "-";
  return typeof v === "number" ? formatValue(v) : String(v);
}

const FONT = "DejaVu Sans, Liberation Sans, Helvetica, Arial, sans-serif";
const CONFIG = {
  font: FONT,
  background: "white",
  padding: 12,
  view: { stroke: "#ccc" },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal", gridColor: "#ececec", domainColor: "#888", tickColor: "#888" },
  legend: { labelFontSize: 12, orient: "bottom", direction: "horizontal" },
  title: { fontSize: 15, fontWeight: "bold", anchor: "start", subtitleFontSize: 11, subtitleColor: "#555", offset: 10 },
} as const;
const STATE_COLORS = { field: "state", type: "nominal", title: null, scale: { domain: ["COMPLETE", "PRUNED"], range: ["#1f77b4", "#b5b5b5"] } } as const;

export interface StudyPlotOptions {
  /** Scale of the objective axis. Default "linear"; "log" drops values <= 0. */
  readonly scale?: "linear" | "log";
}

export interface StudyPlots {
  /** Objective by trial number (COMPLETE and PRUNED) with the best so far; undefined without values. */
  readonly history: PlotSpec | undefined;
  /** Objective against each parameter, one panel per parameter (log axis for log-scale ones). */
  readonly params: PlotSpec | undefined;
}

/** vega-lite specs of the study; render with `@fitloop/report`'s `toSvg` (or `writeStudyPlots` from `@fitloop/recipes/node`). */
export function studyPlots(study: StudyView, options: StudyPlotOptions = {}): StudyPlots {
  const log = options.scale === "log";
  const shown = study.trials.filter((t) => (t.state === "COMPLETE" || t.state === "PRUNED") && t.value !== undefined && Number.isFinite(t.value) && (!log || t.value > 0));
  if (!shown.length) return { history: undefined, params: undefined };
  const y = { field: "value", type: "quantitative", title: log ? "objective (log scale)" : "objective", scale: log ? { type: "log" } : { zero: false } } as const;
  const sign = study.direction === "minimize" ? 1 : -1;
  let best = Number.POSITIVE_INFINITY;
  const bestRows = shown.filter((t) => t.state === "COMPLETE").map((t) => ({ number: t.number, value: sign * (best = Math.min(best, sign * t.value!)) }));
  const rows = shown.map((t) => ({ number: t.number, value: t.value!, state: t.state }));
  const history = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: `Study "${study.name}"`, subtitle: `Objective (${study.direction}) by trial; the line is the best so far` },
    width: 560,
    height: 260,
    config: CONFIG,
    layer: [
      { data: { values: bestRows }, mark: { type: "line", interpolate: "step-after", color: "#ff7f0e", strokeWidth: 2 }, encoding: { x: { field: "number", type: "quantitative", title: "trial" }, y } },
      { data: { values: rows }, mark: { type: "point", filled: true, size: 60 }, encoding: { x: { field: "number", type: "quantitative", title: "trial", axis: { tickMinStep: 1 } }, y, color: STATE_COLORS } },
    ],
  } as PlotSpec;
  const dists = new Map<string, Distribution>();
  for (const t of shown) for (const [k, d] of Object.entries(t.distributions)) if (!dists.has(k)) dists.set(k, d);
  const panels = [...dists].map(([name, d]) => ({
    data: { values: shown.filter((t) => name in t.params).map((t) => ({ x: t.params[name], value: t.value!, state: t.state })) },
    width: 240,
    height: 200,
    mark: { type: "point", filled: true, size: 50 },
    encoding: {
      x: d.kind === "categorical" ? { field: "x", type: "nominal", title: name, axis: { labelAngle: 0 } } : { field: "x", type: "quantitative", title: d.log ? `${name} (log scale)` : name, scale: d.log ? { type: "log" } : { zero: false } },
      y,
      color: STATE_COLORS,
    },
  }));
  const params = panels.length ? ({ $schema: "https://vega.github.io/schema/vega-lite/v6.json", title: { text: "Objective by parameter", subtitle: `Study "${study.name}"` }, config: CONFIG, hconcat: panels } as PlotSpec) : undefined;
  return { history, params };
}
