/** What every check returns: a status, one line a person reads, and the numbers behind it. */

export type VerdictStatus = "pass" | "warn" | "fail";

/** The result of one check. `details` holds what does not fit in numbers (a loss curve, per-sample figures). */
export interface Verdict<D = undefined> {
  /** The check's name, e.g. `"overfitOneBatch"`. */
  readonly check: string;
  readonly status: VerdictStatus;
  /** One line: the verdict with its key numbers and, when it is not a pass, the likely cause. */
  readonly summary: string;
  readonly numbers: Readonly<Record<string, number>>;
  readonly details?: D;
}

/** Any check's verdict, for lists of mixed checks. */
export type AnyVerdict = Verdict<unknown>;

const RANK: Record<VerdictStatus, number> = { pass: 0, warn: 1, fail: 2 };

/** The worst status of a list (`pass` for an empty list). */
export function worstStatus(verdicts: readonly AnyVerdict[]): VerdictStatus {
  return verdicts.reduce<VerdictStatus>((w, v) => (RANK[v.status] > RANK[w] ? v.status : w), "pass");
}

/** `value` graded against two limits, lower being better: <= pass → pass, <= warn → warn, else fail (NaN fails). */
export function grade(value: number, pass: number, warn: number): VerdictStatus {
  if (!(value <= warn)) return "fail";
  return value <= pass ? "pass" : "warn";
}

/** A number for a summary line: 4 significant digits, exponent notation for very small or large values. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e5) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

export interface FormatVerdictsOptions {
  /** Wrap summaries at this width (0: never). Default 100. */
  width?: number;
}

/**
 * A readable table: one row per check with its status and summary, and a last line with the
 * overall result. Plain text (no colours), so it reads the same in a log file.
 */
export function formatVerdicts(verdicts: readonly AnyVerdict[], options: FormatVerdictsOptions = {}): string {
  const width = options.width ?? 100;
  const nameWidth = Math.max(5, ...verdicts.map((v) => v.check.length));
  const column = nameWidth + 10; // name, 2 spaces, status (6), 2 spaces
  const room = width > 0 ? Math.max(30, width - column) : Infinity;
  const lines = [`${"check".padEnd(nameWidth)}  status  summary`, `${"-".repeat(nameWidth)}  ------  ${"-".repeat(Number.isFinite(room) ? room : 60)}`];
  for (const v of verdicts) {
    const wrapped = wrap(v.summary, room);
    lines.push(`${v.check.padEnd(nameWidth)}  ${v.status.toUpperCase().padEnd(6)}  ${wrapped[0] ?? ""}`);
    for (const more of wrapped.slice(1)) lines.push(`${" ".repeat(column)}${more}`);
  }
  const counts = (["pass", "warn", "fail"] as const).map((s) => `${verdicts.filter((v) => v.status === s).length} ${s}`);
  lines.push(`overall: ${worstStatus(verdicts).toUpperCase()} (${counts.join(", ")})`);
  return lines.join("\n");
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}
