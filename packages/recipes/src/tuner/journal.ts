/**
 * The study's storage: Optuna's journal, an append-only log of operations. Whoever replays the
 * log from the start gets the same study, so ids come from the log order and every process (or
 * Python worker) that shares the log shares the study. A backend only stores lines, in order,
 * atomically, with a lock; `Study` does the rest. The file backend is in `@fitloop/recipes/node`.
 */
import { parsePyJson, stringifyPy, type JsonObject, type JsonValue } from "./json.js";
import { TunerError } from "./errors.js";

/** Optuna's `JournalOperation`. Only 0-9 exist: Optuna 4.9 and older assert on any other code. */
export const OP = {
  CREATE_STUDY: 0,
  DELETE_STUDY: 1,
  SET_STUDY_USER_ATTR: 2,
  SET_STUDY_SYSTEM_ATTR: 3,
  CREATE_TRIAL: 4,
  SET_TRIAL_PARAM: 5,
  SET_TRIAL_STATE_VALUES: 6,
  SET_TRIAL_INTERMEDIATE_VALUE: 7,
  SET_TRIAL_USER_ATTR: 8,
  SET_TRIAL_SYSTEM_ATTR: 9,
} as const;
export type OpCode = (typeof OP)[keyof typeof OP];

/** Optuna's `TrialState` codes. */
export const TRIAL_STATE = { RUNNING: 0, COMPLETE: 1, PRUNED: 2, FAIL: 3, WAITING: 4 } as const;
export type TrialStateName = keyof typeof TRIAL_STATE;
export const TRIAL_STATE_NAMES: readonly TrialStateName[] = ["RUNNING", "COMPLETE", "PRUNED", "FAIL", "WAITING"];
export const isFinished = (s: TrialStateName) => s === "COMPLETE" || s === "PRUNED" || s === "FAIL";

/** One line of the journal: `{"op_code": 4, "worker_id": "...", ...}`. */
export type JournalRecord = JsonObject & { readonly op_code: OpCode; readonly worker_id: string };

/** Who runs a trial, recorded in its system attrs as `fitloop:worker`. */
export interface WorkerInfo {
  /** The journal `worker_id` of the process. */
  readonly id: string;
  readonly host?: string;
  readonly pid?: number;
  /** Linux boot id: a pid means nothing after a reboot. */
  readonly boot?: string;
  /** Process start time (clock ticks since boot): tells a reused pid from the worker. */
  readonly start?: number;
  /** The worker holds a lease in the storage (Redis): alive exactly while the lease does. */
  readonly lease?: boolean;
}

/** A worker's lease, kept until `stop()`. */
export interface WorkerHeartbeat {
  stop(): Promise<void>;
}

/**
 * Whether the worker of a RUNNING trial still lives. `true`/`false` when this machine can tell,
 * `undefined` when it cannot (another host): such trials are left RUNNING, as Optuna leaves them.
 */
export interface WorkerLiveness {
  /** What this process records about itself (without `id`). */
  readonly self: Omit<WorkerInfo, "id">;
  isAlive(worker: WorkerInfo): boolean | undefined | Promise<boolean | undefined>;
  /**
   * Storages with leases: shows this worker alive until `stop()`. `onLost` is called when the worker
   * was cut off so long that its lease expired (its trial may already be failed and queued again):
   * the trial it runs stops.
   */
  start?(worker: WorkerInfo, onLost: (why: string) => void): Promise<WorkerHeartbeat>;
  /**
   * Storages with leases: how often a worker with nothing left to claim asks again while other
   * workers' trials still run (one of them may die and its trial come back). Without it, it stops.
   */
  readonly pollMs?: number;
}

/** Appends without taking the lock again, inside `JournalStorage.locked`. */
export interface JournalWriter {
  append(records: readonly JournalRecord[]): Promise<void>;
}

/**
 * A place for the journal: lines in order, each appended whole, and a lock. Redis, S3 and the like
 * can implement it (Optuna's Redis journal keeps `{prefix}:log:{n}` under an `INCR`ed counter).
 */
export interface JournalStorage {
  /**
   * The records from log number `from` (0-based) to the end. A last line that is not complete (being
   * written, or torn by a writer that died) is not returned; a bad line before the last is a
   * `TunerError` `JOURNAL_CORRUPT`.
   */
  readFrom(from: number): Promise<JournalRecord[]>;
  /** Appends the records in order as one write, under the lock. */
  append(records: readonly JournalRecord[]): Promise<void>;
  /**
   * Runs `fn` holding the lock, so nobody appends in between: read, decide, append as one step
   * (exactly N trials across processes). Append through `writer`; the lock is not re-entrant.
   */
  locked<T>(fn: (writer: JournalWriter) => Promise<T>): Promise<T>;
  /** Set by storages whose workers share one machine (the file journal), to fail trials of dead workers. */
  readonly liveness?: WorkerLiveness;
  /**
   * Set by storages that other programs write to without fitloop's checks (Redis): a record that
   * replaying refuses is skipped and reported here instead of failing the study. Without it, such a
   * record is a `TunerError` `JOURNAL_CORRUPT`.
   */
  readonly onBadRecord?: (logNumber: number, error: TunerError) => void;
}

/** A line as the journal holds it: Python's `json.dumps` of the record. */
export const recordLine = (r: JournalRecord): string => stringifyPy(r);

/** Parses a journal line; `where` names it in the error. */
export function parseRecord(line: string, where: string): JournalRecord {
  let v: JsonValue;
  try {
    v = parsePyJson(line);
  } catch (e) {
    throw new TunerError("JOURNAL_CORRUPT", `${where} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new TunerError("JOURNAL_CORRUPT", `${where} is not a JSON object`);
  const o = v as JsonObject;
  const op = o["op_code"];
  if (typeof op !== "number" || !Number.isInteger(op) || op < 0 || op > 9) throw new TunerError("JOURNAL_CORRUPT", `${where} has op_code ${JSON.stringify(op)}; Optuna's journal has 0-9`);
  if (typeof o["worker_id"] !== "string") throw new TunerError("JOURNAL_CORRUPT", `${where} has no worker_id`);
  return o as JournalRecord;
}

/**
 * The journal in memory, for tests and single-process searches. It keeps the lines as text, as a
 * file would, so whatever is not serialisable fails here too.
 */
export class MemoryJournal implements JournalStorage {
  readonly lines: string[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  async readFrom(from: number): Promise<JournalRecord[]> {
    return this.lines.slice(from).map((l, i) => parseRecord(l, `record ${from + i}`));
  }

  append(records: readonly JournalRecord[]): Promise<void> {
    return this.locked((w) => w.append(records));
  }

  locked<T>(fn: (writer: JournalWriter) => Promise<T>): Promise<T> {
    const writer: JournalWriter = { append: async (records) => void this.lines.push(...records.map(recordLine)) };
    const run = this.queue.then(() => fn(writer));
    this.queue = run.catch(() => undefined);
    return run;
  }
}
