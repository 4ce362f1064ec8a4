import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-wasm";
import { loadOptimizerStateDict, optimizerStateDict, seeded, silentLogger, tensorData, Trainer, useBackend, type Callback, type TrainerStateDict } from "./index.js";
import { kernelThreadPool } from "@fitloop/wasm";

/**
 * Exact resume on the wasm backend with fitloop's kernels and kernel threads (Node): a CNN whose
 * step takes the split paths (im2col conv, blocked/split GEMMs, NHWC im2col, col2im, fused conv +
 * bias + ReLU, BatchNorm and pooling passes over the kernel threads) stopped mid-epoch and resumed
 * into a new model and optimizer gives bit-identical weights to an uninterrupted run.
 */
function buildModel(seed: number): tfl.LayersModel {
  return seeded(seed, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: "relu" }));
    m.add(tfl.layers.batchNormalization({ momentum: 0.9 }));
    m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
    m.add(tfl.layers.conv2d({ filters: 64, kernelSize: 3, activation: "relu" }));
    m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
    m.add(tfl.layers.flatten());
    m.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
    return m;
  });
}

const makeData = () => seeded(7, () => ({ xs: tf.randomUniform([96, 28, 28, 1]), ys: tf.cast(tf.floor(tf.mul(tf.randomUniform([96]), 10)), "float32") }));
const options = (callbacks: Callback[] = []) => ({ loss: "sparseCategoricalCrossentropy" as const, seed: 3, logger: silentLogger, callbacks });

describe("exact resume on wasm with fitloop's kernels and kernel threads", () => {
  beforeAll(async () => {
    await useBackend("wasm");
  });

  it("a mid-epoch stop resumed into a new model and optimizer is bit-identical to an uninterrupted run", async () => {
    expect(kernelThreadPool()?.ready(), "kernel threads run").toBe(true);
    const { xs, ys } = makeData();
    const data = () => tensorData(xs, ys, { batchSize: 32, seed: 3 });

    const fullModel = buildModel(1);
    const pool = kernelThreadPool()!;
    const run = pool.run.bind(pool);
    let splits = 0;
    pool.run = (calls) => (splits++, run(calls));
    try {
      await new Trainer({ model: fullModel, optimizer: tf.train.adam(1e-3), ...options() }).fit({ epochs: 2, train: data() });
    } finally {
      pool.run = run;
    }
    expect(splits, "the step splits work over the kernel threads").toBeGreaterThan(20);
    const full = fullModel.getWeights().map((w) => Array.from(w.dataSync()));
    fullModel.dispose();

    const model = buildModel(1);
    const opt = tf.train.adam(1e-3);
    let saved: TrainerStateDict | undefined;
    const interrupt: Callback = {
      name: "interrupt",
      afterBatch: (ctx) => {
        if (ctx.state.epoch !== 1 || ctx.state.batchIndex !== 0) return;
        ctx.requestStop("interrupt");
        saved = t1.stateDict();
      },
    };
    const t1 = new Trainer({ model, optimizer: opt, ...options([interrupt]) });
    await t1.fit({ epochs: 2, train: data() });
    const optState = await optimizerStateDict(opt, model.trainableWeights.map((w) => w.read() as tf.Variable));
    const weights = model.getWeights().map((w) => ({ values: Float32Array.from(w.dataSync()), shape: w.shape }));
    model.dispose();

    const model2 = buildModel(99);
    model2.setWeights(weights.map((w) => tf.tensor(w.values, w.shape)));
    const opt2 = tf.train.adam(1e-3);
    loadOptimizerStateDict(opt2, optState, model2.trainableWeights.map((w) => w.read() as tf.Variable));
    const t2 = new Trainer({ model: model2, optimizer: opt2, ...options() });
    t2.loadStateDict(saved!);
    await t2.fit({ epochs: 2, train: data() });
    expect(model2.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(full);
    model2.dispose();
    tf.dispose([xs, ys]);
  });
});
