/**
 * Redis restarted under three `fitloop tune` processes on one study (a real, password-protected
 * redis-server with the append-only file on and fsync always, so the restart keeps the journal and
 * the leases' expiry times). Each worker says it lost the connection and that it reconnected (never
 * with the password), its commands wait for the server, and the study still ends with exactly the
 * trials asked for, each numbered once and finished once.
 *
 * - A lease longer than the outage: nothing is failed. The trials that were running when Redis
 *   stopped go on where they were and finish: the steps they had reported are kept, the later ones
 *   follow, every epoch trained and reported once, by one process (the fixture's epoch log), and at
 *   least one of them trained epochs after Redis was back.
 * - A lease shorter than the outage: every lease expires while Redis is down, so the trials that ran
 *   across it are failed (by their own worker, or by whichever worker came back first) and queued
 *   again as Optuna's RetryFailedTrialCallback does; those FAILs do not count, their retries do, and
 *   no trial number is finished twice.
 *
 * The objective is the fixture's cheap one (no tfjs training: the study is about Redis, not about
 * training) with SLOW_EPOCH_MS, so one trial takes about 2 s and the study several seconds.
 */
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { OP, Study, TRIAL_STATE, parseRecord, type JournalRecord, type TrialRecord } from "@fitloop/recipes";
import type { RedisJournal } from "@fitloop/tuner-redis";
import { describe, expect, it } from "vitest";
import { systemTool } from "../../../scripts/system-tools.js";
import { openStorage, studyProgress } from "./index.js";
import { OBJECTIVE_FIXTURE, type Proc, alive, redisSuite, startCli } from "./processes.fixture.js";

const redisTool = systemTool("redis-server");
/** Has characters a URL must encode: neither form may be printed. */
const SECRET = "re/start s3cret";
const TOTAL = 12;
const WORKERS = 3;
const EPOCHS = 6; // the fixture's
const SLOW_EPOCH_MS = 300;
const BEGIN = "restart begin";
const END = "restart end";
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** An epoch line of the fixture, and whether it was logged before the restart began or after the server was back. */
interface EpochLine {
  trial: number;
  retryOf: number | undefined;
  epoch: number;
  pid: number;
  phase: "before" | "during" | "after";
}

function readEpochs(file: string): EpochLine[] {
  const out: EpochLine[] = [];
  let phase: EpochLine["phase"] = "before";
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line === BEGIN) phase = "during";
    else if (line === END) phase = "after";
    const m = /^trial (\d+) retry_of (\d+|-) epoch (\d+) pid (\d+)$/.exec(line);
    if (m) out.push({ trial: Number(m[1]), retryOf: m[2] === "-" ? undefined : Number(m[2]), epoch: Number(m[3]), pid: Number(m[4]), phase });
  }
  return out;
}

/** Resolves when every process has exited; throws (with their stderr) after `ms`. */
async function allExited(procs: readonly Proc[], ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`workers still running after ${ms} ms:\n${procs.map((p) => `--- ${p.pid}\n${p.stdout()}\n${p.stderr()}`).join("\n")}`)), ms);
  });
  try {
    return await Promise.race([Promise.all(procs.map((p) => p.exited)), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The raw journal: every `{prefix}:log:{n}` key, checked to be exactly 0..log_number, parsed in order. */
async function rawLog(journal: RedisJournal, prefix: string): Promise<JournalRecord[]> {
  const redis = journal.client;
  const last = Number(await redis.get(`${prefix}:log_number`));
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", `${prefix}:log:*`, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  const numbers = [...new Set(keys)].map((k) => Number(k.slice(`${prefix}:log:`.length))).sort((a, b) => a - b);
  expect(numbers).toEqual([...Array(last + 1).keys()]); // no gap, nothing past log_number
  const texts = await redis.mget(numbers.map((n) => `${prefix}:log:${n}`));
  return texts.map((t, n) => parseRecord(t!, `record ${n}`));
}

/** Finishing records (COMPLETE, PRUNED, FAIL) per trial id, in log order. */
function finishingRecords(records: readonly JournalRecord[]): Map<number, string[]> {
  const names = new Map<number, string>(Object.entries(TRIAL_STATE).map(([k, v]) => [v, k]));
  const out = new Map<number, string[]>();
  for (const r of records) {
    if (r.op_code !== OP.SET_TRIAL_STATE_VALUES) continue;
    const state = r["state"] as number;
    if (state !== TRIAL_STATE.COMPLETE && state !== TRIAL_STATE.PRUNED && state !== TRIAL_STATE.FAIL) continue;
    const id = r["trial_id"] as number;
    out.set(id, [...(out.get(id) ?? []), names.get(state)!]);
  }
  return out;
}

interface Outcome {
  workers: Proc[];
  trials: readonly TrialRecord[];
  finishes: Map<number, string[]>;
  epochs: EpochLine[];
  /** The trials RUNNING when Redis was stopped (read just before), with the steps they had reported. */
  running: { number: number; steps: Record<number, number> }[];
  /** Trial numbers with epochs logged both before the restart and after the server was back: they trained across the outage. */
  across: number[];
  /** When the restart began, relative to the workers' start, and how long the whole run took (s). */
  restartAt: number;
  seconds: number;
}

describe.skipIf(!redisTool.path)(`fitloop tune: Redis restarted mid-study${redisTool.note}`, () => {
  const suite = redisSuite(redisTool.path, SECRET, "fitloop-cli-restart-");
  const { work } = suite;

  /** Three workers on study `prefix`; Redis is restarted (down `downMs`) once all run trials and some have finished. */
  async function run(prefix: string, leaseMs: number, downMs: number): Promise<Outcome> {
    const log = join(work, `${prefix}-epochs.log`);
    appendFileSync(log, "");
    const setup = await openStorage(suite.server.url, { prefix, logger: silent });
    const study = await Study.open({ storage: setup.journal, name: "s", direction: "minimize" });
    const args = ["tune", "--storage", suite.server.url, "--study", "s", "--objective", OBJECTIVE_FIXTURE, "--trials", String(TOTAL), "--prefix", prefix, "--lease-ms", String(leaseMs), "--seed", "5"];
    const t0 = performance.now();
    const workers = Array.from({ length: WORKERS }, () => startCli(args, { FITLOOP_CHEAP_OBJECTIVE: "1", SLOW_EPOCH_MS: String(SLOW_EPOCH_MS), FITLOOP_EPOCH_LOG: log }));
    // every worker connected and in a trial, and some trials finished: the restart cuts into all three
    let running: Outcome["running"];
    try {
      for (const deadline = Date.now() + 40_000; ; await sleep(40)) {
        if (Date.now() > deadline) throw new Error(`the study did not get going within 40 s:\n${workers.map((w) => w.stdout() + w.stderr()).join("\n")}`);
        for (const w of workers) if (w.child.exitCode !== null) throw new Error(`worker ${w.pid} exited early (${w.child.exitCode}):\n${w.stdout()}\n${w.stderr()}`);
        if (!workers.every((w) => / joined study /.test(w.stdout()))) continue;
        await study.sync();
        const p = studyProgress(study.trials);
        if (p.running === WORKERS && p.finished >= 2 && p.finished <= TOTAL - 2 * WORKERS) break;
      }
      running = study.trials.filter((t) => t.state === "RUNNING").map((t) => ({ number: t.number, steps: { ...t.intermediateValues } }));
    } finally {
      await setup.close();
    }
    const restartAt = (performance.now() - t0) / 1000;
    appendFileSync(log, `${BEGIN}\n`);
    await suite.server.restart(downMs);
    appendFileSync(log, `${END}\n`);

    const ends = await allExited(workers, 45_000);
    expect(
      ends.map((e) => e.code),
      workers.map((w) => w.stderr()).join("\n"),
    ).toEqual(workers.map(() => 0));
    const seconds = (performance.now() - t0) / 1000;

    const storage = await openStorage(suite.server.url, { prefix, logger: silent });
    let trials: readonly TrialRecord[];
    let records: JournalRecord[];
    try {
      trials = (await Study.open({ storage: storage.journal, name: "s", create: false })).trials;
      records = await rawLog(storage.journal as RedisJournal, prefix);
    } finally {
      await storage.close();
    }
    const epochs = readEpochs(log);
    const across = [...new Set(epochs.map((e) => e.trial))].filter((n) => epochs.some((e) => e.trial === n && e.phase === "before") && epochs.some((e) => e.trial === n && e.phase === "after")).sort((a, b) => a - b);
    return { workers, trials, finishes: finishingRecords(records), epochs, running, across, restartAt, seconds };
  }

  /** What both cases share: the workers said what happened (without the password), and the study is whole. */
  function commonChecks(o: Outcome): void {
    const url = `redis://:\\*\\*\\*@127\\.0\\.0\\.1:${suite.server.port}`;
    for (const w of o.workers) {
      const err = w.stderr();
      // once per outage each: the first failed attempt, then the first ready connection
      expect(err.match(new RegExp(`^fitloop tuner: lost the connection to ${url}/?: .+$`, "gm")), err).toHaveLength(1);
      expect(err.match(new RegExp(`^fitloop tuner: reconnected to ${url}/?$`, "gm")), err).toHaveLength(1);
      expect(err.indexOf("lost the connection")).toBeLessThan(err.indexOf("reconnected"));
      for (const out of [w.stdout(), err]) for (const secret of [SECRET, encodeURIComponent(SECRET), "s3cret"]) expect(out).not.toContain(secret);
      expect(w.stdout()).toMatch(new RegExp(`^fitloop: worker \\S+:${w.pid} ran \\d+ trials \\(\\d+ complete, \\d+ pruned, \\d+ failed\\); study "s" at ${url}/? \\(prefix "\\w+"\\) has ${TOTAL} of ${TOTAL} finished; best: trial \\d+ value `, "m"));
      expect(alive(w.pid)).toBe(false);
    }
    // numbered once: 0..n-1; counted: exactly TOTAL finished, nothing left running or waiting
    expect(o.trials.map((t) => t.number)).toEqual([...Array(o.trials.length).keys()]);
    expect(studyProgress(o.trials)).toMatchObject({ finished: TOTAL, running: 0, waiting: 0 });
    // finished once: the first finishing record of each trial in the raw log is the state the replay
    // shows, and no trial has two COMPLETE/PRUNED records (run twice to completion)
    expect(o.trials.map((t) => [t.number, o.finishes.get(t.id)?.[0]])).toEqual(o.trials.map((t) => [t.number, t.state]));
    expect(o.trials.filter((t) => o.finishes.get(t.id)!.filter((s) => s !== "FAIL").length > 1).map((t) => [t.number, o.finishes.get(t.id)])).toEqual([]);
    // every COMPLETE or PRUNED trial trained once, by the process recorded on it, every epoch reported once
    for (const t of o.trials.filter((t) => t.state !== "FAIL")) {
      const run = o.epochs.filter((e) => e.trial === t.number);
      const steps = Object.keys(t.intermediateValues).map(Number);
      expect(run.map((e) => e.epoch), `trial ${t.number}`).toEqual([...Array(t.state === "COMPLETE" ? EPOCHS : steps.length).keys()]);
      expect(steps, `trial ${t.number}`).toEqual(run.map((e) => e.epoch));
      expect(new Set(run.map((e) => e.pid)), `trial ${t.number}`).toEqual(new Set([(t.systemAttrs["fitloop:worker"] as { pid: number }).pid]));
    }
    // the workers' own lines: every trial printed by exactly one worker
    const printed = o.workers.flatMap((w) => [...w.stdout().matchAll(/^trial (\d+) (COMPLETE|PRUNED|FAIL) /gm)].map((m) => Number(m[1])));
    expect([...printed].sort((a, b) => a - b)).toEqual([...Array(o.trials.length).keys()]);
  }

  it("Redis restarted mid-study (persistence on): workers reconnect and the study completes", async () => {
    const o = await run("long", 10_000, 1500);
    commonChecks(o);
    // one finishing record per trial in the whole raw log
    expect(o.trials.map((t) => [t.number, o.finishes.get(t.id)])).toEqual(o.trials.map((t) => [t.number, [t.state]]));
    // nothing was failed: the outage was shorter than the lease
    expect(o.trials).toHaveLength(TOTAL);
    expect(o.trials.filter((t) => t.state !== "COMPLETE" && t.state !== "PRUNED").map((t) => [t.number, t.state, t.userAttrs["fitloop:fail_reason"]])).toEqual([]);
    for (const w of o.workers) expect(w.stderr()).not.toMatch(/lease .* expired/);
    // the trials running when Redis stopped all finished, their reports going on from where they were:
    // the steps reported before the outage are there as they were, with the later ones after them
    // (and every trial's steps are 0..k, each epoch trained once by one process: checked above)
    expect(o.running).toHaveLength(WORKERS);
    for (const r of o.running) {
      const t = o.trials[r.number]!;
      expect(["COMPLETE", "PRUNED"], `trial ${r.number}`).toContain(t.state);
      expect(t.intermediateValues, `trial ${r.number}`).toMatchObject(r.steps);
    }
    // at least one of them trained on after the outage: epochs logged before the restart and after it, in order
    expect(o.across.length).toBeGreaterThanOrEqual(1);
    for (const n of o.across) {
      const t = o.trials[n]!;
      expect(["COMPLETE", "PRUNED"], `trial ${n}`).toContain(t.state);
      const before = o.epochs.filter((e) => e.trial === n && e.phase === "before").map((e) => e.epoch);
      const after = o.epochs.filter((e) => e.trial === n && e.phase === "after").map((e) => e.epoch);
      expect(Math.min(...after)).toBeGreaterThan(Math.max(...before));
      expect(Object.keys(t.intermediateValues).map(Number)).toContain(Math.max(...after));
    }
    const show = (r: Outcome["running"][number]) => `#${r.number} ${o.trials[r.number]!.state} (${Object.keys(r.steps).length} -> ${Object.keys(o.trials[r.number]!.intermediateValues).length} steps${o.across.includes(r.number) ? ", trained after the outage" : ""})`;
    console.log(`long lease: restart at ${o.restartAt.toFixed(1)} s, all done at ${o.seconds.toFixed(1)} s; running across the outage: ${o.running.map(show).join(", ")}; ${o.trials.filter((t) => t.state === "PRUNED").length} pruned`);
  }, 60_000);

  it("an outage longer than a short lease: the trials cut off are failed and queued again, the study still has 12 counted trials, none finished twice", async () => {
    const o = await run("short", 1500, 3000);
    commonChecks(o);
    // every lease expired while Redis was down: each worker noticed when it came back
    for (const w of o.workers) expect(w.stderr()).toMatch(/^fitloop tuner: (the lease of worker \S+ expired \(no renewal for 1500 ms\)|no lease renewal of worker \S+ reached Redis for \d+ ms \(lease 1500 ms\))/m);
    const failed = o.trials.filter((t) => t.state === "FAIL");
    // the trials that trained on after the outage were failed all the same (their workers had lost their leases) ...
    expect(o.across.length).toBeGreaterThanOrEqual(1);
    for (const n of o.across) expect(o.trials[n]!.state, `trial ${n}`).toBe("FAIL");
    // ... and no trial started after Redis was back was failed
    for (const t of failed) expect(o.epochs.some((e) => e.trial === t.number && e.phase !== "after"), `trial ${t.number}`).toBe(true);
    expect(o.trials).toHaveLength(TOTAL + failed.length);
    for (const t of failed) {
      expect(String(t.userAttrs["fitloop:fail_reason"]), `trial ${t.number}`).toMatch(/lease (of worker \S+ )?expired|no lease renewal of worker/);
      // queued again once, with the same parameters and seed; the retry finished (it counts, the FAIL does not)
      const retries = o.trials.filter((r) => r.systemAttrs["failed_trial"] === t.number);
      expect(retries.map((r) => r.systemAttrs["retry_history"]), `trial ${t.number}`).toEqual([[t.number]]);
      const retry = retries[0]!;
      expect(retry.number).toBeGreaterThan(t.number);
      expect(["COMPLETE", "PRUNED"]).toContain(retry.state);
      expect(retry.params).toEqual(t.params);
      expect(retry.systemAttrs["fitloop:seed"]).toBe(t.systemAttrs["fitloop:seed"]);
      expect(o.epochs.filter((e) => e.trial === retry.number).every((e) => e.retryOf === t.number)).toBe(true);
    }
    const who = failed.map((t) => {
      const reason = String(t.userAttrs["fitloop:fail_reason"]);
      return `#${t.number} (${/failed by pid/.test(reason) ? "by another worker" : "by its own worker"}) -> #${o.trials.find((r) => r.systemAttrs["failed_trial"] === t.number)!.number}`;
    });
    const extra = o.trials.filter((t) => o.finishes.get(t.id)!.length > 1).map((t) => `#${t.number} ${o.finishes.get(t.id)!.join("+")}`);
    console.log(`short lease: restart at ${o.restartAt.toFixed(1)} s, all done at ${o.seconds.toFixed(1)} s; failed and retried: ${who.join(", ")}; trials with more than one finishing record: ${extra.join(", ") || "none"}`);
  }, 60_000);
});
