import { constants } from "node:fs";
import { appendFile, mkdir, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { encodeEvent, type TfEvent } from "./event.js";
import { tfRecord } from "./record.js";

let sequence = 0;

/**
 * `events.out.tfevents.<unix seconds>.<hostname>.<pid>.<n>`: TensorBoard needs "tfevents" in the
 * name; seconds, host and pid make it unique across runs and machines sharing a log directory, and
 * the zero-padded per-process counter across writers of one process (and keeps a later file sorting
 * after an earlier one: TensorBoard's loaders read a directory's files in name order).
 */
export function eventFileName(wallSeconds: number): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, "_") || "localhost";
  return `events.out.tfevents.${Math.floor(wallSeconds)}.${host}.${process.pid}.${String(sequence++).padStart(4, "0")}`;
}

/**
 * One events file. `add` encodes and frames an event into memory (no I/O); `flush`
 * hands what is buffered to one background write (the first one creates the directory and the
 * file, with the `brain.Event:2` header, exclusively: never over another file); writes run one
 * after another. The file is opened per write, never held open: nothing to leak when a run fails,
 * and a file or directory removed mid-run is an error at the next flush rather than silent writes
 * into an unlinked inode. After the first failed write the writer drops everything (appending after
 * a half-written record would make the rest of the file unreadable) and reports once via `onError`.
 */
export class EventFileWriter {
  readonly path: string;
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private created = false;
  private failed = false;
  private tail: Promise<void> = Promise.resolve();
  private counts = { written: 0, dropped: 0 };

  constructor(
    readonly dir: string,
    fileName: string,
    private readonly onError: (error: unknown, writer: EventFileWriter) => void,
    /** The header's wall time: when the writer was made, so it is not later than the events buffered before the first flush. */
    private readonly createdAt: number = Date.now() / 1000,
  ) {
    this.path = join(dir, fileName);
  }

  /** Records written to the file so far (the header included). */
  get written(): number {
    return this.counts.written;
  }

  /** Records dropped after a failed write. */
  get dropped(): number {
    return this.counts.dropped;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  get ok(): boolean {
    return !this.failed;
  }

  add(event: TfEvent): void {
    if (this.failed) {
      this.counts.dropped++;
      return;
    }
    const record = tfRecord(encodeEvent(event));
    this.chunks.push(record);
    this.buffered += record.length;
  }

  /** Starts writing what is buffered; does not wait (see `close`). */
  flush(): void {
    if (this.failed || this.chunks.length === 0) return;
    const records = this.chunks.length;
    let bytes = concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    this.tail = this.tail.then(async () => {
      if (this.failed) {
        this.counts.dropped += records;
        return;
      }
      try {
        if (!this.created) {
          bytes = concat([tfRecord(encodeEvent({ wallTime: this.createdAt, fileVersion: "brain.Event:2" })), bytes]);
          await mkdir(this.dir, { recursive: true });
          await writeFile(this.path, bytes, { flag: "wx" });
          this.created = true;
          this.counts.written += 1;
        } else {
          // append without O_CREAT: a file removed mid-run is an error, not a new file without its header
          await appendFile(this.path, bytes, { flag: constants.O_WRONLY | constants.O_APPEND });
        }
        this.counts.written += records;
      } catch (e) {
        this.failed = true;
        this.counts.dropped += records;
        try {
          this.onError(e, this);
        } catch {
          // a reporter that throws must not turn into an unhandled rejection
        }
      }
    });
  }

  /** Flushes and waits for every write; never rejects (errors went to `onError`). */
  async close(): Promise<void> {
    this.flush();
    await this.tail;
  }
}

function concat(parts: readonly Uint8Array[], total = parts.reduce((n, p) => n + p.length, 0)): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
