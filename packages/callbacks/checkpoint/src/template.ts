import type { Logs } from "@fitloop/core";
import { CheckpointFormatError } from "./errors.js";
import { sanitizeName } from "./store.js";

/** What a name template can refer to: the position and every log value. */
export interface NameValues {
  readonly epoch: number;
  readonly step: number;
  readonly batch: number;
  readonly logs: Readonly<Logs>;
}

const FIELD = /\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}/g;

function format(value: number, spec: string | undefined): string {
  if (!spec) return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  const m = /^(0?)(\d*)(?:\.(\d+))?([dfe])$/.exec(spec);
  if (!m) throw new CheckpointFormatError(`name template: format ":${spec}" is not one of :d, :03d, :.4f, :.3e`);
  const [, zero, width, precision, kind] = m;
  let s = kind === "d" ? String(Math.round(value)) : kind === "f" ? value.toFixed(Number(precision ?? 6)) : value.toExponential(Number(precision ?? 6));
  if (width) s = s.padStart(Number(width), zero ? "0" : " ");
  return s;
}

/**
 * Fills `{epoch}`, `{step}`, `{batch}` and any log key (`{val_loss:.4f}`, `{epoch:03d}`) and makes
 * the result a valid checkpoint name. A key that is not there is an error naming what is, or, with
 * `missing: "NA"` (saves in the middle of an epoch, without val_* logs), "NA".
 */
export function formatName(template: string, v: NameValues, missing: "error" | "NA" = "error"): string {
  const filled = template.replace(FIELD, (_, key: string, spec: string | undefined) => {
    const value = key === "epoch" ? v.epoch : key === "step" ? v.step : key === "batch" ? v.batch : v.logs[key];
    if (typeof value !== "number" && missing === "NA") return "NA";
    if (typeof value !== "number") throw new CheckpointFormatError(`name template "${template}": {${key}} is not available here (epoch, step, batch, ${Object.keys(v.logs).join(", ") || "no logs"})`);
    return format(value, spec);
  });
  return sanitizeName(filled);
}
