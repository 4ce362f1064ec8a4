/**
 * Child processes for the publish test: a clean environment (what a user's shell has, not what
 * npm/pnpm/vitest put into ours), a `pnpm` on PATH that runs the repo's pinned pnpm, and commands
 * run in their own process group so a failed or timed-out step leaves nothing behind.
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve, sep } from "node:path";

export type Env = Record<string, string>;
export interface RunResult {
  code: number;
  out: string;
  ms: number;
}

/** Process groups of the commands still running (killed by `killAll`). */
const running = new Set<number>();

/**
 * process.env without what npm, pnpm and vitest add for their scripts (`npm_*`, `PNPM_*`,
 * `VITEST*`, `NODE_ENV=test`, ...), with `extra` on top and without PATH entries inside `repoRoot` (the real repo's
 * node_modules/.bin): the commands must use the throwaway copy's tools and the given npmrc only.
 */
export function cleanEnv(repoRoot: string, extra: Env = {}): Env {
  const env: Env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    // npm and pnpm set lower-case npm_* for the scripts they run; upper-case NPM_CONFIG_* is a
    // user's own setting and stays (unless `extra` sets the same key in another case)
    if (/^(npm_|pnpm_|vitest|tinypool)/.test(k) || /^(pnpm_|vitest)/i.test(k) || k === "NODE_ENV" || k === "TEST" || k === "INIT_CWD") continue;
    if (Object.keys(extra).some((e) => e.toLowerCase() === k.toLowerCase())) continue;
    env[k] = v;
  }
  const root = resolve(repoRoot);
  env["PATH"] = (process.env["PATH"] ?? "")
    .split(delimiter)
    .filter((p) => p && resolve(p) !== root && !resolve(p).startsWith(root + sep))
    .join(delimiter);
  return { ...env, FORCE_COLOR: "0", NO_COLOR: "1", ...extra };
}

/**
 * Writes `<dir>/pnpm`, a shim that runs `<repo>/scripts/pnpm.mjs` (the pinned pnpm) with `path`
 * as PATH: pnpm.mjs probes `pnpm --version` on PATH, which must not find this shim again (that
 * recursion is a fork bomb). Returns `dir`, to put first on PATH.
 */
export function pnpmShim(dir: string, repo: string, path: string): string {
  mkdirSync(dir, { recursive: true });
  const shim = join(dir, "pnpm");
  writeFileSync(shim, `#!/bin/sh\nPATH=${shq(path)} exec node ${shq(join(repo, "scripts", "pnpm.mjs"))} "$@"\n`);
  chmodSync(shim, 0o755);
  return dir;
}

/**
 * The directory of the pinned pnpm's own executable (npx's cache when scripts/pnpm.mjs ran it
 * through npx), found by asking it for the PATH it runs commands with; undefined if none matches.
 * With it on the shim's PATH, pnpm.mjs's probe finds the pinned version and runs it directly,
 * instead of paying npx's start-up (about 1.5 s of CPU) on each of changesets' pnpm calls.
 */
export async function pinnedPnpmDir(repo: string, env: Env): Promise<string | undefined> {
  const pin = /"pnpm@([^"]+)"/.exec(readFileSync(join(repo, "scripts", "pnpm.mjs"), "utf8"))?.[1];
  const r = await run(process.execPath, [join(repo, "scripts", "pnpm.mjs"), "exec", "node", "-e", "process.stdout.write(process.env.PATH)"], { cwd: repo, env, timeoutMs: 60_000 });
  if (!pin || r.code !== 0) return undefined;
  for (const dir of r.out.trim().split(delimiter)) {
    const bin = join(dir, "pnpm");
    if (!isAbsolute(dir) || !existsSync(bin)) continue;
    const v = await run(bin, ["--version"], { cwd: repo, env: { ...env, FITLOOP_PNPM_PROBE: "1" }, timeoutMs: 30_000 });
    if (v.code === 0 && v.out.trim() === pin) return dir;
  }
  return undefined;
}

function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Runs a command (its own process group, output captured); never throws. */
export function run(cmd: string, args: string[], opts: { cwd: string; env: Env; timeoutMs?: number }): Promise<RunResult> {
  const t0 = Date.now();
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const pid = child.pid;
    if (pid !== undefined) running.add(pid);
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          out += `\n[timed out after ${opts.timeoutMs} ms: killed]`;
          if (pid !== undefined) killGroup(pid);
        }, opts.timeoutMs)
      : undefined;
    child.on("error", (e) => {
      clearTimeout(timer);
      if (pid !== undefined) running.delete(pid);
      done({ code: 127, out: out + String(e), ms: Date.now() - t0 });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (pid !== undefined) {
        running.delete(pid);
        killGroup(pid); // grandchildren that outlived their parent (none expected)
      }
      done({ code: code ?? (signal ? 128 : 1), out, ms: Date.now() - t0 });
    });
  });
}

/** `run`, throwing an error with the command's output when it fails. */
export async function mustRun(cmd: string, args: string[], opts: { cwd: string; env: Env; timeoutMs?: number }): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`\`${[cmd, ...args].join(" ")}\` (in ${opts.cwd}) exited with ${r.code}:\n${tail(r.out)}`);
  return r;
}

export function tail(s: string, chars = 6000): string {
  return s.length > chars ? `...${s.slice(-chars)}` : s;
}

/** SIGKILL to a process group we started (by its leader's pid); a group already gone is fine. */
export function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    /* already gone */
  }
}

/** Kills every command of this module that is still running (afterAll, after a failure). */
export function killAll(): void {
  for (const pid of running) killGroup(pid);
  running.clear();
}
