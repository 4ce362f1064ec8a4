import { formatNumber, LogFileFormatError, parseNumber, setKey } from "./values.js";

/** A cell of a row: text (a column name), a number, or `undefined` for a missing value (`NA`). */
export type CsvCell = string | number | undefined;

/** What `parseCsv` returns: the header's columns, and each row's numbers by column (missing values left out). */
export interface CsvTable {
  readonly columns: string[];
  readonly rows: Record<string, number>[];
}

/** Written for a key a row does not have (Keras' choice; pandas reads it as NaN). */
export const MISSING = "NA";

function quote(text: string, separator: string): string {
  // RFC 4180: quote what contains the separator, a quote or a line break; double inner quotes
  return text.includes(separator) || /["\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * One CSV line (without the line break): numbers as `formatNumber` writes them (`NaN`, `Infinity`,
 * `-Infinity` explicitly), `undefined` as `NA`, text quoted when it holds the separator, a quote or
 * a line break.
 */
export function formatCsvRow(cells: readonly CsvCell[], separator = ","): string {
  return cells.map((c) => quote(c === undefined ? MISSING : typeof c === "number" ? formatNumber(c) : c, separator)).join(separator);
}

/** A record of raw cells and the 1-based line it starts on. */
export interface CsvRecord {
  readonly cells: string[];
  readonly line: number;
}

/**
 * Splits CSV text into records of raw cells (quotes removed): RFC 4180 quoting, `\n` or `\r\n`
 * line breaks, blank lines skipped. An unterminated quote is a `LogFileFormatError`.
 */
export function parseCsvRecords(text: string, separator = ","): CsvRecord[] {
  const out: CsvRecord[] = [];
  let cells: string[] = [];
  let cell = "";
  let quoted = false; // the current cell was quoted (so an empty line with "" is not blank)
  let line = 1;
  let start = 1;
  let i = 0;
  const endRecord = () => {
    cells.push(cell);
    if (!(cells.length === 1 && cells[0] === "" && !quoted)) out.push({ cells, line: start });
    cells = [];
    cell = "";
    quoted = false;
  };
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"' && cell === "" && !quoted) {
      // a quoted cell: up to the closing quote, "" inside is a quote
      quoted = true;
      let j = i + 1;
      for (;;) {
        const q = text.indexOf('"', j);
        if (q < 0) throw new LogFileFormatError("a quoted cell is not closed", start);
        cell += text.slice(j, q);
        if (text[q + 1] === '"') {
          cell += '"';
          j = q + 2;
          continue;
        }
        for (const c of text.slice(i, q)) if (c === "\n") line++;
        i = q + 1;
        break;
      }
      const next = text[i];
      if (next !== undefined && next !== separator && next !== "\n" && next !== "\r") throw new LogFileFormatError(`text after a closing quote (${JSON.stringify(next)})`, line);
      continue;
    }
    if (ch === separator) {
      cells.push(cell);
      cell = "";
      quoted = false;
      i++;
    } else if (ch === "\n" || (ch === "\r" && text[i + 1] === "\n")) {
      endRecord();
      i += ch === "\r" ? 2 : 1;
      line++;
      start = line;
    } else {
      cell += ch;
      i++;
    }
  }
  if (cell !== "" || cells.length > 0 || quoted) endRecord();
  return out;
}

/** The value of a cell: a number, `undefined` for `NA` or an empty cell, else a `LogFileFormatError`. */
export function cellValue(cell: string, column: string, line: number): number | undefined {
  if (cell === "" || cell === MISSING) return undefined;
  const v = parseNumber(cell);
  if (v === undefined) throw new LogFileFormatError(`column "${column}": ${JSON.stringify(cell)} is not a number, NaN, Infinity, -Infinity or NA`, line);
  return v;
}

/** Header columns, checked: at least one, none empty, no duplicates. */
export function checkColumns(record: CsvRecord | undefined): string[] {
  if (!record) return [];
  const seen = new Set<string>();
  for (const c of record.cells) {
    if (c === "") throw new LogFileFormatError("the header has an empty column name", record.line);
    if (seen.has(c)) throw new LogFileFormatError(`the header names column "${c}" twice`, record.line);
    seen.add(c);
  }
  return record.cells;
}

/**
 * Reads what `CSVLogger` writes (and Keras' CSVLogger): the first record is the header; every
 * other row has one cell per column; `NaN`, `Infinity`, `-Infinity` (and Python's `nan`, `inf`) are
 * numbers, `NA` and empty cells are missing values, left out of the row's record. Anything else is a
 * `LogFileFormatError` naming the line and column.
 */
export function parseCsv(text: string, options: { separator?: string } = {}): CsvTable {
  const records = parseCsvRecords(text, options.separator ?? ",");
  const columns = checkColumns(records[0]);
  const rows = records.slice(1).map(({ cells, line }) => {
    if (cells.length !== columns.length) throw new LogFileFormatError(`${cells.length} cells, the header has ${columns.length} columns`, line);
    const row: Record<string, number> = {};
    cells.forEach((c, i) => {
      const v = cellValue(c, columns[i]!, line);
      if (v !== undefined) setKey(row, columns[i]!, v);
    });
    return row;
  });
  return { columns, rows };
}
