import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER, Trainer, silentLogger, type Callback, type StateDict } from "@fitloop/core";
import { expectNoLeaks, failingPlugins, stateWithPlugins, tinyFixture } from "@fitloop/core/testing";
import { EarlyStopping } from "./index.js";
import { scripted } from "./helpers.fixture.js";

// improves every epoch: a new copy of the best weights every epoch
const FALLING = Array.from({ length: 40 }, (_, i) => 10 - i * 0.1);

describe("no tensor leaks", () => {
  it("a long run with an improvement every epoch keeps exactly one copy of the weights", async () => {
    const fx = tinyFixture({ samples: 16, withBatchNormAndDropout: true });
    const counts: number[] = [];
    // ORDER.FIRST: its afterEpoch runs after EarlyStopping's (after* hooks run in reverse order)
    const counter: Callback = { name: "Counter", order: ORDER.FIRST, afterEpoch: () => void counts.push(tf.memory().numTensors) };
    const es = new EarlyStopping({ monitor: "score", mode: "min", restoreBestWeights: true });
    const t = new Trainer({ model: fx.model, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", callbacks: [es, counter, scripted(FALLING)], logger: silentLogger });
    await t.fit({ epochs: FALLING.length, train: fx.data(8) });
    expect(es.result).toMatchObject({ stopped: false, bestEpoch: FALLING.length - 1 });
    expect(new Set(counts.slice(1)).size).toBe(1); // adam's slots appear in the first epoch
    const copies = fx.model.weights.length;
    es.dispose();
    expect(tf.memory().numTensors).toBe(counts.at(-1)! - copies);
    fx.dispose();
  });

  it("over many fits: one instance reused, or a new one disposed after each", async () => {
    const fx = tinyFixture({ samples: 16, withBatchNormAndDropout: true });
    const opt = tf.train.momentum(0.05, 0.9);
    const reused = new EarlyStopping({ monitor: "score", mode: "min", restoreBestWeights: true, patience: 2 });
    const fitWith = (es: EarlyStopping, values: number[]) =>
      new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [es, scripted(values)], logger: silentLogger }).fit({ epochs: 8, train: fx.data(8), validation: fx.data(16) });
    await expectNoLeaks(() => fitWith(reused, FALLING));
    await expectNoLeaks(() => fitWith(reused, [1, 0.5, 0.7, 0.8, 0.9])); // stops at e3, restores e1
    await expectNoLeaks(async () => {
      const es = new EarlyStopping({ monitor: "score", mode: "min", restoreBestWeights: true });
      await fitWith(es, FALLING);
      es.dispose();
    });
    reused.dispose();
    fx.dispose();
  });

  it("with a throw in every hook of another plugin, on CancelFit, and with bad state", async () => {
    const fx = tinyFixture({ samples: 16, withBatchNormAndDropout: true });
    const opt = tf.train.adam(0.01);
    const fitWith = async (extra: Callback[], state?: StateDict) => {
      const es = new EarlyStopping({ monitor: "score", mode: "min", restoreBestWeights: true, patience: 1 });
      const t = new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [es, scripted([1, 0.5, 0.7, 0.8]), ...extra], logger: silentLogger });
      if (state) t.loadStateDict(stateWithPlugins({ "early-stopping": state }));
      try {
        return await t.fit({ epochs: 3, train: fx.data(8), validation: fx.data(16) });
      } catch {
        return undefined;
      } finally {
        es.dispose();
      }
    };
    await expectNoLeaks(() => fitWith([]));
    // at epoch 1, after EarlyStopping has copied the weights of epoch 0 (beforeFit: before it has any)
    for (const { plugin: failing } of failingPlugins({ when: (ctx) => ctx.state.epoch === 1 || ctx.event === "beforeFit" })) await expectNoLeaks(() => fitWith([failing]), { warmup: 1, iterations: 2 });
    const shapes = fx.model.weights.map((w) => w.shape as number[]);
    const weights = (list: number[][]) => list.map((shape) => ({ shape, values: new Float32Array(shape.reduce((x, y) => x * y, 1)) }));
    const base = { wait: 0, best: 1, bestEpoch: 0, stoppedEpoch: null, stop: null };
    for (const state of [{ bad: true }, { ...base, weights: weights(shapes.slice(1)) }, { ...base, weights: weights(shapes.map((s) => [...s, 1])) }, { ...base, weights: weights(shapes) }]) {
      await expectNoLeaks(() => fitWith([], state as StateDict));
    }
    fx.dispose();
  });
});
