import { parseOptions } from "@fitloop/core";
import { z } from "zod";
import { cellValue, checkColumns, formatCsvRow, parseCsvRecords, type CsvCell } from "./csv.js";
import { commonShape, isRow, RowLogger, type FileRecord, type Row } from "./sink.js";
import { LogFileFormatError } from "./values.js";

const schema = z
  .strictObject({
    ...commonShape,
    separator: z
      .string({ message: "must be one character" })
      .length(1, { message: "must be one character, e.g. \",\" or \"\\t\"" })
      .refine((s) => !/["\r\n]/.test(s), { message: "cannot be a quote or a line break" })
      .default(","),
  })
  .superRefine((o, ctx) => {
    const own = o.every === "epoch" ? ["epoch"] : ["epoch", "step"];
    for (const k of o.keys ?? []) if (own.includes(k)) ctx.addIssue({ code: "custom", path: ["keys"], message: `"${k}" is a column of its own, always written` });
  });

export type CSVLoggerOptions = z.input<typeof schema>;

interface CsvFileRecord extends FileRecord {
  readonly cells: string[];
}

const keysOf = (rows: readonly Row[]) => [...new Set(rows.flatMap((r) => Object.keys(r.logs)))];
const sorted = (keys: readonly string[]) => [...keys].sort();

/**
 * Keras' `CSVLogger` for fitloop: a header of `epoch` and the sorted log keys of the first row, one
 * row per epoch (or `epoch`, `step` and a batch's logs every N steps), `NA` for a key a row lacks,
 * `NaN`/`Infinity`/`-Infinity` written out. Beyond Keras: a key that appears later widens the header
 * (the file is rewritten atomically, earlier rows get `NA`), and appending on resume drops the rows
 * an interrupted run wrote past the resume point. See the README for every rule.
 */
export class CSVLogger extends RowLogger<CsvFileRecord> {
  readonly options: Readonly<z.output<typeof schema>>;
  /** The header on disk (undefined: the file has none yet). */
  private columns: string[] | undefined;
  private readonly fixed: readonly string[];

  constructor(options: CSVLoggerOptions) {
    const o = parseOptions("CSVLogger", schema, options);
    const fixed = o.every === "epoch" ? ["epoch"] : ["epoch", "step"];
    super("CSVLogger", "csv-logger", o, fixed);
    this.options = o;
    this.fixed = fixed;
  }

  /** The header as it is on disk now (undefined before the first row). */
  get header(): readonly string[] | undefined {
    return this.columns;
  }

  protected forget(): void {
    this.columns = undefined;
  }

  protected parse(text: string): CsvFileRecord[] {
    const records = parseCsvRecords(text, this.options.separator);
    const columns = checkColumns(records[0]);
    this.columns = records.length ? columns : undefined;
    if (!records.length) return [];
    if (columns[0] !== "epoch") throw new LogFileFormatError(`the first column is "${columns[0]}", not "epoch"`, records[0]!.line);
    const stepAt = columns.indexOf("step");
    return records.slice(1).map(({ cells, line }) => {
      if (cells.length !== columns.length) throw new LogFileFormatError(`${cells.length} cells, the header has ${columns.length} columns`, line);
      const epoch = cellValue(cells[0]!, "epoch", line);
      if (epoch === undefined) throw new LogFileFormatError('"epoch" has no value', line);
      return { epoch, step: stepAt < 0 ? undefined : cellValue(cells[stepAt]!, "step", line), cells };
    });
  }

  protected appendText(rows: readonly Row[]): string | undefined {
    const keys = keysOf(rows);
    if (!this.columns) {
      this.columns = this.initial(keys);
      return this.line(this.columns) + rows.map((r) => this.rowLine(r, this.columns!)).join("");
    }
    const have = new Set(this.columns);
    if (keys.some((k) => !have.has(k))) return undefined;
    return rows.map((r) => this.rowLine(r, this.columns!)).join("");
  }

  protected render(items: readonly (CsvFileRecord | Row)[]): string {
    const old = this.columns;
    if (!old && items.length === 0) return ""; // no header before the first row (its keys make it)
    const keys = keysOf(items.filter(isRow));
    // widened: the columns as they were, then the new keys (sorted); old rows get NA there
    const columns = old ? [...old, ...sorted(keys.filter((k) => !old.includes(k)))] : this.initial(keys);
    const at = new Map((old ?? []).map((c, i) => [c, i]));
    this.columns = columns;
    const lines = items.map((it) => {
      if (isRow(it)) return this.rowLine(it, columns);
      return this.line(columns.map((c) => (at.has(c) ? it.cells[at.get(c)!] : undefined)));
    });
    return this.line(columns) + lines.join("");
  }

  /** A new header: the fixed columns, then `keys` as given or the logs' keys sorted (Keras). */
  private initial(keys: readonly string[]): string[] {
    return [...this.fixed, ...(this.options.keys ?? sorted(keys))];
  }

  private rowLine(r: Row, columns: readonly string[]): string {
    return this.line(columns.map((c): CsvCell => (c === "epoch" ? r.epoch : c === "step" && this.fixed.includes("step") ? (r.step ?? undefined) : Object.hasOwn(r.logs, c) ? r.logs[c] : undefined)));
  }

  private line(cells: readonly CsvCell[]): string {
    return `${formatCsvRow(cells, this.options.separator)}\n`;
  }
}
