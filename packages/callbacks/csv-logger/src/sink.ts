import { mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { ORDER, OptionsError, StateError, type Callback, type EpochRecord, type FitEndContext, type HookContext, type Logger, type Logs, type StateDict, type TrainState } from "@fitloop/core";
import { z } from "zod";
import { appendExisting, createEmpty, isDirectory, isDirectorySync, readText, writeAtomic } from "./files.js";
import { LogFileFormatError, setKey } from "./values.js";

/** A row this run produced: an epoch's record, or a batch's logs every N steps. */
export interface Row {
  readonly epoch: number;
  /** Optimizer steps so far; `null` for an epoch restored from the checkpoint's history on resume. */
  readonly step: number | null;
  /** ISO 8601; `null` for an epoch restored from the checkpoint's history. */
  readonly time: string | null;
  readonly logs: Logs;
}

/** A row already in the file: where it is in the run (for the resume rule), and whatever the format keeps of it. */
export interface FileRecord {
  readonly epoch: number;
  readonly step: number | undefined;
}

const pathSchema = z.string({ message: "must be a file path, e.g. logs/metrics.csv" }).superRefine((p, ctx) => {
  const bad = (message: string) => ctx.addIssue({ code: "custom", message });
  if (p.length === 0) bad("must be a file path, e.g. logs/metrics.csv (got an empty string)");
  else if (p.includes("\0")) bad("must not contain a NUL character");
  else if (/[\\/]$/.test(p) || isDirectorySync(p)) bad(`${JSON.stringify(p)} is a directory: give a file in it, e.g. ${JSON.stringify(join(p, "metrics.csv"))}`);
});

/** Options both loggers take (see the README for each). */
export const commonShape = {
  path: pathSchema,
  append: z.union([z.boolean(), z.literal("auto")], { message: 'must be true, false or "auto" (append when the run resumes, otherwise overwrite)' }).default("auto"),
  every: z
    .union([z.literal("epoch"), z.strictObject({ steps: z.number({ message: "must be an integer >= 1" }).int({ message: "must be an integer >= 1" }).min(1, { message: "must be an integer >= 1 (a row every N optimizer steps)" }) })], {
      message: 'must be "epoch" or { steps: N } with an integer N >= 1',
    })
    .default("epoch"),
  keys: z
    .array(z.string().min(1), { message: "must be an array of log names" })
    .min(1, { message: "must name at least one log (leave it out to write every log)" })
    .refine((k) => new Set(k).size === k.length, { message: "names a log twice" })
    .optional(),
  flushSeconds: z.number({ message: "must be a number of seconds >= 0" }).min(0, { message: "must be >= 0" }).default(10),
  name: z.string().min(1).optional(),
  stateKey: z.string().min(1).optional(),
};
const common = z.strictObject(commonShape);
export type CommonOptions = z.output<typeof common>;

/** Files a logger in this process is writing now: two loggers on one file would interleave. */
const ACTIVE = new Map<string, string>();
const now = () => new Date().toISOString();
const isRow = (x: object): x is Row => "logs" in x;

/**
 * What CSV and JSONL logging share: when rows are made, buffered and written, the resume rule, and
 * reporting a write error once while training goes on. A format says how to parse its file and
 * render rows (`parse`, `render`, `appendText`).
 */
export abstract class RowLogger<Rec extends FileRecord> implements Callback {
  readonly name: string;
  /** After every other plugin in `before*` hooks; it writes at the safe points, where order does not matter. */
  readonly order = ORDER.LOG;
  readonly stateKey: string;
  /** Only with `every: { steps }` (an absent hook costs nothing per batch). */
  declare readonly batchCheckpoint?: (ctx: HookContext) => void;
  protected readonly steps: number | undefined;
  private readonly base: CommonOptions;
  private logger: Logger | undefined;
  private buffer: Row[] = [];
  /** The write in flight (one at a time; it runs in the background); undefined when idle. */
  private writing: Promise<void> | undefined;
  /** A flush was asked for while a write was in flight: the rows buffered meanwhile follow it. */
  private flushAfter = false;
  private failure: unknown;
  private prepared = false;
  private claimed: string | undefined;
  private lastEpoch = -1;
  private lastStep = 0;
  private lastFlush = 0;
  private rowsBefore = 0;
  private loaded: number | undefined;
  private warned = new Set<string>();

  protected constructor(
    kind: string,
    keyPrefix: string,
    options: CommonOptions,
    /** Field names a log cannot take (the format's own columns). */
    protected readonly reserved: readonly string[],
  ) {
    this.base = options;
    this.name = options.name ?? `${kind}(${options.path})`;
    this.stateKey = options.stateKey ?? `${keyPrefix}:${options.path}`;
    this.steps = options.every === "epoch" ? undefined : options.every.steps;
    if (this.steps !== undefined) (this as { batchCheckpoint?: (ctx: HookContext) => void }).batchCheckpoint = (ctx) => this.recordStep(ctx);
  }

  get path(): string {
    return this.base.path;
  }

  /** The error that stopped writing in the last run (reported once with `ctx.logger.warn`), if any. */
  get writeError(): unknown {
    return this.failure;
  }

  /** Rows of the file so far, with the header (if the format has one) as it is on disk. */
  protected abstract parse(text: string): Rec[];
  /** The whole file: header, the rows kept from the file, and new rows. */
  protected abstract render(items: readonly (Rec | Row)[]): string;
  /** Text that appends `rows`, or `undefined` when the file must be rewritten (a wider header). */
  protected abstract appendText(rows: readonly Row[]): string | undefined;
  /** The file is new or emptied: forget its header. */
  protected abstract forget(): void;

  async beforeFit(ctx: HookContext): Promise<void> {
    this.logger = ctx.logger;
    this.buffer = [];
    this.writing = undefined;
    this.flushAfter = false;
    this.failure = undefined;
    this.warned.clear();
    const s = ctx.state;
    const loaded = s.resumed ? this.loaded : undefined;
    this.loaded = undefined;
    if (await isDirectory(this.path)) throw new OptionsError(this.name, [{ path: "path", message: `${JSON.stringify(this.path)} is a directory: give a file in it` }]);
    const file = resolve(this.path);
    const other = ACTIVE.get(file);
    if (other !== undefined) throw new OptionsError(this.name, [{ path: "path", message: `${JSON.stringify(this.path)} is being written by ${other} now: give each logger its own file` }]);
    ACTIVE.set(file, this.name);
    this.claimed = file;
    this.prepared = true;
    this.lastEpoch = s.resumed ? s.cursor.epoch - 1 : -1;
    this.lastStep = s.step;
    this.lastFlush = Date.now();
    this.rowsBefore = 0;
    const append = this.base.append === "auto" ? s.resumed : this.base.append;
    try {
      this.forget();
      if (append) await this.prepareAppend(s, loaded);
      else await createEmpty(this.path);
    } catch (e) {
      this.fail(e);
    }
  }

  /**
   * Hands the epoch's row (and buffered step rows) to the background write: a file to tail, and
   * little to lose to a kill. Not awaited: a slow or hung file system never holds up training.
   */
  epochCheckpoint(ctx: HookContext): void {
    if (this.steps === undefined) this.recordEpoch(ctx.state);
    this.flush();
  }

  async afterFit(ctx: FitEndContext): Promise<void> {
    if (!this.prepared) return; // our beforeFit never ran (another plugin's failed first)
    try {
      // an epoch without its safe point (the run stopped mid-epoch) still has its record
      if (this.steps === undefined) this.recordEpoch(ctx.state);
      await this.drain(); // every write is done (and its file closed) when fit() returns
    } finally {
      if (this.claimed !== undefined) ACTIVE.delete(this.claimed);
      this.claimed = undefined;
      this.prepared = false;
    }
  }

  /** Where this run's rows start in the file (rows before are earlier runs' in an appended file): the resume rule needs it. */
  stateDict(): StateDict {
    return { rowsBefore: this.rowsBefore };
  }

  loadStateDict(state: StateDict): void {
    const r = z.strictObject({ rowsBefore: z.number().int().min(0) }).safeParse(state);
    if (!r.success) throw new StateError(`${this.name}: the saved state is invalid: ${r.error.issues.map((i) => `${i.path.join(".") || "(state)"}: ${i.message}`).join("; ")}`);
    this.loaded = r.data.rowsBefore;
  }

  private recordStep(ctx: HookContext): void {
    const s = ctx.state;
    // by optimizer step, once per step: a skipped step (same count) is not written twice
    if (s.step === this.lastStep || s.step % this.steps! !== 0) return;
    this.lastStep = s.step;
    this.buffer.push({ epoch: s.epoch, step: s.step, time: now(), logs: this.select(ctx.logs) });
    if (Date.now() - this.lastFlush >= this.base.flushSeconds * 1000) this.flush();
  }

  private recordEpoch(s: Readonly<TrainState>): void {
    const record = s.history.at(-1);
    if (!record || record.epoch <= this.lastEpoch) return;
    this.lastEpoch = record.epoch;
    this.buffer.push({ epoch: record.epoch, step: s.step, time: now(), logs: this.select(record.logs) });
  }

  /** The logs to write: `keys` only when given; a log named like a column is left out (said once). */
  private select(logs: Readonly<Logs>): Logs {
    const out: Logs = {};
    const wanted = this.base.keys;
    if (wanted) {
      const absent = wanted.filter((k) => !Object.hasOwn(logs, k));
      if (absent.length) this.warnOnce("keys", `${this.name}: ${absent.map((k) => `"${k}"`).join(", ")} ${absent.length > 1 ? "are" : "is"} not in the logs (${Object.keys(logs).sort().join(", ") || "none"}); written as missing`);
    }
    for (const k of wanted ?? Object.keys(logs)) {
      if (!Object.hasOwn(logs, k)) continue;
      if (this.reserved.includes(k)) {
        this.warnOnce(`reserved:${k}`, `${this.name}: a log named "${k}" is not written: the file has its own "${k}" column`);
        continue;
      }
      setKey(out, k, logs[k]!);
    }
    return out;
  }

  /**
   * Starts writing the buffered rows in the background and returns at once: the training path
   * (`batchCheckpoint`, `epochCheckpoint`) never waits for the file system. One write at a time,
   * in order: while one is in flight, new rows stay buffered and go in one write after it (a header
   * widened by a new key is a rewrite in that same sequence, after the appends before it). The
   * loop lets the event loop run between batches (core's `yieldEveryMs`), so the writes land during
   * the run; `afterFit` waits for them (`drain`). A failure is `fail` (reported once), never a rejection.
   */
  private flush(): void {
    this.lastFlush = Date.now();
    if (this.failure !== undefined) {
      this.buffer = [];
      return;
    }
    if (this.writing) {
      this.flushAfter = true;
      return;
    }
    const rows = this.buffer;
    if (rows.length === 0) return;
    this.buffer = [];
    const done = this.write(rows)
      .catch((e: unknown) => this.fail(e))
      .finally(() => {
        if (this.writing !== done) return;
        this.writing = undefined;
        if (this.flushAfter) {
          this.flushAfter = false;
          this.flush();
        }
      });
    this.writing = done;
  }

  /** Writes what is buffered and waits until every write is done. Never rejects. */
  private async drain(): Promise<void> {
    this.flush();
    while (this.writing) {
      this.flushAfter = true; // rows buffered while waiting go too
      await this.writing;
    }
  }

  private async write(rows: readonly Row[]): Promise<void> {
    const text = this.appendText(rows);
    if (text !== undefined) return appendExisting(this.path, text);
    // a key the header does not have: the file again with the wider header, replaced atomically
    const current = await readText(this.path);
    if (current === undefined) throw Object.assign(new Error(`${this.path} was removed during the run`), { code: "ENOENT" });
    await writeAtomic(this.path, this.render([...this.parse(current), ...rows]));
  }

  /**
   * Append mode: an incomplete last line (a write cut short by a kill) is dropped. On resume, the
   * rows this run wrote past the resume point are dropped and epochs missing before it are restored
   * from the checkpoint's history; the file is rewritten atomically if anything changed.
   */
  private async prepareAppend(s: Readonly<TrainState>, loaded: number | undefined): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const text = await readText(this.path);
    const end = (text ?? "").lastIndexOf("\n") + 1;
    const torn = text !== undefined && end < text.length;
    let records: Rec[];
    try {
      records = this.parse((text ?? "").slice(0, end));
    } catch (e) {
      if (!(e instanceof LogFileFormatError)) throw e;
      this.failure = e;
      this.logger?.warn(`${this.name}: ${this.path} is not a file this logger can append to (${e.message}); it is left as it is and nothing is written in this run: move it away, or pass append: false to overwrite it`);
      return;
    }
    let items: readonly (Rec | Row)[] = records;
    this.rowsBefore = records.length;
    let changed = torn;
    if (torn) this.logger?.warn(`${this.name}: dropped an incomplete last line of ${this.path} (a write cut short)`);
    if (s.resumed) {
      this.rowsBefore = Math.min(loaded ?? segmentStart(records, this.steps === undefined ? "epoch" : "step"), records.length);
      const segment = records.slice(this.rowsBefore);
      const kept = segment.filter((r) => (this.steps === undefined ? r.epoch < s.cursor.epoch : r.step === undefined || r.step <= s.step));
      const merged = this.steps === undefined ? this.restore(kept, s.history) : kept;
      if (this.steps !== undefined && loaded !== undefined) this.checkLostSteps(kept, s.step);
      changed ||= kept.length !== segment.length || merged.length !== kept.length;
      items = [...records.slice(0, this.rowsBefore), ...merged];
    }
    if (changed) await writeAtomic(this.path, this.render(items));
    else if (text === undefined) await createEmpty(this.path);
  }

  /** Epochs of the history (all before the resume point) with no row: lost by a kill before they were written. */
  private restore(kept: readonly Rec[], history: readonly EpochRecord[]): (Rec | Row)[] {
    const have = new Set(kept.map((r) => r.epoch));
    const missing: Row[] = history.filter((h) => !have.has(h.epoch)).map((h) => ({ epoch: h.epoch, step: null, time: null, logs: this.select(h.logs) }));
    if (missing.length === 0) return [...kept];
    return [...kept, ...missing].sort((a, b) => a.epoch - b.epoch);
  }

  private checkLostSteps(kept: readonly Rec[], step: number): void {
    const expected = step - (step % this.steps!);
    const last = Math.max(0, ...kept.map((r) => r.step ?? 0));
    if (expected > last) {
      const from = last + this.steps!;
      this.logger?.warn(`${this.name}: ${this.path} has no rows for ${from === expected ? `step ${expected}` : `steps ${from} to ${expected}`}: the interrupted run ended before writing them (step rows are buffered, see flushSeconds); the resumed run goes on from step ${step}`);
    }
  }

  private fail(e: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = e;
    this.buffer = [];
    const why = e instanceof Error ? e.message : String(e);
    this.logger?.warn(`${this.name}: cannot write ${this.path} (${why}); no more rows are written in this run, training goes on`);
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.logger?.warn(message);
  }
}

/**
 * Without the logger's state (it was not in the checkpointed run), the run's rows are those after
 * the last place where the epoch (or step) goes down: rows before it are an earlier run's.
 */
function segmentStart(records: readonly FileRecord[], by: "epoch" | "step"): number {
  let start = 0;
  let prev: number | undefined;
  records.forEach((r, i) => {
    const v = r[by];
    if (v === undefined) return;
    if (prev !== undefined && v < prev) start = i;
    prev = v;
  });
  return start;
}

export { isRow };
