/**
 * The tuner on a small real problem: an MLP on 1,000 real MNIST digits (the embedded set), Adam,
 * three epochs with early stopping, validation loss on 500 other digits. Random search over a
 * log-uniform learning rate (16 trials, median pruning after the first epoch) against a grid of 8
 * learning rates from 1e-4 to 1: the search's best learning rate is within 3x of the grid's best.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, seeded, silentLogger, tensorData, useBackend } from "@fitloop/core";
import { loadEmbeddedMnist } from "@fitloop/datasets/node";
import { EarlyStopping } from "@fitloop/early-stopping";
import { MemoryJournal, TrialReporter, logUniform, medianPruner, studySummary, tune, type Trial } from "./index.js";

/** Every `stride`-th digit from `offset`: the files are sorted by class, so this keeps the classes balanced. */
function digits(offset: number, stride: number) {
  const ds = loadEmbeddedMnist();
  const idx: number[] = [];
  for (let i = offset; i < ds.size; i += stride) idx.push(i);
  const x = new Float32Array(idx.length * 784);
  idx.forEach((j, k) => x.set(ds.x.subarray(j * 784, (j + 1) * 784), k * 784));
  return { xs: tf.tensor2d(x, [idx.length, 784]), ys: tf.tensor1d(idx.map((j) => ds.y[j]!)) };
}

describe("learning-rate search on MNIST digits", () => {
  // wasm: ~9x faster than cpu for this MLP here, and the same losses to 3 decimals
  beforeAll(async () => void (await useBackend("wasm")));

  it("16 random trials find a learning rate within 3x of the best of an 8-point grid", async () => {
    const train = digits(0, 10);
    const val = digits(5, 20);
    /** Best validation loss of a 3-epoch run (early stopping keeps the best epoch). */
    const run = async (lr: number, seed: number, trial?: Trial) => {
      const model = seeded(seed, () => {
        const m = tfl.sequential();
        m.add(tfl.layers.dense({ inputShape: [784], units: 32, activation: "relu" }));
        m.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
        return m;
      });
      const early = new EarlyStopping({ monitor: "val_loss", patience: 1 });
      const trainer = new Trainer({ model, optimizer: tf.train.adam(lr), loss: "sparseCategoricalCrossentropy", seed, logger: silentLogger, callbacks: trial ? [early, new TrialReporter(trial)] : [early] });
      await trainer.fit({ epochs: 3, train: tensorData(train.xs, train.ys, { batchSize: 50, seed }), validation: tensorData(val.xs, val.ys, { batchSize: 500 }) });
      model.dispose();
      return early.result.bestValue ?? Number.POSITIVE_INFINITY;
    };

    const grid: { lr: number; loss: number }[] = [];
    for (let i = 0; i < 8; i++) {
      const lr = 10 ** (-4 + (4 * i) / 7);
      grid.push({ lr, loss: await run(lr, 1) });
    }
    const gridBest = grid.reduce((a, b) => (b.loss < a.loss ? b : a));

    const r = await tune({
      study: { storage: new MemoryJournal(), name: "mnist-lr" },
      space: { lr: logUniform(1e-4, 1) },
      trials: 16,
      seed: 1,
      pruner: medianPruner({ startupTrials: 3 }),
      objective: ({ lr }, trial) => run(lr, trial.seed, trial),
    });
    console.log(`grid: ${grid.map((g) => `${g.lr.toExponential(1)} -> ${g.loss.toFixed(3)}`).join(", ")}\n${studySummary(r.study, { sortBy: "value" })}`);
    const found = r.bestParams!.lr;
    expect(Math.abs(Math.log(found / gridBest.lr)), `search ${found}, grid ${gridBest.lr}`).toBeLessThanOrEqual(Math.log(3));
    expect(r.best!.value!).toBeLessThan(gridBest.loss * 1.2);
    expect(r.study.trials.filter((t) => t.state === "PRUNED").length, "pruning stopped some bad learning rates").toBeGreaterThan(0);
    tf.dispose([train.xs, train.ys, val.xs, val.ys]);
  }, 120_000);
});
