/**
 * The CLI as a user runs it, in real processes: `node --import tsx src/bin.ts ...` from the package
 * directory (sources, as the repo runs them), each in its own process group so a test can SIGKILL a
 * worker with everything it started, and `killAll()` leaves no process behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { startRedis, type RedisServer } from "../../tuner-redis/src/redis-server.fixture.js";

export const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");
export const BIN = join(PACKAGE_DIR, "src", "bin.ts");
export const OBJECTIVE_FIXTURE = join(PACKAGE_DIR, "src", "objective.fixture.ts");
// sibling packages' sources use decorators (checkpoint's @inject): tsx needs the repo's setting for them
const TSX_TSCONFIG_PATH = join(PACKAGE_DIR, "..", "..", "tsconfig.check.json");

export interface Proc {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` to the process group (the process and whatever it started). */
  kill(signal?: NodeJS.Signals): void;
}

const running = new Set<Proc>();

export function start(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd = PACKAGE_DIR): Proc {
  const child = spawn(command, [...args], { cwd, env: { ...process.env, TSX_TSCONFIG_PATH, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => void (out += d.toString("utf8")));
  child.stderr!.on("data", (d: Buffer) => void (err += d.toString("utf8")));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("close", (code, signal) => resolve({ code, signal })));
  const proc: Proc = {
    pid: child.pid!,
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill: (signal = "SIGKILL") => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // the group is gone already
      }
    },
  };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  return proc;
}

/** `fitloop <args>` from source. */
export const startCli = (args: readonly string[], env: NodeJS.ProcessEnv = {}): Proc => start(process.execPath, ["--import", "tsx", "--conditions=@fitloop/source", BIN, ...args], env);

/** Runs `fitloop <args>` to its end (killed after `timeoutMs`). */
export async function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 50_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = startCli(args, env);
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** Kills every process group still running and waits for them (afterAll). */
export async function killAll(): Promise<void> {
  const left = [...running];
  for (const p of left) p.kill("SIGKILL");
  await Promise.all(left.map((p) => p.exited));
}

/** Whether a process with this pid exists (after a kill: it was reaped). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until `check` is true, polling every 25 ms; throws after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * For one describe block: a password-protected redis-server (started before its tests, stopped
 * after them with every CLI process the tests started) and a temporary directory.
 */
export function redisSuite(binary: string | undefined, password: string, tempPrefix: string): { readonly work: string; readonly server: RedisServer } {
  const work = mkdtempSync(join(tmpdir(), tempPrefix));
  let server: RedisServer | undefined;
  beforeAll(async () => {
    server = await startRedis(binary!, { password });
  });
  afterAll(async () => {
    await killAll();
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  return {
    work,
    get server() {
      if (!server) throw new Error("the Redis server is started in beforeAll");
      return server;
    },
  };
}
