import { formatNumber, LogFileFormatError, setKey } from "./values.js";

/** One line of a JSONL log. */
export interface JsonlRow {
  /** When the row was recorded (ISO 8601, UTC); `null` for a row restored from a checkpoint's history on resume. */
  readonly time: string | null;
  /** 0-based epoch. */
  readonly epoch: number;
  /** Optimizer steps taken so far in the run; `null` for a row restored from a checkpoint's history. */
  readonly step: number | null;
  readonly logs: Readonly<Record<string, number>>;
}

/** The fields every line has; a log under one of these names cannot be written beside them. */
export const JSONL_FIELDS: readonly string[] = ["time", "epoch", "step"];

/** JSON has no NaN or infinities: they are written as these strings, and read back as numbers. */
const NON_FINITE: Readonly<Record<string, number>> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, "-Infinity": Number.NEGATIVE_INFINITY };

const value = (v: number) => (Number.isFinite(v) ? formatNumber(v) : JSON.stringify(formatNumber(v)));

/**
 * One JSON object (without the line break): `time`, `epoch`, `step`, then the logs by sorted key;
 * non-finite values as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`. A log named like a field is a
 * `RangeError`.
 */
export function formatJsonlRow(row: JsonlRow): string {
  const keys = Object.keys(row.logs).sort();
  const clash = keys.find((k) => JSONL_FIELDS.includes(k));
  if (clash !== undefined) throw new RangeError(`a log named "${clash}" would overwrite the line's own "${clash}" field`);
  const fields = [`"time":${JSON.stringify(row.time)}`, `"epoch":${value(row.epoch)}`, `"step":${row.step === null ? "null" : value(row.step)}`];
  // built by hand: the key order is fixed, and a key named __proto__ stays a key
  for (const k of keys) fields.push(`${JSON.stringify(k)}:${value(row.logs[k]!)}`);
  return `{${fields.join(",")}}`;
}

function numberField(v: unknown, key: string, line: number): number {
  if (typeof v === "number") return v;
  if (typeof v === "string" && Object.hasOwn(NON_FINITE, v)) return NON_FINITE[v]!;
  throw new LogFileFormatError(`"${key}" is ${JSON.stringify(v)}, not a number or "NaN", "Infinity", "-Infinity"`, line);
}

/**
 * Reads what `JSONLLogger` writes: one object per line (blank lines skipped), `"NaN"`, `"Infinity"`
 * and `"-Infinity"` restored as numbers. A line that is not such an object is a `LogFileFormatError`
 * naming it.
 */
export function readJsonl(text: string): JsonlRow[] {
  const rows: JsonlRow[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === "") return;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      throw new LogFileFormatError(`not JSON (${(e as Error).message})`, line);
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new LogFileFormatError("not a JSON object", line);
    const o = obj as Record<string, unknown>;
    const epoch = numberField(o["epoch"], "epoch", line);
    const time = o["time"] ?? null;
    if (time !== null && typeof time !== "string") throw new LogFileFormatError(`"time" is ${JSON.stringify(time)}, not a string or null`, line);
    const step = o["step"] === undefined || o["step"] === null ? null : numberField(o["step"], "step", line);
    const logs: Record<string, number> = {};
    for (const [k, v] of Object.entries(o)) if (!JSONL_FIELDS.includes(k)) setKey(logs, k, numberField(v, k, line));
    rows.push({ time, epoch, step, logs });
  });
  return rows;
}
