/**
 * The study is Optuna's journal: checked against Debian's python3-optuna (3.1) with the system
 * python. Optuna loads a study fitloop wrote (states, values, params, distributions, NaN/Infinity,
 * attrs, timestamps), fitloop loads one Python wrote and takes a trial Python enqueued, both lock
 * the file the same way, and every line fitloop writes is byte-for-byte Python's `json.dumps`.
 */
import { execFile, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { pythonModule } from "../../../../scripts/system-tools.js";
import { Study, TrialPruned, choice, distributionToJson, int, logUniform, parsePyJson, parseRecord, tune, uniform, type JsonObject, type JsonValue, type TrialRecord } from "./index.js";
import { FileJournal } from "./node.js";

const optuna = pythonModule("optuna");
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "fitloop-optuna-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PRELUDE = `
import json, sys, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from optuna.storages import JournalStorage, JournalFileStorage
from optuna.distributions import distribution_to_json
def storage(path): return JournalStorage(JournalFileStorage(path))
def dump(study):
    trials = [{"number": t.number, "id": t._trial_id, "state": t.state.name, "value": t.value, "params": t.params,
               "distributions": {k: distribution_to_json(d) for k, d in t.distributions.items()},
               "intermediate": {str(k): v for k, v in t.intermediate_values.items()}, "user_attrs": t.user_attrs,
               "system_attrs": t.system_attrs, "start": t.datetime_start.isoformat(timespec="microseconds") if t.datetime_start else None,
               "complete": t.datetime_complete.isoformat(timespec="microseconds") if t.datetime_complete else None} for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    print(json.dumps({"direction": study.direction.name, "best": study.best_trial.number if complete else None, "trials": trials}))
`;

async function python(code: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(optuna.path!, ["-c", PRELUDE + code, ...args], { encoding: "utf8", timeout: 60_000 });
  return stdout;
}

interface PyTrial {
  number: number;
  id: number;
  state: string;
  value: number | null;
  params: JsonObject;
  distributions: { [k: string]: string };
  intermediate: { [k: string]: number };
  user_attrs: JsonObject;
  system_attrs: JsonObject;
  start: string | null;
  complete: string | null;
}
const pyStudy = async (path: string, name: string) => parsePyJson(await python(`dump(optuna.load_study(study_name=sys.argv[2], storage=storage(sys.argv[1])))`, path, name)) as unknown as { direction: string; best: number | null; trials: PyTrial[] };

/** Our trial as Python's dump shows it. */
const asPython = (t: TrialRecord): PyTrial => ({
  number: t.number,
  id: t.id,
  state: t.state,
  value: t.value ?? null,
  params: t.params,
  distributions: Object.fromEntries(Object.entries(t.distributions).map(([k, d]) => [k, distributionToJson(d)])),
  intermediate: Object.fromEntries(Object.entries(t.intermediateValues)),
  user_attrs: t.userAttrs,
  system_attrs: t.systemAttrs,
  start: t.datetimeStart,
  complete: t.datetimeComplete,
});

const space = {
  lr: logUniform(1e-5, 1e-1),
  dropout: uniform(0, 0.5, { step: 0.1 }),
  units: int(32, 256, { step: 32 }),
  layers: int(1, 8, { log: true }),
  act: choice(["relu", "tanh"]),
  odd: choice([true, false, null, 3, 2.5, "ü→😀"]),
};

describe.skipIf(!optuna.path)(`Optuna 3.1 and fitloop share a journal${optuna.note}`, () => {
  it("Optuna loads a study fitloop wrote: states, values, params, distributions, NaN/Infinity, attrs and timestamps as fitloop has them; every line is Python's json.dumps", async () => {
    const path = join(dir, "fitloop-wrote.log");
    const r = await tune({
      study: { storage: new FileJournal(path), name: "fitloop" },
      space,
      trials: 6,
      seed: 11,
      catchErrors: true,
      objective: async (p, t) => {
        if (t.number === 1) {
          await t.report(Number.NaN, 0);
          await t.report(Number.POSITIVE_INFINITY, 1);
          await t.report(Number.NEGATIVE_INFINITY, 2);
        }
        if (t.number === 2) {
          await t.report(0.5, 0);
          await t.report(0.25, 1);
          throw new TrialPruned("worse than the median");
        }
        if (t.number === 3) throw new Error("diverged");
        if (t.number === 4) await t.setUserAttr("odd", { nan: Number.NaN, inf: [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY], text: "ü→😀 \"quoted\"\n" });
        return p.lr * 1000 + p.units;
      },
    });
    const ours = r.study.trials;
    expect(ours.map((t) => t.state)).toEqual(["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "COMPLETE", "COMPLETE"]);
    const py = await pyStudy(path, "fitloop");
    expect(py.direction).toBe("MINIMIZE");
    expect(py.best).toBe(r.best!.number);
    expect(py.trials).toHaveLength(ours.length);
    ours.forEach((t, i) => expect(py.trials[i], `trial ${t.number}`).toEqual(asPython(t)));
    expect(Object.is(py.trials[1]!.intermediate["0"], Number.NaN)).toBe(true);
    expect(py.trials[1]!.intermediate).toEqual({ "0": Number.NaN, "1": Number.POSITIVE_INFINITY, "2": Number.NEGATIVE_INFINITY });
    expect(py.trials[2]!.value).toBe(0.25); // a pruned trial's value: its last intermediate value

    // byte for byte: Python re-dumps each line to the same text
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    const redumped = (await python(`for line in open(sys.argv[1]): print(json.dumps(json.loads(line)))`, path)).trimEnd().split("\n");
    expect(redumped).toEqual(lines);
    expect(lines.join("\n")).toMatch(/"intermediate_value": NaN/);
    expect(lines.join("\n")).toMatch(/"intermediate_value": -Infinity/);
    expect(lines.join("\n")).toContain('\\u00fc\\u2192\\ud83d\\ude00');
  });

  it("fitloop loads a study Python wrote, takes the trial Python enqueued, and a Python worker then continues the same study", async () => {
    const path = join(dir, "python-wrote.log");
    await python(
      `
st = optuna.create_study(study_name="other", storage=storage(sys.argv[1]))  # a second study: ids are per journal, numbers per study
st.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
st = optuna.create_study(study_name="py", storage=storage(sys.argv[1]), direction="maximize")
def objective(t):
    lr = t.suggest_float("lr", 1e-5, 1e-1, log=True); t.suggest_int("units", 32, 256, step=32); t.suggest_categorical("act", ["relu", "tanh"])
    t.report(float("nan"), 0); t.report(float("inf"), 1); t.set_user_attr("note", float("-inf"))
    return lr
st.optimize(objective, n_trials=3)
st.enqueue_trial({"lr": 0.01, "act": "tanh"}, user_attrs={"memo": "try this"})
`,
      path,
    );
    const storage = new FileJournal(path);
    const study = await Study.open({ storage, name: "py" });
    expect(study.direction).toBe("maximize");
    const py = await pyStudy(path, "py");
    expect(study.trials.map(asPython)).toEqual(py.trials);
    expect(study.trials.map((t) => t.id)).toEqual([2, 3, 4, 5]);
    expect(study.trials[3]!.state).toBe("WAITING");

    const seen: { lr: number; act: string; number: number }[] = [];
    const r = await tune({ study, space: { lr: logUniform(1e-5, 1e-1), units: int(32, 256, { step: 32 }), act: choice(["relu", "tanh"]) }, trials: 5, objective: (p, t) => (seen.push({ lr: p.lr, act: p.act, number: t.number }), p.lr) });
    expect(seen[0]).toEqual({ lr: 0.01, act: "tanh", number: 3 });
    expect(r.ran.map((t) => t.number)).toEqual([3, 4]);

    await python(
      `
st = optuna.load_study(study_name="py", storage=storage(sys.argv[1]))
st.optimize(lambda t: t.suggest_float("lr", 1e-5, 1e-1, log=True), n_trials=1)
`,
      path,
    );
    const after = await pyStudy(path, "py");
    expect(after.trials.map((t) => [t.number, t.state])).toEqual([[0, "COMPLETE"], [1, "COMPLETE"], [2, "COMPLETE"], [3, "COMPLETE"], [4, "COMPLETE"], [5, "COMPLETE"]]);
    expect(after.trials[3]).toMatchObject({ params: { lr: 0.01, act: "tanh" }, value: 0.01, user_attrs: { memo: "try this" }, system_attrs: { fixed_params: { lr: 0.01, act: "tanh" } } });
    await study.sync();
    expect(study.trials.map(asPython)).toEqual(after.trials);
    expect(after.best).toBe(study.bestTrial!.number);
  });

  it("one lock: Python and fitloop appending at once interleave whole records, each writer's in order, and a torn tail is cut so Python still reads the file", async () => {
    const path = join(dir, "contention.log");
    new FileJournal(path);
    const n = 150;
    const child = spawn(
      optuna.path!,
      ["-c", `${PRELUDE}\nimport os\ns = JournalFileStorage(sys.argv[1])\nprint("ready", flush=True)\nwhile not os.path.exists(sys.argv[1] + ".go"): pass\nimport time\nfor i in range(${n}):\n    s.append_logs([{"op_code": 3, "worker_id": "py", "study_id": 0, "system_attr": {"i": i}}]); time.sleep(0.002)`, path],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const done = new Promise<number | null>((resolve) => child.on("exit", resolve));
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    const journal = new FileJournal(path);
    writeFileSync(`${path}.go`, ""); // both start now
    // two records per append: they must stay adjacent
    for (let i = 0; i < n; i += 2) {
      await journal.append([0, 1].map((k) => ({ op_code: 3, worker_id: "node", study_id: 0, system_attr: { i: i + k } }) as const));
      await new Promise((resolve) => setTimeout(resolve, 3)); // paced as Python is, so the two really overlap
    }
    expect(await done).toBe(0);
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    expect(lines).toHaveLength(2 * n);
    const records = lines.map((l, i) => parseRecord(l, `line ${i}`));
    const order = (w: string) => records.filter((r) => r.worker_id === w).map((r) => (r["system_attr"] as { i: number }).i);
    expect(order("py")).toEqual([...Array(n).keys()]);
    expect(order("node")).toEqual([...Array(n).keys()]);
    records.forEach((r, k) => {
      if (r.worker_id === "node" && (r["system_attr"] as { i: number }).i % 2 === 0) expect(records[k + 1]!.worker_id).toBe("node");
    });
    const switches = records.filter((r, k) => k > 0 && r.worker_id !== records[k - 1]!.worker_id).length;
    expect(switches, "the writers took turns").toBeGreaterThan(10);

    // a writer dies mid-line: readers skip the torn tail; the next append cuts it, and Python reads every line
    appendFileSync(path, '{"op_code": 3, "worker_id": "dead", "stu');
    expect(await journal.readFrom(0)).toHaveLength(2 * n);
    await journal.append([{ op_code: 3, worker_id: "node", study_id: 0, system_attr: { i: -1 } }]);
    const count = await python(`print(len(JournalFileStorage(sys.argv[1]).read_logs(0)))`, path);
    expect(Number(count)).toBe(2 * n + 1);
  });
});

// keep the JsonValue type import used when the suite is skipped
export type { JsonValue };
