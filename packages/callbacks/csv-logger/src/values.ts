import { FitloopError } from "@fitloop/core";

/** A log file this package cannot read (or append to): the line and what was wrong. */
export class LogFileFormatError extends FitloopError {
  constructor(
    message: string,
    /** 1-based line of the file where the problem is. */
    readonly line: number,
  ) {
    super("LOG_FILE_FORMAT", `line ${line}: ${message}`);
  }
}

/**
 * A log value as text: shortest round-trip decimal (`String(v)`), `NaN`, `Infinity`, `-Infinity`
 * written out (Keras' `nan`/`inf` are read too), and `-0` kept.
 */
export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "Infinity";
  if (v === Number.NEGATIVE_INFINITY) return "-Infinity";
  if (Object.is(v, -0)) return "-0";
  return String(v);
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const SPECIAL: Readonly<Record<string, number>> = {
  nan: Number.NaN,
  "+nan": Number.NaN,
  "-nan": Number.NaN,
  inf: Number.POSITIVE_INFINITY,
  "+inf": Number.POSITIVE_INFINITY,
  infinity: Number.POSITIVE_INFINITY,
  "+infinity": Number.POSITIVE_INFINITY,
  "-inf": Number.NEGATIVE_INFINITY,
  "-infinity": Number.NEGATIVE_INFINITY,
};

/**
 * The inverse of `formatNumber`, also for Python's spellings (`nan`, `inf`, `-inf`, any case);
 * `undefined` for text that is not a number.
 */
export function parseNumber(text: string): number | undefined {
  if (DECIMAL.test(text)) return Number(text);
  return Object.hasOwn(SPECIAL, text.toLowerCase()) ? SPECIAL[text.toLowerCase()] : undefined;
}

/** `obj[key] = value` that also works for a key named `__proto__` (an own property, as JSON.parse makes). */
export function setKey(obj: Record<string, number>, key: string, value: number): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
