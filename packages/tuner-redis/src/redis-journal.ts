/**
 * Optuna's journal on Redis, with exactly the keys and append script of Optuna's
 * `JournalRedisStorage` (`{prefix}:log_number`, `{prefix}:log:{n}`), so Python workers with
 * `JournalStorage(JournalRedisStorage(url, prefix=...))` share the study with fitloop's. The
 * `{prefix}:snapshot` key Optuna may write is a Python pickle: never read, never written; the study
 * is replayed from the log. fitloop's own keys live under `{prefix}:fitloop:*`.
 */
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { consoleLogger, parseOptions, type Logger } from "@fitloop/core";
import { TunerError, parseRecord, recordLine, type JournalRecord, type JournalStorage, type JournalWriter, type WorkerLiveness } from "@fitloop/recipes";
import { Redis } from "ioredis";
import { z } from "zod";
import { WorkerLeases } from "./leases.js";
import { ACQUIRE, APPEND, READ, RELEASE, RENEW } from "./scripts.js";
import { isRedisUrl, redactUrl, scrub } from "./url.js";

export interface RedisJournalOptions {
  /** `redis://[[user]:password@]host[:port][/db]` or `rediss://...`. Printed only without its password. */
  readonly url: string;
  /** The password, when it should not be in the URL (a URL is visible in `ps` when given on a command line). */
  readonly password?: string;
  /** Optuna's `prefix` (default "", as Optuna's). Studies under different prefixes never meet. */
  readonly prefix?: string;
  /** A worker that has not renewed its lease for this long is dead: its trial is failed and queued again. Default 30 000 ms. */
  readonly leaseMs?: number;
  /** fitloop workers' lock (claiming trials) expires after this unless renewed. Default 10 000 ms. */
  readonly lockMs?: number;
  /** A record longer than this is skipped with a warning (a hostile or broken writer). Default 1 MiB. */
  readonly maxRecordBytes?: number;
  /** How long to wait for a record whose number was taken but not yet written, before skipping it. Default 10 000 ms. */
  readonly missingRecordWaitMs?: number;
  /** Where warnings (skipped records, lost connection, reconnected) go. Default the console. */
  readonly logger?: Logger;
}

const positiveMs = (d: number) => z.number({ message: "must be a number of milliseconds > 0" }).int({ message: "must be an integer number of milliseconds" }).positive({ message: "must be a number of milliseconds > 0" }).default(d);
const optionsSchema = z.strictObject({
  url: z.string({ message: "must be a redis:// or rediss:// URL" }).refine(isRedisUrl, { message: "must be a redis:// or rediss:// URL" }),
  password: z.string({ message: "must be a string" }).min(1, { message: "must not be empty" }).optional(),
  prefix: z.string({ message: "must be a string" }).refine((p) => !/[\s\0]/.test(p), { message: "must not contain whitespace or NUL" }).default(""),
  leaseMs: positiveMs(30_000).refine((v) => v >= 300, { message: "must be at least 300 ms (it is renewed every third of it)" }),
  lockMs: positiveMs(10_000).refine((v) => v >= 300, { message: "must be at least 300 ms (it is renewed every third of it)" }),
  maxRecordBytes: z.number({ message: "must be an integer >= 1024" }).int({ message: "must be an integer >= 1024" }).min(1024, { message: "must be an integer >= 1024" }).default(1 << 20),
  missingRecordWaitMs: z.number({ message: "must be a number of milliseconds >= 0" }).int().min(0, { message: "must be a number of milliseconds >= 0" }).default(10_000),
  logger: z.custom<Logger>((l) => typeof l === "object" && l !== null && typeof (l as Logger).warn === "function", { message: "must be a Logger ({ info, warn })" }).optional(),
});

/** How long a release or quit waits for a reply before giving up (the keys expire by themselves). */
const RELEASE_WAIT_MS = 2000;

/** `p`'s value, or undefined when it fails or takes longer than `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p.catch(() => undefined), new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Records read per script call: bounds one reply. */
const READ_CHUNK = 1000;
/** A record put where a skipped one was, so log numbers stay aligned: an attribute of no study. */
const SKIPPED: JournalRecord = { op_code: 2, worker_id: "fitloop:skipped-record", study_id: -1, user_attr: {} };

type Commands = {
  fitloopAppend(...args: string[]): Promise<number>;
  fitloopRead(...args: string[]): Promise<string[]>;
  fitloopAcquire(key: string, token: string, ms: string): Promise<number>;
  fitloopRenew(key: string, token: string, ms: string): Promise<number>;
  fitloopRelease(key: string, token: string): Promise<number>;
};
export type JournalClient = Redis & Commands;

export class RedisJournal implements JournalStorage {
  /** The URL without its password: safe to print. */
  readonly url: string;
  readonly prefix: string;
  readonly liveness: WorkerLiveness;
  readonly onBadRecord: (logNumber: number, error: TunerError) => void;
  private readonly o: z.output<typeof optionsSchema>;
  private readonly logger: Logger;
  private readonly redis: JournalClient;
  private disconnected = false;

  private constructor(options: RedisJournalOptions) {
    this.o = parseOptions("RedisJournal", optionsSchema, options);
    this.url = redactUrl(this.o.url);
    this.prefix = this.o.prefix;
    this.logger = this.o.logger ?? consoleLogger;
    const secretUrl = this.o.url;
    this.redis = new Redis(secretUrl, {
      lazyConnect: true,
      ...(this.o.password !== undefined ? { password: this.o.password } : {}),
      // commands wait for the reconnection instead of failing: a worker rides out a Redis restart
      maxRetriesPerRequest: null,
      retryStrategy: (times) => {
        // jittered: workers cut off together should not all come back in the same millisecond
        const delay = Math.round(Math.min(100 * 2 ** Math.min(times - 1, 6), 5000) * (0.75 + Math.random() / 2));
        this.logger.warn(`fitloop tuner: no connection to ${this.url}; retrying in ${delay} ms (attempt ${times})`);
        return delay;
      },
    }) as JournalClient;
    this.redis.defineCommand("fitloopAppend", { numberOfKeys: 0, lua: APPEND });
    this.redis.defineCommand("fitloopRead", { numberOfKeys: 0, lua: READ });
    this.redis.defineCommand("fitloopAcquire", { numberOfKeys: 1, lua: ACQUIRE });
    this.redis.defineCommand("fitloopRenew", { numberOfKeys: 1, lua: RENEW });
    this.redis.defineCommand("fitloopRelease", { numberOfKeys: 1, lua: RELEASE });
    this.redis.on("error", (e: Error) => {
      if (this.disconnected) return; // said once per outage (retryStrategy says each attempt)
      this.disconnected = true;
      this.logger.warn(`fitloop tuner: lost the connection to ${this.url}: ${this.scrub(e.message)}`);
    });
    this.redis.on("ready", () => {
      if (this.disconnected) this.logger.info(`fitloop tuner: reconnected to ${this.url}`);
      this.disconnected = false;
    });
    this.onBadRecord = (n, e) => this.logger.warn(`fitloop tuner: skipped journal record ${n} in ${this.url} (prefix "${this.prefix}"): ${e.message}`);
    const leases = new WorkerLeases(this.redis, `${this.prefix}:fitloop:worker:`, this.o.leaseMs, this.logger, RELEASE_WAIT_MS);
    this.liveness = {
      self: { host: hostname(), pid: process.pid, lease: true },
      pollMs: Math.max(100, Math.round(this.o.leaseMs / 3)),
      isAlive: (w) => leases.isAlive(w),
      start: (w, onLost) => leases.start(w, onLost),
    };
  }

  /** Connects (the first connection must succeed: a wrong URL fails here, not in a retry loop). */
  static async connect(options: RedisJournalOptions): Promise<RedisJournal> {
    const journal = new RedisJournal(options);
    try {
      await journal.redis.connect();
    } catch (e) {
      journal.redis.disconnect();
      throw new TunerError("STORAGE_UNAVAILABLE", `cannot connect to ${journal.url}: ${journal.scrub((e as Error).message)}`);
    }
    return journal;
  }

  private scrub(message: string): string {
    const out = scrub(message, this.o.url);
    return this.o.password === undefined ? out : out.split(this.o.password).join("***");
  }

  /** The underlying client, for tests and tools (`fitloop study show`). */
  get client(): Redis {
    return this.redis;
  }

  async readFrom(from: number): Promise<JournalRecord[]> {
    const max = await this.redis.get(`${this.prefix}:log_number`);
    if (max === null) return [];
    const last = Number(max);
    if (!Number.isSafeInteger(last)) throw new TunerError("JOURNAL_CORRUPT", `${this.prefix}:log_number in ${this.url} is ${JSON.stringify(max.slice(0, 40))}, not a number`);
    // Redis lost its tail (a crash between fsyncs, a failover to a lagging replica): new records
    // would take numbers this reader has already replayed, and it would never see them
    if (last < from - 1) throw new TunerError("JOURNAL_CORRUPT", `the journal in ${this.url} (prefix "${this.prefix}") went backwards: ${last + 1} records, ${from} already read; Redis lost writes, and the workers' views of the study no longer agree (restart them)`);
    const out: JournalRecord[] = [];
    for (let start = from; start <= last; start += READ_CHUNK) {
      const end = Math.min(last, start + READ_CHUNK - 1);
      const raw = await this.redis.fitloopRead(this.prefix, String(start), String(end), String(this.o.maxRecordBytes));
      for (let i = 0; i < raw.length; i++) out.push(await this.parse(start + i, raw[i]!));
    }
    return out;
  }

  private async parse(n: number, text: string): Promise<JournalRecord> {
    let waited = 0;
    for (let wait = 50; text === "\0missing" && waited < this.o.missingRecordWaitMs; wait = Math.min(wait * 2, 1000)) {
      await sleep(wait); // numbered by INCR, not yet SET (a cluster-mode writer): Optuna waits too
      waited += wait;
      text = (await this.redis.fitloopRead(this.prefix, String(n), String(n), String(this.o.maxRecordBytes)))[0] ?? "\0missing";
    }
    if (text.startsWith("\0toolarge:")) {
      const [bytes, ...head] = text.slice("\0toolarge:".length).split(":");
      this.onBadRecord(n, new TunerError("JOURNAL_CORRUPT", `it is ${bytes} bytes, over maxRecordBytes ${this.o.maxRecordBytes}`));
      // a trial other readers have: keep its place (replay makes it a FAIL without parameters)
      const created = /^\{"op_code": ?4, "worker_id": ?"[^"]*", "study_id": ?(\d+)/.exec(head.join(":"));
      return created ? { op_code: 4, worker_id: "fitloop:unreadable-record", study_id: Number(created[1]), params: "too large" } : SKIPPED;
    }
    if (text.startsWith("\0")) {
      const why = text === "\0missing" ? `it was not written within ${this.o.missingRecordWaitMs} ms of being numbered` : "the key is not a string";
      this.onBadRecord(n, new TunerError("JOURNAL_CORRUPT", why));
      return SKIPPED;
    }
    try {
      return parseRecord(text, `record ${n}`);
    } catch (e) {
      this.onBadRecord(n, e as TunerError);
      return SKIPPED;
    }
  }

  /** One script call: the records get consecutive numbers, and a resend after a lost reply writes nothing twice. */
  async append(records: readonly JournalRecord[]): Promise<void> {
    if (!records.length) return;
    const lines = records.map(recordLine);
    const big = lines.findIndex((l) => Buffer.byteLength(l) > this.o.maxRecordBytes);
    if (big >= 0) throw new TunerError("INVALID_VALUE", `a journal record of ${Buffer.byteLength(lines[big]!)} bytes (op ${records[big]!.op_code}) is over maxRecordBytes ${this.o.maxRecordBytes}: readers would skip it; nothing was written`);
    await this.redis.fitloopAppend(this.prefix, globalThis.crypto.randomUUID(), ...lines);
  }

  /**
   * A lock among fitloop workers (`{prefix}:fitloop:lock`, expiring unless renewed), so they count
   * and claim trials one at a time. Python workers do not take it; what they append is still
   * ordered by the log, and who owns a trial is decided by log order, not by this lock.
   */
  async locked<T>(fn: (writer: JournalWriter) => Promise<T>): Promise<T> {
    const key = `${this.prefix}:fitloop:lock`;
    const token = globalThis.crypto.randomUUID();
    // short, jittered waits: the lock is held for a few round trips, and a long sleep only idles the worker
    for (let wait = 1; (await this.redis.fitloopAcquire(key, token, String(this.o.lockMs))) !== 1; wait = Math.min(wait * 2, 8)) await sleep(wait * (0.5 + Math.random()));
    const renew = setInterval(() => void this.redis.fitloopRenew(key, token, String(this.o.lockMs)).catch(() => undefined), Math.round(this.o.lockMs / 3));
    try {
      return await fn({ append: (records) => this.append(records) });
    } finally {
      clearInterval(renew);
      // during an outage the release would wait for the reconnection forever; the lock expires anyway
      const released = await withTimeout(this.redis.fitloopRelease(key, token), RELEASE_WAIT_MS);
      if (released === 0) this.logger.warn(`fitloop tuner: the lock ${key} in ${this.url} expired while held (over ${this.o.lockMs} ms without renewal)`);
    }
  }

  /** Closes the connection (after pending commands). */
  async close(): Promise<void> {
    if ((await withTimeout(this.redis.quit(), RELEASE_WAIT_MS)) === undefined) this.redis.disconnect();
  }
}
