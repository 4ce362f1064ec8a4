import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Rng, Trainer, loadOptimizerStateDict, optimizerStateDict, seeded, silentLogger, tensorData, type Callback, type TrainerStateDict } from "./index.js";

function buildModel(seed: number): tfl.LayersModel {
  return seeded(seed, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [6], units: 16, activation: "relu" }));
    m.add(tfl.layers.dropout({ rate: 0.5 }));
    m.add(tfl.layers.dense({ units: 3, activation: "softmax" }));
    return m;
  });
}

function makeData(seed: number) {
  return seeded(seed, () => ({ xs: tf.randomNormal([48, 6]), ys: tf.cast(tf.floor(tf.mul(tf.randomUniform([48]), 3)), "float32") }));
}

async function train(seed: number, epochs: number, optimizer = tf.train.adam(1e-2)) {
  const model = buildModel(100);
  const { xs, ys } = makeData(200);
  const t = new Trainer({ model, optimizer, loss: "sparseCategoricalCrossentropy", seed, logger: silentLogger });
  await t.fit({ epochs, train: tensorData(xs, ys, { batchSize: 8, seed }) });
  const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
  model.dispose();
  tf.dispose([xs, ys]);
  return weights;
}

describe("deterministic mode", () => {
  it("the same seed gives bit-identical weights (data order, dropout masks, initialisers)", async () => {
    const a = await train(5, 3);
    const b = await train(5, 3);
    expect(a).toEqual(b);
  });

  it("a different seed gives different weights (dropout and order really are seeded)", async () => {
    const a = await train(5, 2);
    const c = await train(6, 2);
    expect(a).not.toEqual(c);
  });

  it("seeded() makes initialisers repeatable; Math.random is restored afterwards", () => {
    const original = Math.random;
    const w1 = buildModel(1).getWeights()[0]!.dataSync();
    const w2 = buildModel(1).getWeights()[0]!.dataSync();
    const w3 = buildModel(2).getWeights()[0]!.dataSync();
    expect(Array.from(w1)).toEqual(Array.from(w2));
    expect(Array.from(w1)).not.toEqual(Array.from(w3));
    expect(Math.random).toBe(original);
  });

  it("RNG state saves and restores", () => {
    const r = new Rng(9);
    r.next();
    const saved = r.getState();
    const a = [r.next(), r.next()];
    const r2 = Rng.fromState(saved);
    expect([r2.next(), r2.next()]).toEqual(a);
  });

  it("stopping mid-epoch and resuming (state dict + weights + optimizer slots) is bit-identical to an uninterrupted run", async () => {
    const full = await train(11, 3);

    // Run 1: stop after epoch 1, batch 2 (a stop mid-epoch), save everything.
    const model = buildModel(100);
    const { xs, ys } = makeData(200);
    const opt = tf.train.adam(1e-2);
    let saved: TrainerStateDict | undefined;
    const interrupt: Callback = {
      name: "interrupt",
      afterBatch: (ctx) => {
        if (ctx.state.epoch !== 1 || ctx.state.batchIndex !== 2) return;
        ctx.requestStop("interrupt");
        saved = t1.stateDict();
      },
    };
    const t1 = new Trainer({ model, optimizer: opt, loss: "sparseCategoricalCrossentropy", seed: 11, logger: silentLogger, callbacks: [interrupt] });
    await t1.fit({ epochs: 3, train: tensorData(xs, ys, { batchSize: 8, seed: 11 }) });
    const vars = () => model.trainableWeights.map((w) => w.read() as tf.Variable);
    const optState = await optimizerStateDict(opt, vars());
    const weights = model.getWeights().map((w) => ({ values: Float32Array.from(w.dataSync()), shape: w.shape }));
    model.dispose();
    expect(saved!.train.cursor).toEqual({ epoch: 1, batchIndex: 3 }); // the next batch to run
    const resumeState = saved!;

    // Run 2: a new model and optimizer, as in a fresh process.
    const model2 = buildModel(999);
    model2.setWeights(weights.map((w) => tf.tensor(w.values, w.shape)));
    const opt2 = tf.train.adam(1e-2);
    loadOptimizerStateDict(opt2, optState, model2.trainableWeights.map((w) => w.read() as tf.Variable));
    const t2 = new Trainer({ model: model2, optimizer: opt2, loss: "sparseCategoricalCrossentropy", seed: 0, logger: silentLogger });
    t2.loadStateDict(resumeState);
    await t2.fit({ epochs: 3, train: tensorData(xs, ys, { batchSize: 8, seed: 11 }) });
    const resumed = model2.getWeights().map((w) => Array.from(w.dataSync()));
    expect(resumed).toEqual(full);
    model2.dispose();
    tf.dispose([xs, ys]);
  });
});
