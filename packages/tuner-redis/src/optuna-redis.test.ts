/**
 * Interop both ways on one Redis study, with Debian's python3-optuna (3.1) and python3-redis:
 * Python creates the study and enqueues trials, fitloop runs them (and more), Python's `load_study`
 * sees every trial with its params, values and intermediate values, and Optuna's TPE continues
 * from fitloop's trials; fitloop then reads what Python wrote.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Study, choice, int, logUniform, parsePyJson, tune, type JsonObject } from "@fitloop/recipes";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pythonModule, systemTool } from "../../../scripts/system-tools.js";
import { RedisJournal } from "./index.js";
import { startRedis, type RedisServer } from "./redis-server.fixture.js";

const redisTool = systemTool("redis-server");
const optuna = pythonModule("optuna");
const pyRedis = pythonModule("redis");
const skip = !redisTool.path || !optuna.path || !pyRedis.path;
const run = promisify(execFile);

const PRELUDE = `
import json, sys, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from optuna.storages import JournalStorage, JournalRedisStorage
from optuna.distributions import FloatDistribution, IntDistribution, CategoricalDistribution
url, prefix, name = sys.argv[1], sys.argv[2], sys.argv[3]
storage = JournalStorage(JournalRedisStorage(url, prefix=prefix))
def objective(trial):
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    units = trial.suggest_int("units", 8, 64, step=8)
    act = trial.suggest_categorical("act", ["relu", "tanh"])
    for step in range(3):
        trial.report((lr * 10 - 0.3) ** 2 + units / 640 + step / 100, step)
    return (lr * 10 - 0.3) ** 2 + units / 640 + (act == "tanh") * 0.01
def dump(study):
    print(json.dumps([{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
        "intermediate": {str(k): v for k, v in t.intermediate_values.items()}, "system_attrs": t.system_attrs} for t in study.trials]))
`;

const python = async (code: string, url: string, prefix: string, name: string) => (await run(optuna.path!, ["-c", PRELUDE + code, url, prefix, name], { encoding: "utf8", timeout: 120_000 })).stdout;

interface PyTrial {
  number: number;
  state: string;
  value: number | null;
  params: JsonObject;
  intermediate: { [step: string]: number };
  system_attrs: JsonObject;
}

const space = { lr: logUniform(1e-4, 1e-1), units: int(8, 64, { step: 8 }), act: choice(["relu", "tanh"]) };
const objective = async ({ lr, units, act }: { lr: number; units: number; act: string }, trial: { report(v: number, s: number): Promise<void> }) => {
  for (let step = 0; step < 3; step++) await trial.report((lr * 10 - 0.3) ** 2 + units / 640 + step / 100, step);
  return (lr * 10 - 0.3) ** 2 + units / 640 + (act === "tanh" ? 0.01 : 0);
};

describe.skipIf(skip)(`Optuna and fitloop on one Redis study${redisTool.note}${optuna.note}${pyRedis.note}`, () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis(redisTool.path!, { password: "interop-pw" });
  });
  afterAll(async () => server?.stop());

  it("Python creates and enqueues, fitloop runs them; Python sees every trial and TPE continues; fitloop reads Python's trials", async () => {
    // Python: the study, three enqueued trials, two trials of its own
    await python(
      `
study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
study.enqueue_trial({"lr": 0.03, "units": 16, "act": "relu"})
study.enqueue_trial({"lr": 0.001, "units": 64, "act": "tanh"})
study.enqueue_trial({"lr": 0.05, "units": 8, "act": "relu"})
`,
      server.url,
      "interop",
      "shared",
    );

    const storage = await RedisJournal.connect({ url: server.url, prefix: "interop" });
    try {
      const result = await tune({ study: { storage, name: "shared" }, space, trials: 8, seed: 3, objective });
      expect(result.ran).toHaveLength(8);
      // the enqueued trials first, with their values
      expect(result.ran.slice(0, 3).map((t) => t.params)).toEqual([
        { lr: 0.03, units: 16, act: "relu" },
        { lr: 0.001, units: 64, act: "tanh" },
        { lr: 0.05, units: 8, act: "relu" },
      ]);

      // Python sees them all, then its TPE continues from them
      const seen = parsePyJson(await python(`dump(optuna.load_study(study_name=name, storage=storage))`, server.url, "interop", "shared")) as unknown as PyTrial[];
      expect(seen.map((t) => [t.number, t.state])).toEqual(Array.from({ length: 8 }, (_, i) => [i, "COMPLETE"]));
      for (const t of result.ran) {
        const py = seen[t.number]!;
        expect(py.params).toEqual(t.params);
        expect(py.value).toBe(t.value);
        expect(py.intermediate).toEqual(Object.fromEntries(Object.entries(t.intermediateValues).map(([k, v]) => [k, v])));
      }
      const after = parsePyJson(
        await python(
          `
study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
study.optimize(objective, n_trials=4)
dump(study)
`,
          server.url,
          "interop",
          "shared",
        ),
      ) as unknown as PyTrial[];
      expect(after).toHaveLength(12);
      expect(after.slice(8).every((t) => t.state === "COMPLETE" && Object.keys(t.intermediate).length === 3)).toBe(true);

      // fitloop reads what Python wrote (its json.dumps, its timestamps), as one more study reader would
      const study = await Study.open({ storage, name: "shared", create: false });
      expect(study.trials.map((t) => [t.number, t.state])).toEqual(after.map((t) => [t.number, t.state]));
      for (const py of after.slice(8)) {
        const t = study.trials[py.number]!;
        expect(t.params).toEqual(py.params);
        expect(t.value).toBe(py.value);
        expect(Object.fromEntries(Object.entries(t.intermediateValues))).toEqual(py.intermediate);
      }
      // and goes on: two more trials make 14
      const more = await tune({ study, space, trials: 14, seed: 3, objective });
      expect(more.ran.map((t) => t.number)).toEqual([12, 13]);
      // fitloop never wrote Optuna's pickle
      const keys = await storage.client.keys("interop:*");
      expect(keys.filter((k) => !/^interop:(log_number|log:\d+|fitloop:(append|worker|lock)\S*|snapshot)$/.test(k))).toEqual([]);
    } finally {
      await storage.close();
    }
  }, 120_000);
});
