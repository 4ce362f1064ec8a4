import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import {
  CancelBatch,
  CancelStep,
  FitloopError,
  OptionsError,
  Trainer,
  loadOptimizerStateDict,
  optimizerStateDict,
  resolveOrder,
  seeded,
  silentLogger,
  tensorData,
  type Callback,
  type ObserverEvent,
  type RunSnapshot,
} from "./index.js";
import { expectNoLeaks, tinyFixture } from "./testing/index.js";

const build = () =>
  seeded(3, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [4], units: 8, activation: "relu" }));
    m.add(tfl.layers.dropout({ rate: 0.3 }));
    m.add(tfl.layers.dense({ units: 3, activation: "softmax" }));
    return m;
  });

describe("resume after a stop in the middle of an epoch, saved at the checkpoint event", () => {
  it("keeps the cursor at the next untrained batch and resumes bit-identically", async () => {
    const fx = tinyFixture({ samples: 32 });
    const data = () => tensorData(fx.xs, fx.ys, { batchSize: 4, seed: 5 });
    const full = build();
    await new Trainer({ model: full, optimizer: tf.train.adam(1e-2), loss: "sparseCategoricalCrossentropy", seed: 1, logger: silentLogger }).fit({ epochs: 2, train: data() });

    const model = build();
    const opt = tf.train.adam(1e-2);
    let saved: { snapshot: RunSnapshot; historyAtSave: number } | undefined;
    const stopper: Callback = { name: "stopper", afterBatch: (ctx) => void (ctx.state.epoch === 0 && ctx.state.batchIndex === 2 && ctx.requestStop("interrupt")) };
    // a stop mid-epoch: the run's last safe point is the batchCheckpoint where the stop was asked for
    const saver: Callback = { name: "saver", batchCheckpoint: async (ctx) => void (ctx.stopRequested && (saved = { snapshot: structuredClone(await ctx.snapshot()), historyAtSave: ctx.state.history.length })) };
    const t = new Trainer({ model, optimizer: opt, loss: "sparseCategoricalCrossentropy", seed: 1, logger: silentLogger, callbacks: [stopper, saver] });
    await t.fit({ epochs: 2, train: data() });
    expect(saved!.snapshot.trainer.train.cursor).toEqual({ epoch: 0, batchIndex: 3 });
    expect(saved!.historyAtSave).toBe(0); // before the partial epoch's validation and record

    const model2 = build();
    const t2 = new Trainer({ model: model2, optimizer: tf.train.adam(1e-2), loss: "sparseCategoricalCrossentropy", seed: 1, logger: silentLogger });
    const r = await t2.fit({ epochs: 2, train: data(), resumeFrom: saved!.snapshot });
    expect(model2.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(full.getWeights().map((w) => Array.from(w.dataSync())));
    expect(r.state.history.map((h) => h.epoch)).toEqual([0, 1]); // the partial record of epoch 0 was replaced
    fx.dispose();
  });
});

describe("optimizer state keeps the hyperparameters", () => {
  it("a learning rate and momentum changed during training are restored", async () => {
    const fx = tinyFixture({ samples: 8 });
    const opt = tf.train.momentum(0.1, 0.9);
    const halve: Callback = { beforeEpoch: (ctx) => void (ctx.hyper.learningRate = 0.05, ctx.hyper.momentum = 0.8) };
    await new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [halve], logger: silentLogger }).fit({ epochs: 1, train: fx.data(4) });
    const vars = fx.model.trainableWeights.map((w) => w.read() as tf.Variable);
    const saved = await optimizerStateDict(opt, vars);
    const fresh = tf.train.momentum(0.1, 0.9);
    loadOptimizerStateDict(fresh, saved, vars);
    expect((await optimizerStateDict(fresh, vars)).hyper).toEqual({ learningRate: 0.05, momentum: 0.8 });
    fx.dispose();
  });
});

describe("contract checks", () => {
  it("replacement gradients must cover the same variables: a typed error names the plugin", async () => {
    const fx = tinyFixture({ samples: 8 });
    const dropOne: Callback = {
      name: "dropOne",
      afterGradients: (ctx) => {
        const [first, ...rest] = Object.keys(ctx.grads!);
        return Object.fromEntries(rest.map((k) => [k, tf.clone(ctx.grads![k]!)])) as tf.NamedTensorMap & { [k: string]: tf.Tensor } & Record<typeof first & string, never>;
      },
    };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [dropOne], logger: silentLogger });
    const err = await t.fit({ epochs: 1, train: fx.data(4) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FitloopError);
    expect((err as FitloopError).code).toBe("INVALID_GRADIENTS");
    expect((err as Error).message).toMatch(/afterGradients of "dropOne" .* missing dense_Dense\d+\/kernel/);
    fx.dispose();
  });

  it("CancelStep from afterLoss skips the step; CancelBatch from beforeEpoch is a typed error naming the plugin", async () => {
    const fx = tinyFixture({ samples: 8 });
    const before = fx.model.getWeights().map((w) => Array.from(w.dataSync()));
    const skipper: Callback = { afterLoss: () => { throw new CancelStep(); } };
    const r = await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [skipper], logger: silentLogger }).fit({ epochs: 1, train: fx.data(4) });
    expect(r.state.step).toBe(0);
    expect(fx.model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);

    const misplaced: Callback = { name: "misplaced", beforeEpoch: () => { throw new CancelBatch(); } };
    const err = await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [misplaced], logger: silentLogger })
      .fit({ epochs: 1, train: fx.data(4) })
      .catch((e: unknown) => e);
    expect((err as FitloopError).code).toBe("CANCEL_OUT_OF_SCOPE");
    expect((err as Error).message).toMatch(/CancelBatch was thrown by "misplaced" in beforeEpoch/);
    fx.dispose();
  });

  it("observers get frozen snapshots: they cannot stop or change the run", async () => {
    const fx = tinyFixture({ samples: 8 });
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger });
    const errors: unknown[] = [];
    t.bus.onObserverError((e) => errors.push(e.error));
    t.on("afterBatch", (e: ObserverEvent) => {
      (e.state as unknown as { epochs: number }).epochs = 0;
      (e.logs as Record<string, number>)["loss"] = -1;
    });
    const r = await t.fit({ epochs: 2, train: fx.data(4) });
    await new Promise((res) => setTimeout(res, 0));
    expect(r.outcome.status).toBe("completed");
    expect(r.state.step).toBe(4);
    expect(errors.length).toBeGreaterThan(0); // writes to frozen objects throw in strict mode, reported
  });

  it("a loss that throws leaks no tensors", async () => {
    const fx = tinyFixture({ samples: 8 });
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: () => { throw new Error("bad loss"); }, logger: silentLogger });
    await expectNoLeaks(async () => {
      await expect(t.fit({ epochs: 1, train: fx.data(4) })).rejects.toThrow("bad loss");
    });
    fx.dispose();
  });

  it("a cycle error names the plugins in the cycle, not one that only depends on it", () => {
    expect(() => resolveOrder([{ name: "C", runsAfter: ["A"] }, { name: "A", runsAfter: ["B"] }, { name: "B", runsAfter: ["A"] }])).toThrow(/cycle among: (A -> B -> A|B -> A -> B)$/);
    expect(() => resolveOrder([{ name: "x", order: Number.NaN }])).toThrow(OptionsError);
  });
});
