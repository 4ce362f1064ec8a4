/**
 * A private npm registry for the publish test: verdaccio (the repo's devDependency) on 127.0.0.1,
 * storage and config in a temp dir, no uplinks (it serves only what was published to it),
 * `@fitloop/*` readable by anyone and publishable by an authenticated user. A child process
 * stopped by its pid; its (quiet) log is kept for error messages.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import type { Env } from "./proc.js";

export interface Registry {
  /** "http://127.0.0.1:PORT/" */
  readonly url: string;
  readonly pid: number;
  /** What verdaccio printed (warnings and errors only). */
  log(): string;
  /** Creates a user through the registry's CouchDB login endpoint; returns its token. */
  addUser(name: string, password: string): Promise<string>;
  /** The packument of a package, or undefined on 404. */
  packument(name: string): Promise<Packument | undefined>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface PublishedManifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  dist: { tarball: string; integrity?: string; shasum: string };
  [key: string]: unknown;
}
export interface Packument {
  name: string;
  "dist-tags": Record<string, string>;
  versions: Record<string, PublishedManifest>;
}

/** A port the OS says is free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === "object" ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

function config(dir: string, port: number): string {
  return [
    `storage: ${JSON.stringify(join(dir, "storage"))}`,
    "auth:",
    "  htpasswd:",
    `    file: ${JSON.stringify(join(dir, "htpasswd"))}`,
    "    max_users: 10",
    "uplinks: {}",
    "packages:",
    "  '@fitloop/*':",
    "    access: $all",
    "    publish: $authenticated",
    "    unpublish: $authenticated",
    "  '**':",
    "    access: $all",
    "    publish: $authenticated",
    "web:",
    "  enable: false",
    "max_body_size: 200mb",
    "log:",
    "  type: stdout",
    "  format: pretty",
    "  level: warn",
    `listen: 127.0.0.1:${port}`,
    "",
  ].join("\n");
}

/**
 * Starts verdaccio (`bin`: the path of node_modules/verdaccio/bin/verdaccio) with a config in `dir`
 * and waits until it answers `/-/ping`. Rejects (with the process stopped) if it does not within
 * `timeoutMs`.
 */
export async function startVerdaccio(bin: string, dir: string, env: Env, timeoutMs = 30_000): Promise<Registry> {
  mkdirSync(join(dir, "storage"), { recursive: true });
  const port = await freePort();
  const configPath = join(dir, "config.yaml");
  writeFileSync(configPath, config(dir, port));
  const url = `http://127.0.0.1:${port}/`;
  const child: ChildProcess = spawn(process.execPath, [bin, "--config", configPath], {
    cwd: dir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error(`verdaccio did not start (${bin})`);
  const pid = child.pid;
  let log = "";
  const keep = (d: Buffer) => {
    log = (log + d.toString()).slice(-20_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.on("exit", (code, signal) => {
      exited = true;
      log += `\n[verdaccio exited: ${signal ?? code}]`;
      resolve();
    }),
  );

  const stop = async (graceMs = 5_000): Promise<void> => {
    if (exited) return;
    process.kill(pid, "SIGTERM");
    const timer = setTimeout(() => {
      if (!exited) process.kill(pid, "SIGKILL");
    }, graceMs);
    await gone;
    clearTimeout(timer);
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`verdaccio exited before it answered on ${url}:\n${log}`);
    try {
      const r = await fetch(new URL("-/ping", url), { signal: AbortSignal.timeout(2_000) });
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`verdaccio did not answer on ${url} within ${timeoutMs} ms:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    pid,
    log: () => log,
    stop,
    async addUser(name, password) {
      const r = await fetch(new URL(`-/user/org.couchdb.user:${encodeURIComponent(name)}`, url), {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ _id: `org.couchdb.user:${name}`, name, password, type: "user", roles: [], date: new Date().toISOString() }),
      });
      const body = (await r.json().catch(() => ({}))) as { token?: string; error?: string };
      if (!r.ok || !body.token) throw new Error(`adduser ${name}: HTTP ${r.status} ${JSON.stringify(body)}`);
      return body.token;
    },
    async packument(name) {
      const r = await fetch(new URL(name.replace("/", "%2f"), url));
      if (r.status === 404) return undefined;
      if (!r.ok) throw new Error(`GET ${name}: HTTP ${r.status} ${await r.text()}`);
      return (await r.json()) as Packument;
    },
  };
}
