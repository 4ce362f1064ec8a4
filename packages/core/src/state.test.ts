import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { DuplicateStateKeyError, Trainer, historySeries, loadOptimizerStateDict, optimizerStateDict, silentLogger, type Callback, type StateDict } from "./index.js";
import { expectNoLeaks, tinyFixture } from "./testing/index.js";

class Counter implements Callback {
  count = 0;
  constructor(
    readonly name: string,
    readonly stateKey: string,
  ) {}
  afterBatch(): void {
    this.count++;
  }
  stateDict(): StateDict {
    return { count: this.count };
  }
  loadStateDict(s: StateDict): void {
    this.count = s["count"] as number;
  }
}

describe("state contract", () => {
  it("duplicate stateKeys are rejected when the run starts, naming both plugins", async () => {
    const fx = tinyFixture({ samples: 8 });
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [new Counter("a", "counter"), new Counter("b", "counter")] });
    await expect(t.fit({ epochs: 1, train: fx.data(4) })).rejects.toThrow(DuplicateStateKeyError);
    await expect(t.fit({ epochs: 1, train: fx.data(4) })).rejects.toThrow(/"counter" is used by more than one plugin: a, b/);
    fx.dispose();
  });

  it("stateDict collects every stateful plugin; loadStateDict restores them at the next fit", async () => {
    const fx = tinyFixture({ samples: 8 });
    const c1 = new Counter("c", "counter");
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], logger: silentLogger, callbacks: [c1] });
    await t.fit({ epochs: 2, train: fx.data(4) });
    const saved = t.stateDict();
    expect(saved.plugins).toEqual({ counter: { count: 4 } });
    expect(saved.train.cursor).toEqual({ epoch: 2, batchIndex: 0 });
    expect(saved.train.history.map((h) => Object.keys(h.logs).sort())).toEqual([["acc", "loss", "lr"], ["acc", "loss", "lr"]]);

    const c2 = new Counter("c", "counter");
    const t2 = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [c2] });
    t2.loadStateDict(saved);
    const r = await t2.fit({ epochs: 3, train: fx.data(4) });
    expect(c2.count).toBe(6); // 4 restored + 2 batches of the third epoch
    expect(r.state.history.map((h) => h.epoch)).toEqual([0, 1, 2]);
    expect(historySeries(r.state, "loss")).toHaveLength(3);
    fx.dispose();
  });

  for (const [name, make] of [
    ["momentum", () => tf.train.momentum(0.1, 0.9)],
    ["adam", () => tf.train.adam(0.01)],
    ["rmsprop", () => tf.train.rmsprop(0.01, 0.9, 0.5, 1e-7, true)],
    ["adagrad", () => tf.train.adagrad(0.1)],
    ["adadelta", () => tf.train.adadelta(1)],
    ["adamax", () => tf.train.adamax(0.01)],
  ] as const) {
    it(`optimizer slots of ${name} export with their variable order and restore exactly into a new optimizer`, async () => {
      const fx = tinyFixture({ samples: 16 });
      const vars = fx.model.trainableWeights.map((w) => w.read() as tf.Variable);
      const opt = make();
      await new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", logger: silentLogger }).fit({ epochs: 1, train: fx.data(4) });
      const saved = await optimizerStateDict(opt, vars);
      expect(saved.variables.map((v) => v.name)).toEqual(vars.map((v) => v.name));
      for (const family of Object.values(saved.slots)) expect(family.map((s) => s.shape)).toEqual(vars.map((v) => v.shape));
      const copy = make();
      loadOptimizerStateDict(copy, saved, vars);
      expect(await optimizerStateDict(copy, vars)).toEqual(saved);
      // restoring repeatedly does not leak
      await expectNoLeaks(() => loadOptimizerStateDict(copy, saved, vars));
      fx.dispose();
    });
  }

  it("restoring optimizer state into a model with other shapes fails with a clear error", async () => {
    const a = tinyFixture({ samples: 8 });
    const b = tinyFixture({ samples: 8, hidden: 5 });
    const opt = tf.train.adam(0.01);
    await new Trainer({ model: a.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", logger: silentLogger }).fit({ epochs: 1, train: a.data(4) });
    const saved = await optimizerStateDict(opt, a.model.trainableWeights.map((w) => w.read() as tf.Variable));
    expect(() => loadOptimizerStateDict(tf.train.adam(0.01), saved, b.model.trainableWeights.map((w) => w.read() as tf.Variable))).toThrow(/saved variable 0 .* has shape \[4,8\] but .* has \[4,5\]/);
    a.dispose();
    b.dispose();
  });
});
