import { parseOptions } from "@fitloop/core";
import { z } from "zod";
import { formatJsonlRow, JSONL_FIELDS, readJsonl } from "./jsonl.js";
import { commonShape, isRow, RowLogger, type FileRecord, type Row } from "./sink.js";

const schema = z.strictObject(commonShape).superRefine((o, ctx) => {
  for (const k of o.keys ?? []) if (JSONL_FIELDS.includes(k)) ctx.addIssue({ code: "custom", path: ["keys"], message: `"${k}" is a field of every line, always written` });
});

export type JSONLLoggerOptions = z.input<typeof schema>;

interface JsonlFileRecord extends FileRecord {
  readonly text: string;
}

/**
 * One JSON object per line: `time` (ISO 8601), `epoch`, `step` and the logs, per epoch or every N
 * steps; non-finite values as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (`readJsonl` restores
 * them). Each line names its keys, so a key that appears later needs nothing. Appending on resume
 * follows the same rule as `CSVLogger`.
 */
export class JSONLLogger extends RowLogger<JsonlFileRecord> {
  readonly options: Readonly<z.output<typeof schema>>;

  constructor(options: JSONLLoggerOptions) {
    const o = parseOptions("JSONLLogger", schema, options);
    super("JSONLLogger", "jsonl-logger", o, JSONL_FIELDS);
    this.options = o;
  }

  protected forget(): void {}

  protected parse(text: string): JsonlFileRecord[] {
    const rows = readJsonl(text); // checks every line
    const lines = text.split("\n").filter((l) => l.trim() !== "");
    return rows.map((r, i) => ({ epoch: r.epoch, step: r.step ?? undefined, text: lines[i]! }));
  }

  protected appendText(rows: readonly Row[]): string {
    return rows.map((r) => `${formatJsonlRow(r)}\n`).join("");
  }

  protected render(items: readonly (JsonlFileRecord | Row)[]): string {
    return items.map((it) => `${isRow(it) ? formatJsonlRow(it) : it.text}\n`).join("");
  }
}
