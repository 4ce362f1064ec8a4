/**
 * The journal as a file, exactly as Optuna's `JournalFileStorage` keeps it: one JSON record per
 * line, appended and fsynced while holding `<file>.lock`, a symlink to the file (creating it is
 * atomic, also on NFS; EEXIST means someone holds it). Python workers with
 * `JournalStorage(JournalFileStorage(path))` share the file and the lock with fitloop.
 */
import { closeSync, openSync } from "node:fs";
import { open, rename, stat, symlink, unlink } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { consoleLogger, type Logger } from "@fitloop/core";
import { TunerError } from "./errors.js";
import { parsePyJson } from "./json.js";
import { parseRecord, recordLine, type JournalRecord, type JournalStorage, type JournalWriter, type WorkerLiveness } from "./journal.js";
import { localLiveness } from "./liveness.js";

export interface FileJournalOptions {
  /**
   * Break a lock held this long while the journal did not change (a holder that died), as Optuna 4's
   * `grace_period`. Default 30 000 ms; `null` never breaks it (Optuna 3.1 never does).
   */
  readonly staleLockMs?: number | null;
  /** How to tell whether another worker on this machine still runs. Default `localLiveness()`; `null`: never fail other workers' trials. */
  readonly liveness?: WorkerLiveness | null;
  /** Where the warning about a broken stale lock goes. Default the console. */
  readonly logger?: Logger;
}

const NEWLINE = 0x0a;

export class FileJournal implements JournalStorage {
  readonly lockPath: string;
  readonly liveness?: WorkerLiveness;
  private readonly staleLockMs: number | null;
  private readonly logger: Logger;
  /** Byte offset where each known line starts (Optuna's `_log_number_offset`), so a read starts at the new lines. */
  private readonly offsets: number[] = [0];
  /** The file's content was checked to be a journal (before this instance's first append). */
  private verified = false;

  constructor(
    readonly path: string,
    options: FileJournalOptions = {},
  ) {
    this.lockPath = `${path}.lock`;
    this.staleLockMs = options.staleLockMs === undefined ? 30_000 : options.staleLockMs;
    this.logger = options.logger ?? consoleLogger;
    const liveness = options.liveness === undefined ? localLiveness() : options.liveness;
    if (liveness) this.liveness = liveness;
    closeSync(openSync(path, "a")); // create it, as Optuna does
  }

  async readFrom(from: number): Promise<JournalRecord[]> {
    const first = Math.min(from, this.offsets.length - 1);
    const start = this.offsets[first]!;
    const fh = await open(this.path, "r");
    let buf: Buffer;
    try {
      const size = (await fh.stat()).size;
      buf = Buffer.alloc(Math.max(0, size - start));
      if (buf.length) await fh.read(buf, 0, buf.length, start);
    } finally {
      await fh.close();
    }
    const out: JournalRecord[] = [];
    let line = first;
    let at = 0;
    for (;;) {
      // only whole lines: an unterminated tail is being written, or was torn by a writer that died
      const nl = buf.indexOf(NEWLINE, at);
      if (nl < 0) break;
      const text = buf.toString("utf8", at, nl);
      const last = nl + 1 === buf.length;
      let record: JournalRecord | undefined;
      try {
        record = line >= from ? parseRecord(text, `line ${line + 1} of ${this.path}`) : undefined;
      } catch (e) {
        if (last) break; // Optuna skips a bad last line too (and reads it again next time)
        throw e;
      }
      if (record) out.push(record);
      line++;
      this.offsets[line] ??= start + nl + 1;
      at = nl + 1;
    }
    return out;
  }

  append(records: readonly JournalRecord[]): Promise<void> {
    return this.locked((w) => w.append(records));
  }

  async locked<T>(fn: (writer: JournalWriter) => Promise<T>): Promise<T> {
    await this.acquire();
    let result: T;
    try {
      result = await fn({ append: (records) => this.write(records) });
    } finally {
      await this.release();
    }
    return result;
  }

  /** Appends under the lock (held by the caller): the records, one line each, in one write, then fsync. */
  private async write(records: readonly JournalRecord[]): Promise<void> {
    if (!records.length) return;
    const data = Buffer.from(`${records.map(recordLine).join("\n")}\n`, "utf8");
    const fh = await open(this.path, "a+");
    try {
      if (!this.verified) await this.verify(fh);
      this.verified = true;
      const repair = await this.repairTail(fh);
      await fh.write(repair ? Buffer.concat([repair, data]) : data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /**
   * Refuses, before anything is written, a file that is not a journal: every complete line must be a
   * record, and an unterminated last line is a torn record only when it starts like one (`{`) and
   * every line before it is a record. Otherwise appending (or cutting the "torn" tail) would damage
   * someone's file.
   */
  private async verify(fh: Awaited<ReturnType<typeof open>>): Promise<void> {
    const size = (await fh.stat()).size;
    if (size === 0) return;
    const buf = Buffer.alloc(size);
    await fh.read(buf, 0, size, 0);
    let at = 0;
    let line = 0;
    const refuse = (why: string, cause?: unknown) => {
      throw new TunerError("JOURNAL_CORRUPT", `${this.path} is not an Optuna journal (${why}); nothing was written to it`, cause === undefined ? undefined : { cause });
    };
    for (;;) {
      const nl = buf.indexOf(NEWLINE, at);
      const text = buf.toString("utf8", at, nl < 0 ? size : nl);
      if (nl < 0 && at >= size) return;
      line++;
      try {
        parseRecord(text, `line ${line}`);
      } catch (e) {
        if (nl >= 0) refuse(`line ${line}: ${(e as Error).message}`, e);
        // the unterminated last line: a record torn by a writer that died, or not a journal at all
        if (!text.trimStart().startsWith("{") || !(e instanceof TunerError) || !/is not JSON/.test(e.message)) refuse(`its last line ${line} is not a record nor the start of one: ${(e as Error).message}`, e);
      }
      if (nl < 0) return;
      at = nl + 1;
    }
  }

  /**
   * A writer killed mid-line leaves a torn last line; appending after it would glue the next record
   * onto it and turn it into a bad line in the middle, which Optuna refuses to read. No reader has
   * taken the torn part (it is not JSON), so it is cut off; a whole record that only lacks its
   * newline (which Optuna may have read) gets the newline instead.
   */
  private async repairTail(fh: Awaited<ReturnType<typeof open>>): Promise<Buffer | undefined> {
    const size = (await fh.stat()).size;
    if (size === 0) return undefined;
    const lastByte = Buffer.alloc(1);
    await fh.read(lastByte, 0, 1, size - 1);
    if (lastByte[0] === NEWLINE) return undefined;
    let from = size;
    const chunk = Buffer.alloc(64 * 1024);
    let lineStart = 0;
    while (from > 0) {
      const len = Math.min(chunk.length, from);
      from -= len;
      await fh.read(chunk, 0, len, from);
      const nl = chunk.subarray(0, len).lastIndexOf(NEWLINE);
      if (nl >= 0) {
        lineStart = from + nl + 1;
        break;
      }
    }
    const tail = Buffer.alloc(size - lineStart);
    await fh.read(tail, 0, tail.length, lineStart);
    try {
      parsePyJson(tail.toString("utf8"));
      return Buffer.from("\n");
    } catch {
      this.logger.warn(`fitloop tuner: cut a torn last line (${tail.length} bytes, a writer died mid-write) from ${this.path}`);
      await fh.truncate(lineStart);
      return undefined;
    }
  }

  private async acquire(): Promise<void> {
    let wait = 1;
    let seen: number | undefined;
    let since = Date.now();
    for (;;) {
      try {
        await symlink(this.path, this.lockPath);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      if (this.staleLockMs !== null) {
        // Optuna 4's rule: the lock is stale when the journal has not changed for the grace period
        const mtime = await stat(this.path).then((s) => s.mtimeMs, () => undefined);
        if (mtime !== seen) {
          seen = mtime;
          since = Date.now();
        } else if (Date.now() - since > this.staleLockMs) {
          const broke = await this.removeLock().then(() => true, () => false);
          if (broke) this.logger.warn(`fitloop tuner: broke the lock ${this.lockPath}: held for ${Math.round((Date.now() - since) / 1000)} s without a write to the journal`);
          since = Date.now();
          wait = 1;
          continue;
        }
      }
      await sleep(wait);
      wait = Math.min(wait * 2, 1000);
    }
  }

  /** Rename, then unlink: only one of several processes can rename the link away. */
  private async removeLock(): Promise<void> {
    const moved = `${this.lockPath}${globalThis.crypto.randomUUID()}.rename`;
    await rename(this.lockPath, moved);
    await unlink(moved);
  }

  private async release(): Promise<void> {
    try {
      await this.removeLock();
    } catch (e) {
      throw new TunerError("LOCK_LOST", `the lock ${this.lockPath} was gone when released: another process broke it as stale (held over ${this.staleLockMs} ms without a write?)`, { cause: e });
    }
  }
}
