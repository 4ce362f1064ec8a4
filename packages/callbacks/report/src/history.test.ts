import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER, OptionsError, Trainer, silentLogger, type Callback } from "@fitloop/core";
import { expectNoLeaks, expectRefused, failingPlugins, tinyFixture } from "@fitloop/core/testing";
import { MinMaxSeries, RunHistory } from "./index.js";
import { recordingLogger, shortRun } from "./helpers.fixture.js";

describe("MinMaxSeries: bounded memory that keeps the extremes", () => {
  it("10,000 steps in at most 2 x cap points, every bucket's min and max kept (a single spike survives)", () => {
    const s = new MinMaxSeries(100);
    const values = Array.from({ length: 10_000 }, (_, i) => Math.sin(i / 50) + (i === 7776 ? 50 : 0) - (i === 1233 ? 40 : 0));
    values.forEach((v, i) => s.add(i + 1, v));
    const p = s.points();
    expect(p.x.length).toBeLessThanOrEqual(200);
    expect(p.x.length).toBeGreaterThan(100);
    expect(s.stride).toBe(128); // doubled until 10,000 / stride <= 100
    expect(Math.max(...p.y)).toBe(values[7776]);
    expect(Math.min(...p.y)).toBe(values[1233]);
    expect(p.x[p.y.indexOf(Math.max(...p.y))]).toBe(7777); // at its own step
    for (let i = 1; i < p.x.length; i++) expect(p.x[i]!).toBeGreaterThan(p.x[i - 1]!);
  });

  it("every point while under the cap; non-finite values are counted, not stored", () => {
    const s = new MinMaxSeries(10);
    [1, Number.NaN, 3, Number.POSITIVE_INFINITY, 2].forEach((v, i) => s.add(i + 1, v));
    expect(s.points()).toEqual({ x: [1, 3, 5], y: [1, 3, 2], stride: 1 });
    expect([s.count, s.nonFinite]).toEqual([5, 2]);
    expect(() => new MinMaxSeries(1)).toThrow(RangeError);
  });
});

describe("RunHistory", () => {
  it("records every batch key, the epochs with val_*, the loop's metrics, the configuration and the outcome", async () => {
    const h = new RunHistory({ config: { plugins: "Schedule, Norm, RunHistory" } });
    const r = await shortRun([h], { epochs: 3 });
    const d = h.data();
    expect(Object.keys(d.steps).sort()).toEqual(["acc", "grad_norm", "loss", "lr", "momentum"]);
    expect(d.steps["loss"]!.x).toHaveLength(12);
    expect(d.epochs).toEqual(r.state.history);
    expect(d.epochs[0]!.logs).toHaveProperty("val_acc");
    expect(d.metrics).toEqual(["loss", "acc"]);
    expect(d.batchesPerEpoch).toBe(4);
    expect(d.config).toMatchObject({
      model: { layers: [{ className: "Dense", params: 40, outputShape: "[None,8]" }, { className: "Dense", params: 27 }], params: 67, trainableParams: 67 },
      optimizer: { kind: "adam", className: "Adam", learningRate: 0.05, momentumName: "beta1", config: { beta1: 0.9, beta2: 0.999 } },
      epochs: 3,
      batchSize: 16,
      trainSize: 64,
      validation: true,
      backend: "cpu",
      extra: { plugins: "Schedule, Norm, RunHistory" },
    });
    expect(d.outcome).toMatchObject({ status: "completed", reason: undefined, stopRequests: [] });
    expect(d.outcome!.durationMs).toBeGreaterThan(0);
  });

  it("without a schedule it records the optimizer's own learning rate and momentum per step", async () => {
    const fx = tinyFixture({ samples: 32 });
    const h = new RunHistory();
    await new Trainer({ model: fx.model, optimizer: tf.train.momentum(0.1, 0.9), loss: "sparseCategoricalCrossentropy", callbacks: [h], logger: silentLogger }).fit({ epochs: 2, train: fx.data(8) });
    expect(h.data().steps["lr"]!.y).toEqual(Array(8).fill(0.1));
    expect(h.data().steps["momentum"]!.y).toEqual(Array(8).fill(0.9));
    const off = new RunHistory({ hyperparameters: false });
    await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [off], logger: silentLogger }).fit({ epochs: 1, train: fx.data(8) });
    expect(Object.keys(off.data().steps)).toEqual(["loss"]);
    fx.dispose();
  });

  it("long runs stay bounded: maxPoints buckets per key, the highest loss kept", async () => {
    const fx = tinyFixture({ samples: 64 });
    const h = new RunHistory({ maxPoints: 8 });
    await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.5), loss: "sparseCategoricalCrossentropy", callbacks: [h], logger: silentLogger }).fit({ epochs: 25, train: fx.data(4) }); // 400 steps
    const loss = h.data().steps["loss"]!;
    expect(loss.x.length).toBeLessThanOrEqual(16);
    expect(loss.stride).toBe(64);
    expect(loss.x.at(-1)).toBeGreaterThan(390);
    fx.dispose();
  });

  it("epoch values a monitor logs in its afterEpoch (before this LOG-ordered one's turn ends) are in the record", async () => {
    const h = new RunHistory();
    const monitor: Callback = { name: "Monitor", order: ORDER.MONITOR, afterEpoch: (ctx) => ctx.log("best_so_far", ctx.state.epoch) };
    await shortRun([h, monitor], { epochs: 2 });
    expect(h.data().epochs.map((e) => e.logs["best_so_far"])).toEqual([0, 1]);
  });

  it("a listener that throws is reported once; recording and training go on", async () => {
    const h = new RunHistory();
    h.subscribe(() => {
      throw new Error("listener bug");
    });
    const log = recordingLogger();
    const r = await shortRun([h], { epochs: 2, logger: log });
    expect(r.outcome.status).toBe("completed");
    expect(h.data().steps["loss"]!.x).toHaveLength(8);
    expect(log.lines.filter((l) => l.level === "warn")).toEqual([{ level: "warn", message: "RunHistory: recording failed at beforeFit; training goes on (further errors are not reported)" }]);
  });

  it("bad options: one OptionsError naming each", () => {
    expectRefused(() => new RunHistory({ maxPoints: 1, hyperparameters: "yes", config: { a: {} }, typo: 1 } as never), OptionsError, "INVALID_OPTIONS", ["maxPoints", "hyperparameters", "config", "typo"]);
  });

  it("no tensor growth: recording a run, and on every failure path (a throw in each hook, CancelFit)", async () => {
    const fx = tinyFixture({ samples: 16 });
    const opt = tf.train.adam(0.01);
    const fitWith = (extra: Callback[]) => new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks: [new RunHistory(), ...extra], logger: silentLogger }).fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) });
    await expectNoLeaks(() => fitWith([]), { warmup: 1, iterations: 3 });
    for (const { where, plugin } of failingPlugins()) {
      await expectNoLeaks(() => fitWith([plugin]).catch(() => undefined), { warmup: 1, iterations: 2 }).catch((e: unknown) => {
        throw new Error(`failure in ${where}: ${String(e)}`);
      });
    }
    fx.dispose();
  });
});
