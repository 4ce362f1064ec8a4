/**
 * Leases on a real redis-server: a RUNNING trial whose worker holds no lease (dead) is failed and
 * queued again with its parameters, seed and checkpoint directory, as Optuna's
 * RetryFailedTrialCallback writes it; a worker whose own lease expired stops its trial and queues
 * it once; a worker with nothing to claim waits while leased trials run elsewhere.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { OP, Study, TRIAL_STATE, tune, uniform } from "@fitloop/recipes";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemTool } from "../../../scripts/system-tools.js";
import { RedisJournal } from "./index.js";
import { startRedis, type RedisServer } from "./redis-server.fixture.js";

const redisTool = systemTool("redis-server");
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

describe.skipIf(!redisTool.path)(`worker leases${redisTool.note}`, () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis(redisTool.path!);
  });
  afterAll(async () => server?.stop());

  it("a trial left RUNNING by a worker without a live lease is failed, queued again and finished with the same parameters", async () => {
    const storage = await RedisJournal.connect({ url: server.url, prefix: "dead", leaseMs: 600, logger: quiet });
    try {
      const study = await Study.open({ storage, name: "s" });
      // a worker that claimed trial 0 and died: its lease key never existed / expired
      await storage.append([
        study.makeRecord(OP.CREATE_TRIAL, {
          study_id: study.id,
          datetime_start: "2026-12-05T00:00:00.000000",
          state: TRIAL_STATE.RUNNING,
          value: null,
          values: null,
          distributions: { x: '{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.0, "high": 1.0, "log": false}}' },
          params: { x: 0.25 },
          user_attrs: {},
          system_attrs: { "fitloop:seed": 1234, "fitloop:worker": { id: "dead-worker", host: "elsewhere", pid: 1, lease: true }, "fitloop:checkpoint": "/shared/s/trial-0" },
          intermediate_values: {},
        }),
      ]);
      const seen: { x: number; seed: number; dir: string | undefined; retryOf: number | undefined }[] = [];
      const result = await tune({ study, space: { x: uniform(0, 1) }, trials: 2, checkpoints: "/shared", objective: ({ x }, trial) => (seen.push({ x, seed: trial.seed, dir: trial.checkpointDir, retryOf: trial.retryOf }), x) });
      await study.sync();
      const [dead, retry, fresh] = study.trials;
      expect(dead!.state).toBe("FAIL");
      expect(String(dead!.userAttrs["fitloop:fail_reason"])).toMatch(/its worker \(pid 1 on elsewhere\) died while it ran \(its lease expired\)/);
      expect(retry!.state).toBe("COMPLETE");
      expect(retry!.systemAttrs["failed_trial"]).toBe(0);
      expect(retry!.systemAttrs["retry_history"]).toEqual([0]);
      expect(seen[0]).toEqual({ x: 0.25, seed: 1234, dir: "/shared/s/trial-0", retryOf: 0 });
      expect(fresh!.state).toBe("COMPLETE");
      expect(seen[1]!.dir).toBe("/shared/s/trial-2");
      expect(result.ran.map((t) => t.number)).toEqual([1, 2]);
    } finally {
      await storage.close();
    }
  });

  it("a worker whose own lease expired stops its trial, fails it and queues it once; the retry finishes", async () => {
    const storage = await RedisJournal.connect({ url: server.url, prefix: "lost", leaseMs: 600, logger: quiet });
    try {
      let calls = 0;
      const result = await tune({
        study: { storage, name: "s" },
        space: { x: uniform(0, 1) },
        trials: 1,
        objective: async ({ x }, trial) => {
          if (calls++ > 0) return x;
          // cut off: the lease disappears as if the worker had been unreachable past it
          await storage.client.del(...(await storage.client.keys("lost:fitloop:worker:*")));
          await new Promise((resolve) => trial.signal.addEventListener("abort", resolve));
          return 123; // ignored: the trial is failed
        },
      });
      await result.study.sync();
      expect(result.study.trials.map((t) => t.state)).toEqual(["FAIL", "COMPLETE"]);
      expect(String(result.study.trials[0]!.userAttrs["fitloop:fail_reason"])).toMatch(/lease of worker .* expired/);
      expect(result.study.trials[1]!.systemAttrs["retry_history"]).toEqual([0]);
      expect(result.study.trials[1]!.value).toBe(result.study.trials[0]!.params["x"]);
      expect(await storage.client.keys("lost:fitloop:worker:*")).toEqual([]); // released at the end
    } finally {
      await storage.close();
    }
  });

  it("a worker with nothing left to claim waits while a leased trial runs elsewhere, and takes it when that worker dies", async () => {
    const a = await RedisJournal.connect({ url: server.url, prefix: "wait", leaseMs: 600, logger: quiet });
    const b = await RedisJournal.connect({ url: server.url, prefix: "wait", leaseMs: 600, logger: quiet });
    try {
      let release!: () => void;
      const hang = new Promise<void>((r) => (release = r));
      // A takes the only trial and "dies": its lease is deleted and it never renews again
      const aRun = tune({
        study: { storage: a, name: "s" },
        space: { x: uniform(0, 1) },
        trials: 1,
        liveness: { self: a.liveness.self, isAlive: a.liveness.isAlive },
        objective: async () => {
          await hang;
          return 1;
        },
      });
      await sleep(300);
      const bRun = tune({ study: { storage: b, name: "s" }, space: { x: uniform(0, 1) }, trials: 1, objective: ({ x }) => x });
      const result = await bRun;
      release();
      await aRun;
      await result.study.sync();
      expect(result.ran.map((t) => t.number)).toEqual([1]);
      expect(result.study.trials.map((t) => t.state)).toEqual(["FAIL", "COMPLETE"]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
