/**
 * Four `fitloop tune` processes and one Python Optuna worker on one study in a real, password-
 * protected redis-server: every trial numbered once, finished once, none lost; each fitloop trial
 * trained once (its epochs log); Optuna's `load_study` sees them all; `fitloop study show` prints the
 * study (table and JSON); the password appears in no output.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Study, parsePyJson, type JournalRecord, type TrialRecord } from "@fitloop/recipes";
import { describe, expect, it } from "vitest";
import { pythonModule, systemTool } from "../../../scripts/system-tools.js";
import { openStorage } from "./index.js";
import { OBJECTIVE_FIXTURE, type Proc, alive, redisSuite, runCli, start, startCli, until } from "./processes.fixture.js";

const redisTool = systemTool("redis-server");
const optuna = pythonModule("optuna");
const pyRedis = pythonModule("redis");
const SECRET = "cli-s3cret/pw";
const TOTAL = 40;
const PY_TRIALS = 5;
const PREFIX = "many";
const STUDY = "shared";

// the fixture's space in Python: same names, same distributions
const PY_WORKER = `
import json, math, sys, time, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from optuna.storages import JournalStorage, JournalRedisStorage
url, prefix, name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
study = optuna.load_study(study_name=name, storage=JournalStorage(JournalRedisStorage(url, prefix=prefix)), sampler=optuna.samplers.RandomSampler(seed=5))
def objective(trial):
    lr = trial.suggest_float("lr", 1e-3, 0.3, log=True)
    units = trial.suggest_int("units", 4, 32)
    for step in range(6):
        time.sleep(0.05)
        trial.report((math.log10(lr) + 1.5) ** 2 + 8 / units + 1 / (step + 1), step)
    return (math.log10(lr) + 1.5) ** 2 + 8 / units
ran = []
study.optimize(objective, n_trials=n, callbacks=[lambda s, t: ran.append(t.number)])
print(json.dumps(ran))
`;
const PY_DUMP = `
import json, sys, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from optuna.storages import JournalStorage, JournalRedisStorage
url, prefix, name = sys.argv[1], sys.argv[2], sys.argv[3]
study = optuna.load_study(study_name=name, storage=JournalStorage(JournalRedisStorage(url, prefix=prefix)))
print(json.dumps([{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params, "steps": sorted(t.intermediate_values)} for t in study.trials]))
`;

describe.skipIf(!redisTool.path || !optuna.path || !pyRedis.path)(`fitloop tune: 4 workers and Optuna on one Redis study${redisTool.note}${optuna.note}${pyRedis.note}`, () => {
  const suite = redisSuite(redisTool.path, SECRET, "fitloop-cli-");
  const { work } = suite;
  const epochLog = join(work, "epochs.log");
  /** Every output of every process, to look for the password. */
  const outputs: string[] = [];
  let trials: readonly TrialRecord[] = [];
  let records: JournalRecord[] = [];
  let workers: Proc[] = [];
  let pythonRan: number[] = [];

  it(`${TOTAL} trials in total: numbered once, finished once, none lost, each fitloop trial trained once; Python sees them all`, async () => {
    // the study exists before the Python worker's load_study
    const setup = await openStorage(suite.server.url, { prefix: PREFIX });
    await Study.open({ storage: setup.journal, name: STUDY, direction: "minimize" });
    await setup.close();

    const args = ["tune", "--storage", suite.server.url, "--study", STUDY, "--objective", OBJECTIVE_FIXTURE, "--trials", String(TOTAL), "--prefix", PREFIX, "--seed", "11"];
    workers = [0, 1, 2, 3].map(() => startCli(args, { FITLOOP_EPOCH_LOG: epochLog }));
    // Python starts once fitloop works, so its trials land among fitloop's (it imports faster than tsx + tfjs)
    await until(() => workers.some((w) => / joined study /.test(w.stdout())), 30_000, "a fitloop worker to join");
    const python = start(optuna.path!, ["-c", PY_WORKER, suite.server.url, PREFIX, STUDY, String(PY_TRIALS)]);
    const ends = await Promise.all([python, ...workers].map((p) => p.exited));
    outputs.push(...[python, ...workers].flatMap((p) => [p.stdout(), p.stderr()]));
    expect(ends.map((e) => e.code), [python, ...workers].map((p) => p.stderr()).join("\n")).toEqual([0, 0, 0, 0, 0]);
    pythonRan = JSON.parse(python.stdout()) as number[];
    expect(pythonRan).toHaveLength(PY_TRIALS);

    const storage = await openStorage(suite.server.url, { prefix: PREFIX });
    try {
      const study = await Study.open({ storage: storage.journal, name: STUDY, create: false });
      trials = study.trials;
      records = await storage.journal.readFrom(0);
    } finally {
      await storage.close();
    }
    // the Python worker stops at its own n_trials, not at the study's total: it may add a few past 40
    // when it starts its trials after the fitloop workers counted 40
    expect(trials.length).toBeGreaterThanOrEqual(TOTAL);
    expect(trials.length).toBeLessThanOrEqual(TOTAL + PY_TRIALS);
    expect(trials.map((t) => t.number)).toEqual([...Array(trials.length).keys()]);
    expect(trials.filter((t) => t.state !== "COMPLETE" && t.state !== "PRUNED")).toEqual([]);

    // who ran what: each trial by exactly one worker, fitloop's (its printed line) or Python's
    const printed = workers.map((w) => [...w.stdout().matchAll(/^trial (\d+) (COMPLETE|PRUNED) value \S+ lr=\S+ units=\d+ \d+\.\d s( \(pruned by the median pruner at epoch \d+ \(val_loss \S+\)\))?$/gm)].map((m) => Number(m[1])));
    const byFitloop = printed.flat();
    expect([...byFitloop, ...pythonRan].sort((a, b) => a - b)).toEqual([...Array(trials.length).keys()]);
    expect(printed.filter((p) => p.length > 0).length).toBeGreaterThanOrEqual(2);
    expect(Math.max(...pythonRan)).toBeGreaterThan(Math.min(...byFitloop)); // the two kinds of worker really interleaved
    for (const [i, w] of workers.entries()) {
      expect(w.stdout()).toMatch(new RegExp(`^fitloop: worker \\S+:${w.pid} joined study "${STUDY}" \\(minimize\\) at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${suite.server.port} \\(prefix "${PREFIX}"\\): \\d+ of ${TOTAL} trials finished$`, "m"));
      expect(w.stdout()).toMatch(new RegExp(`^fitloop: worker \\S+:${w.pid} ran ${printed[i]!.length} trials \\(\\d+ complete, \\d+ pruned, 0 failed\\); study "${STUDY}" at \\S+ \\(prefix "${PREFIX}"\\) has \\d+ of ${TOTAL} finished; best: trial \\d+ value `, "m"));
    }
    for (const n of pythonRan) expect(trials[n]!.systemAttrs["fitloop:worker"]).toBeUndefined();

    // finished once: one finishing record per trial in the whole journal
    const finishes = new Map<number, number>();
    for (const r of records) if (r.op_code === 6 && [1, 2, 3].includes(r["state"] as number)) finishes.set(r["trial_id"] as number, (finishes.get(r["trial_id"] as number) ?? 0) + 1);
    expect(trials.map((t) => finishes.get(t.id))).toEqual(trials.map(() => 1));

    // trained once: each fitloop trial's epochs 0..k, once each, by the worker that claimed it
    const epochs = new Map<number, { epoch: number; pid: number }[]>();
    for (const m of readFileSync(epochLog, "utf8").matchAll(/^trial (\d+) retry_of - epoch (\d+) pid (\d+)$/gm)) {
      const list = epochs.get(Number(m[1])) ?? [];
      list.push({ epoch: Number(m[2]), pid: Number(m[3]) });
      epochs.set(Number(m[1]), list);
    }
    expect([...epochs.keys()].sort((a, b) => a - b)).toEqual([...byFitloop].sort((a, b) => a - b));
    for (const n of byFitloop) {
      const t = trials[n]!;
      const run = epochs.get(n)!;
      const reported = Object.keys(t.intermediateValues).length;
      expect(run.map((e) => e.epoch), `trial ${n}`).toEqual([...Array(t.state === "COMPLETE" ? 6 : reported).keys()]);
      expect(new Set(run.map((e) => e.pid)), `trial ${n}`).toEqual(new Set([(t.systemAttrs["fitloop:worker"] as { pid: number }).pid]));
    }
    expect(trials.some((t) => t.state === "PRUNED")).toBe(true); // the fixture's median pruner was obeyed

    // Optuna's view: every trial, with its params and value
    const seen = parsePyJson((await promisify(execFile)(optuna.path!, ["-c", PY_DUMP, suite.server.url, PREFIX, STUDY], { encoding: "utf8", timeout: 30_000 })).stdout) as unknown as { number: number; state: string; value: number | null; params: TrialRecord["params"]; steps: number[] }[];
    expect(seen.map((t) => [t.number, t.state, t.value, t.params, t.steps.length])).toEqual(trials.map((t) => [t.number, t.state, t.value ?? null, t.params, Object.keys(t.intermediateValues).length]));
    for (const w of workers) expect(alive(w.pid)).toBe(false);
    console.log(`${trials.length} trials: fitloop workers ran ${printed.map((p) => p.length).join("/")}, Python ran #${pythonRan.join(", #")}; ${trials.filter((t) => t.state === "PRUNED").length} pruned`);
  }, 60_000);

  it("study show prints the study as a table and as JSON", async () => {
    expect(trials.length).toBeGreaterThanOrEqual(TOTAL); // the study of the test above
    const table = await runCli(["study", "show", "--storage", suite.server.url, "--study", STUDY, "--prefix", PREFIX]);
    const json = await runCli(["study", "show", "--storage", suite.server.url, "--study", STUDY, "--prefix", PREFIX, "--json"]);
    outputs.push(table.stdout, table.stderr, json.stdout, json.stderr);
    expect([table.code, json.code]).toEqual([0, 0]);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(new RegExp(`^study "${STUDY}" \\(minimize\\): ${trials.length} trials: \\d+ complete, \\d+ pruned, 0 failed, 0 running, 0 waiting; ${trials.length} finished$`));
    expect(lines[1]).toMatch(/^best: trial \d+ value \S+$/);
    expect(lines[3]).toMatch(/^\s+#\s+state\s+value\s+lr\s+units\s+steps\s+worker\s+retry of\s+time\s+note$/);
    const rows = lines.slice(4);
    expect(rows).toHaveLength(trials.length);
    for (const [i, row] of rows.entries()) {
      const t = trials[i]!;
      const cells = row.replace(/^\*/, "").trim().split(/\s+/);
      expect(cells.slice(0, 2)).toEqual([String(t.number), t.state]);
      expect(cells[5]).toBe(String(Object.keys(t.intermediateValues).length)); // steps
      const worker = t.systemAttrs["fitloop:worker"] as { host: string; pid: number } | undefined;
      expect(cells[6]).toBe(worker ? `${worker.host}:${worker.pid}` : "-"); // Python's trials: no worker recorded
      expect(cells[7]).toBe("-");
      expect(cells[8]).toMatch(/^\d+\.\d$/);
    }
    expect(rows.filter((r) => r.startsWith("*"))).toHaveLength(1);
    const parsed = JSON.parse(json.stdout) as { study: string; best: number; trials: { number: number; state: string; value: number; params: object; worker: string | null; intermediateValues: object }[] };
    expect(parsed.study).toBe(STUDY);
    expect(parsed.trials.map((t) => [t.number, t.state, t.value, t.params])).toEqual(trials.map((t) => [t.number, t.state, t.value, t.params]));
    expect(parsed.trials.filter((t) => t.worker === null).map((t) => t.number)).toEqual([...pythonRan].sort((a, b) => a - b));
    expect(rows[parsed.best]).toMatch(/^\*/);
  }, 30_000);

  it("the Redis password appears in no output of any process", () => {
    expect(outputs.length).toBeGreaterThan(10);
    const all = outputs.join("\n");
    expect(all).toContain("redis://:***@127.0.0.1");
    for (const secret of [SECRET, encodeURIComponent(SECRET)]) expect(all).not.toContain(secret);
  });
});
