import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER, type Callback } from "@fitloop/core";
import { tinyFixture } from "@fitloop/core/testing";
import { LRMonitor } from "./index.js";
import { batchLogs, trainer, warnings } from "./harness.fixture.js";

/** A schedule that sets the rate before each step and logs nothing (a hand-written one). */
const silentSchedule = (lr: (step: number) => number): Callback => ({ name: "Sched", order: ORDER.SCHEDULE, beforeBatch: (ctx) => void (ctx.hyper.learningRate = lr(ctx.state.step)) });

/** What @fitloop/lr-schedule's Scheduler does per step: set lr and momentum, log both (reduce "last"). */
const loggingSchedule = (lr: (step: number) => number, momentum: (step: number) => number): Callback => ({
  name: "Scheduler",
  order: ORDER.SCHEDULE,
  beforeBatch: (ctx) => {
    ctx.hyper.learningRate = lr(ctx.state.step);
    ctx.hyper.momentum = momentum(ctx.state.step);
    ctx.log("lr", ctx.hyper.learningRate, { reduce: "last" });
    ctx.log("momentum", ctx.hyper.momentum, { reduce: "last" });
  },
});

const pick = (seen: ReturnType<typeof batchLogs>["seen"], key: string) => seen.map((s) => s.logs[key]);

describe("LRMonitor", () => {
  it("logs the rate each step's update uses, from a schedule that logs nothing, and beta1 for Adam; the epoch value is the last step's", async () => {
    const fx = tinyFixture({ samples: 48 });
    const seen = batchLogs();
    const lr = (step: number) => 0.001 * (step + 1);
    const r = await trainer(fx, [new LRMonitor(), silentSchedule(lr), seen], { optimizer: tf.train.adam(0.5, 0.8) }).fit({ epochs: 2, train: fx.data(16) });
    const lrs = pick(seen.seen, "lr");
    expect(lrs).toHaveLength(6);
    lrs.forEach((v, i) => expect(v).toBeCloseTo(lr(i), 12));
    expect(pick(seen.seen, "momentum")).toEqual(Array(6).fill(0.8)); // Adam's beta1
    expect(r.state.history.map((e) => e.logs["lr"])).toEqual([lrs[2], lrs[5]]);
    expect(r.state.history.map((e) => e.logs["momentum"])).toEqual([0.8, 0.8]);
    fx.dispose();
  });

  it("leaves the keys a Scheduler already logged to it (no second owner, no error), and logs the rest", async () => {
    const fx = tinyFixture({ samples: 32 });
    const seen = batchLogs();
    const r = await trainer(fx, [loggingSchedule((s) => 0.01 / (s + 1), (s) => 0.9 - 0.05 * s), new LRMonitor(), seen], { optimizer: tf.train.momentum(0.1, 0.5) }).fit({ epochs: 1, train: fx.data(8) });
    expect(r.outcome.status).toBe("completed");
    pick(seen.seen, "lr").forEach((v, i) => expect(v).toBeCloseTo(0.01 / (i + 1), 12));
    pick(seen.seen, "momentum").forEach((v, i) => expect(v).toBeCloseTo(0.9 - 0.05 * i, 12));

    // a scheduler of the rate only: LRMonitor still logs the momentum
    const seen2 = batchLogs();
    const lrOnly: Callback = { name: "LrOnly", order: ORDER.SCHEDULE, beforeBatch: (ctx) => ctx.log("lr", ctx.hyper.learningRate, { reduce: "last" }) };
    await trainer(fx, [lrOnly, new LRMonitor(), seen2], { optimizer: tf.train.momentum(0.1, 0.5) }).fit({ epochs: 1, train: fx.data(8) });
    expect(pick(seen2.seen, "momentum")).toEqual([0.5, 0.5, 0.5, 0.5]);
    fx.dispose();
  });

  it("a rate changed after a Scheduler logged lr (SWA's lr, set later in beforeBatch): the rate the update uses is logged as lr_applied, only where it differs", async () => {
    const fx = tinyFixture({ samples: 32 });
    const seen = batchLogs();
    const schedule = (s: number) => 0.02 / (s + 1);
    // what @fitloop/weight-averaging's SWA with `lr` does: from its start epoch, set the rate in beforeBatch, after the Scheduler (ORDER.DEFAULT > ORDER.SCHEDULE), logging nothing
    const swa: Callback = { name: "SWA", beforeBatch: (ctx) => void (ctx.state.epoch >= 1 && (ctx.hyper.learningRate = 0.005)) };
    // the rate each update is applied with
    const used: number[] = [];
    const probe: Callback = { name: "Probe", order: ORDER.LAST, beforeUpdate: (ctx) => void used.push(ctx.hyper.learningRate) };
    const r = await trainer(fx, [loggingSchedule(schedule, () => 0.9), swa, new LRMonitor(), probe, seen], { optimizer: tf.train.momentum(0.1, 0.5) }).fit({ epochs: 2, train: fx.data(8) });
    expect(r.outcome.status).toBe("completed");
    expect(used).toEqual([0, 1, 2, 3].map(schedule).concat(Array(4).fill(0.005)));
    // lr stays the Scheduler's (its key); lr_applied is there when the update used another rate
    pick(seen.seen, "lr").forEach((v, i) => expect(v).toBeCloseTo(schedule(i), 12));
    expect(pick(seen.seen, "lr_applied")).toEqual([undefined, undefined, undefined, undefined, 0.005, 0.005, 0.005, 0.005]);
    seen.seen.forEach((s, i) => expect(s.logs["lr_applied"] ?? s.logs["lr"], `batch ${i}`).toBeCloseTo(used[i]!, 12));
    expect(pick(seen.seen, "momentum_applied")).toEqual(Array(8).fill(undefined)); // the momentum was not changed after the Scheduler
    expect(r.state.history.map((e) => e.logs["lr_applied"])).toEqual([undefined, 0.005]);
    fx.dispose();
  });

  it("a change made in beforeStep by a plugin ordered before it is what it logs", async () => {
    const fx = tinyFixture({ samples: 32 });
    const seen = batchLogs();
    const late: Callback = { name: "Late", order: ORDER.DEFAULT, beforeStep: (ctx) => void (ctx.hyper.learningRate = 0.123) };
    await trainer(fx, [new LRMonitor(), late, seen], { optimizer: tf.train.sgd(0.5) }).fit({ epochs: 1, train: fx.data(16) });
    expect(pick(seen.seen, "lr")).toEqual([0.123, 0.123]);
    fx.dispose();
  });

  it("SGD has no momentum; momentum: false logs the rate only", async () => {
    const fx = tinyFixture({ samples: 32 });
    for (const [opt, mon] of [
      [tf.train.sgd(0.05), new LRMonitor()],
      [tf.train.adam(0.05), new LRMonitor({ momentum: false })],
    ] as const) {
      const seen = batchLogs();
      await trainer(fx, [mon, seen], { optimizer: opt }).fit({ epochs: 1, train: fx.data(16) });
      expect(pick(seen.seen, "lr")).toEqual([0.05, 0.05]);
      expect(seen.seen.some((s) => "momentum" in s.logs)).toBe(false);
    }
    fx.dispose();
  });

  it("an optimizer whose rate core cannot read: one warning, nothing logged, training goes on", async () => {
    const fx = tinyFixture({ samples: 32 });
    const vars = fx.model.trainableWeights.map((w) => w.read() as tf.Variable);
    class Plain extends tf.Optimizer {
      applyGradients(grads: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[]): void {
        const map: tf.NamedTensorMap = Array.isArray(grads) ? Object.fromEntries(grads.map((g) => [g.name, g.tensor])) : grads;
        tf.tidy(() => vars.forEach((v) => map[v.name] && v.assign(tf.sub(v, tf.mul(map[v.name]!, 0.1)))));
      }
      getConfig() {
        return {};
      }
      override getClassName() {
        return "Plain";
      }
    }
    const log = warnings();
    const seen = batchLogs();
    const r = await trainer(fx, [new LRMonitor(), seen], { optimizer: new Plain(), logger: log }).fit({ epochs: 2, train: fx.data(16) });
    expect(r.outcome.status).toBe("completed");
    expect(log.lines).toEqual([expect.stringMatching(/^LRMonitor: cannot read the learning rate of Plain \(.*\); lr is not logged$/)]);
    expect(seen.seen.some((s) => "lr" in s.logs || "momentum" in s.logs)).toBe(false);
    fx.dispose();
  });
});
