/**
 * `--storage`: a Redis URL (Optuna's `JournalRedisStorage`, with worker leases) or the path of a
 * journal file (Optuna's `JournalFileStorage`). The spec may hold a password, so nothing here ever
 * echoes it: errors name the scheme or the path, and `where` is the URL without its password.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "@fitloop/core";
import type { JournalStorage } from "@fitloop/recipes";
import { FileJournal } from "@fitloop/recipes/node";
import { RedisJournal, isRedisUrl } from "@fitloop/tuner-redis";
import { CliError } from "./errors.js";

export interface OpenStorageOptions {
  /** Redis only: Optuna's key prefix (default ""). */
  readonly prefix?: string;
  /** Redis only: a worker silent this long is dead and its trial queued again. Default 30 000 ms. */
  readonly leaseMs?: number;
  /** Warnings of the storage (a lost connection, a skipped record). Default the console. */
  readonly logger?: Logger;
  /** A journal file that does not exist yet is created (Optuna does so too). Default true; false for readers. */
  readonly create?: boolean;
}

export interface OpenedStorage {
  readonly journal: JournalStorage;
  readonly kind: "redis" | "file";
  /** Where the study lives, safe to print: the URL without its password (and the prefix), or the file's absolute path. */
  readonly where: string;
  close(): Promise<void>;
}

/** Schemes people reach for that are not a journal: named in the error. */
const RDB_SCHEMES = new Set(["sqlite", "postgresql", "postgres", "mysql", "mysql+pymysql", "oracle", "mssql"]);

/** The scheme of a URL-like spec (`s3` of `s3://...`), or undefined for a path. */
function schemeOf(spec: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):\/\//i.exec(spec)?.[1]?.toLowerCase();
}

/** The absolute path of a journal file spec, checked: a file (or nothing yet) in an existing directory. */
export function journalPath(spec: string, create: boolean): string {
  const path = resolve(spec.startsWith("file://") ? fileURLToPath(spec) : spec);
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) throw new CliError("INVALID_STORAGE", `--storage ${path} is a directory; give the journal file inside it (e.g. ${path}/study.log)`);
    return path;
  }
  if (!create) throw new CliError("INVALID_STORAGE", `--storage: no journal file at ${path}`);
  if (!existsSync(dirname(path)) || !statSync(dirname(path)).isDirectory()) throw new CliError("INVALID_STORAGE", `--storage ${path}: the directory ${dirname(path)} does not exist`);
  return path;
}

/**
 * Checks the spec without opening anything (so a worker refuses bad input before it joins):
 * a Redis URL, or a file path; `--prefix`/`--lease-ms` only with Redis.
 */
export function checkStorageSpec(spec: string, options: OpenStorageOptions = {}): "redis" | "file" {
  if (typeof spec !== "string" || !spec.trim()) throw new CliError("INVALID_STORAGE", "--storage is empty: give redis://host:port (or rediss://) or the path of a journal file");
  if (isRedisUrl(spec)) return "redis";
  const scheme = schemeOf(spec);
  if (scheme !== undefined && scheme !== "file") {
    const rdb = RDB_SCHEMES.has(scheme) ? " (Optuna's RDB storages are not supported: fitloop shares studies through Optuna's journal)" : "";
    throw new CliError("INVALID_STORAGE", `--storage has the unknown scheme "${scheme}://"${rdb}; use redis://[:password@]host:port[/db] (or rediss://) for Redis, or the path of a journal file`);
  }
  // a mistyped Redis URL (a leading space from a quoted variable, `redis:/`, `redis//`) would be taken
  // for a file path and echoed with its password in the error
  if (/^\s*rediss?:|@/i.test(spec)) throw new CliError("INVALID_STORAGE", "--storage looks like a Redis URL but is not one (check for spaces or a missing slash); write redis://[:password@]host:port[/db] or rediss://..., or use FITLOOP_REDIS_PASSWORD for the password");
  if (/^[\w.-]+:\d+$/.test(spec)) throw new CliError("INVALID_STORAGE", `--storage "${spec}" looks like host:port; a Redis URL starts with redis:// (for a journal file named so, write ./${spec})`);
  if (options.prefix !== undefined) throw new CliError("INVALID_USAGE", "--prefix applies to Redis storage only (a journal file holds its studies by name)");
  if (options.leaseMs !== undefined) throw new CliError("INVALID_USAGE", "--lease-ms applies to Redis storage only (on a journal file, workers on this machine are checked by pid)");
  journalPath(spec, options.create ?? true);
  return "file";
}

/** Opens the storage `spec` names: a `RedisJournal` (connected) for redis:// and rediss://, else a `FileJournal`. */
export async function openStorage(spec: string, options: OpenStorageOptions = {}): Promise<OpenedStorage> {
  const kind = checkStorageSpec(spec, options);
  if (kind === "redis") {
    const password = process.env["FITLOOP_REDIS_PASSWORD"];
    const journal = await RedisJournal.connect({
      url: spec,
      // from the environment: a password in the URL of a command line is visible to every local user (`ps`)
      ...(password ? { password } : {}),
      ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
      ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    return { journal, kind, where: journal.prefix ? `${journal.url} (prefix "${journal.prefix}")` : journal.url, close: () => journal.close() };
  }
  const path = journalPath(spec, options.create ?? true);
  const journal = new FileJournal(path, options.logger ? { logger: options.logger } : {});
  return { journal, kind, where: path, close: async () => undefined };
}
