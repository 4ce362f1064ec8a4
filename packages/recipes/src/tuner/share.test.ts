/**
 * Processes sharing one study file: two workers at once finish exactly the trials asked, with no
 * number or id twice; a worker killed with SIGKILL mid-search is resumed without repeating a
 * finished trial, its RUNNING trial failed and run again with the same parameters and seed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Study, int, tune, uniform, workerOf, type TrialRecord } from "./index.js";
import { FileJournal } from "./node.js";

const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "fitloop-share-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Worker {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** Resolves when a line matching `re` arrives (or already did). */
  waitFor(re: RegExp, count?: number): Promise<void>;
}

function worker(options: { path: string; name: string; trials: number; sleepMs: number; seed: number; barrier?: boolean }): Worker {
  // node itself with tsx as a loader: one process, so SIGKILL kills the worker (the tsx CLI would leave its child running)
  const child = spawn(process.execPath, ["--import", "tsx", "--conditions=@fitloop/source", join(here, "testing", "worker.fixture.ts"), JSON.stringify(options)], {
    cwd: join(here, "..", ".."),
    stdio: ["ignore", "pipe", "pipe"],
    // the repo's check config: @fitloop/checkpoint's parameter decorators (recipes/node imports it) compile from source only with it
    env: { ...process.env, TSX_TSCONFIG_PATH: join(here, "..", "..", "..", "..", "tsconfig.check.json") },
  });
  const lines: string[] = [];
  const waiters: { re: RegExp; count: number; resolve: () => void }[] = [];
  let stderr = "";
  let partial = "";
  const check = () => {
    for (const w of [...waiters]) {
      if (lines.filter((l) => w.re.test(l)).length >= w.count) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout!.on("data", (d) => {
    const parts = (partial + String(d)).split("\n");
    partial = parts.pop()!;
    lines.push(...parts);
    check();
  });
  child.stderr!.on("data", (d) => (stderr += String(d)));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stderr })));
  return {
    child,
    lines,
    exit,
    waitFor: (re, count = 1) =>
      new Promise<void>((resolve, reject) => {
        waiters.push({ re, count, resolve });
        check();
        void exit.then(({ code, signal }) => reject(new Error(`worker ended (${code ?? signal}) before ${count}x ${re}: ${stderr}`)));
      }),
  };
}

const numbersIn = (lines: string[], word: string) => lines.filter((l) => l.startsWith(`${word} `)).map((l) => Number(l.split(" ")[1]));

describe("processes sharing a study file", () => {
  it("two workers at once: exactly the trials asked, each number and id once, both workers busy, every record valid", async () => {
    const path = join(dir, "two.log");
    const opts = { path, name: "shared", trials: 10, sleepMs: 80, seed: 5, barrier: true };
    const [a, b] = [worker(opts), worker(opts)];
    await Promise.all([a.waitFor(/^ready$/), b.waitFor(/^ready$/)]);
    writeFileSync(`${path}.go`, "");
    const [ea, eb] = await Promise.all([a.exit, b.exit]);
    expect(ea.code, ea.stderr).toBe(0);
    expect(eb.code, eb.stderr).toBe(0);
    const ranA = numbersIn(a.lines, "done");
    const ranB = numbersIn(b.lines, "done");
    expect([...ranA, ...ranB].sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
    expect(ranA.length, "worker A ran trials").toBeGreaterThan(0);
    expect(ranB.length, "worker B ran trials").toBeGreaterThan(0);

    const storage = new FileJournal(path);
    const study = await Study.open({ storage, name: "shared", create: false });
    expect(await storage.readFrom(0)).toHaveLength(readFileSync(path, "utf8").split("\n").length - 1); // every line a record
    const trials = study.trials;
    expect(trials).toHaveLength(10);
    expect(trials.every((t) => t.state === "COMPLETE")).toBe(true);
    expect(new Set(trials.map((t) => t.id)).size).toBe(10);
    expect(new Set(trials.map((t) => workerOf(t)!.pid))).toEqual(new Set([a.child.pid, b.child.pid]));
    for (const t of trials) expect(t.value).toBe((t.params["x"] as number) ** 2 + (t.params["k"] as number));
    // trial n's parameters follow from (seed, n), whichever worker ran it
    const alone = await tune({ study: { storage: new FileJournal(join(dir, "alone.log")), name: "alone" }, space: { x: uniform(-1, 1), k: int(1, 5) }, trials: 10, seed: 5, objective: ({ x, k }) => x * x + k });
    expect(alone.study.trials.map((t) => t.params)).toEqual(trials.map((t) => t.params));
  }, 90_000);

  it("SIGKILL mid-search, then resume: finished trials are kept and not run again; the killed trial is FAIL and runs again with its parameters and seed", async () => {
    const path = join(dir, "killed.log");
    const opts = { path, name: "killed", trials: 6, sleepMs: 400, seed: 9 };
    const w = worker(opts);
    await w.waitFor(/^done /, 2);
    await w.waitFor(/^start /, 3); // the third trial is claimed in the journal and running
    w.child.kill("SIGKILL");
    expect((await w.exit).signal).toBe("SIGKILL");
    const finishedBefore = numbersIn(w.lines, "done");
    const killed = numbersIn(w.lines, "start").find((n) => !finishedBefore.includes(n))!;
    expect(finishedBefore).toEqual([0, 1]);

    const storage = new FileJournal(path);
    const before = await Study.open({ storage, name: "killed", create: false });
    const snapshot = before.trials.map((t) => ({ ...t }));
    expect(snapshot[killed]!.state).toBe("RUNNING");

    const calls: { number: number; params: object; seed: number }[] = [];
    const r = await tune({ study: { storage, name: "killed" }, space: { x: uniform(-1, 1), k: int(1, 5) }, trials: 6, seed: 9, objective: ({ x, k }, t) => (calls.push({ number: t.number, params: { x, k }, seed: t.seed }), x * x + k) });
    const trials = r.study.trials;
    // the two finished trials are untouched, and nobody ran them again
    for (const n of finishedBefore) expect(trials[n]).toEqual(snapshot[n]);
    expect(calls).toHaveLength(6 - finishedBefore.length);
    for (const c of calls) for (const n of finishedBefore) expect(c.params).not.toEqual(trials[n]!.params);
    // the killed trial: failed, with the reason, and queued again as the next trial
    const dead: TrialRecord = trials[killed]!;
    expect(dead.state).toBe("FAIL");
    expect(dead.userAttrs["fitloop:fail_reason"]).toMatch(new RegExp(`pid ${w.child.pid} on .* died`));
    expect(calls[0]).toEqual({ number: killed + 1, params: dead.params, seed: dead.systemAttrs["fitloop:seed"] });
    expect(trials[killed + 1]!.systemAttrs).toMatchObject({ failed_trial: killed, retry_history: [killed] });
    expect(trials.filter((t) => t.state === "COMPLETE")).toHaveLength(6);
    expect(trials.map((t) => t.state)).toEqual(["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE", "COMPLETE"]);
  }, 90_000);
});
