import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { OptionsError, seeded, tensorData, type Batch, type DataSource } from "@fitloop/core";
import { expectRejected, tinyFixture } from "@fitloop/core/testing";
import { EMA, SWA, batchNormLayers, updateBatchNorm } from "./index.js";
import { expectClose, trainer, weightsOf } from "./helpers.fixture.js";

/** The moving statistics of the model's first BatchNorm layer. */
function bnStats(model: LayersModel): { mean: number[]; variance: number[]; momentum: number } {
  const bn = batchNormLayers(model)[0]!;
  const [mean, variance] = bn.nonTrainableWeights.map((w) => Array.from(w.read().dataSync()));
  return { mean: mean!, variance: variance!, momentum: (bn as unknown as { momentum: number }).momentum };
}

/**
 * By hand: the BatchNorm input of every batch (`before(xs)`), its per-feature mean and biased
 * variance, averaged over the batches in float64.
 */
async function handStats(source: DataSource, epoch: number, before: (xs: tf.Tensor) => tf.Tensor): Promise<{ mean: number[]; variance: number[]; batches: number }> {
  const means: number[][] = [];
  const vars: number[][] = [];
  for await (const b of source.batches({ epoch, batchIndex: 0 }) as AsyncIterable<Batch>) {
    const h = tf.tidy(() => before(b.xs));
    const rows = h.arraySync() as number[][];
    tf.dispose([h, b.xs, b.ys]);
    const m = rows[0]!.map((_, j) => rows.reduce((s, r) => s + r[j]!, 0) / rows.length);
    means.push(m);
    vars.push(m.map((mj, j) => rows.reduce((s, r) => s + (r[j]! - mj) ** 2, 0) / rows.length));
  }
  const avg = (xs: number[][]) => xs[0]!.map((_, j) => xs.reduce((s, x) => s + x[j]!, 0) / xs.length);
  return { mean: avg(means), variance: avg(vars), batches: means.length };
}

/** dense 4-8 relu, Dropout(0.5), BatchNorm, dense 3: dropout before the BatchNorm makes its statistics random. */
function dropoutFirst(): LayersModel {
  return seeded(3, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [4], units: 8, activation: "relu" }));
    m.add(tfl.layers.dropout({ rate: 0.5 }));
    m.add(tfl.layers.batchNormalization({ momentum: 0.8 }));
    m.add(tfl.layers.dense({ units: 3, activation: "softmax" }));
    return m;
  });
}

describe("updateBatchNorm (PyTorch's swa_utils.update_bn)", () => {
  it("the moving statistics become the plain average of the per-batch mean and biased variance; nothing else changes; the momentum is restored", async () => {
    const fx = tinyFixture({ samples: 44, withBatchNormAndDropout: true }); // 5 batches of 8 and one of 4: each counts the same
    const source = fx.data(8);
    const before = weightsOf(fx.model);
    const tensors = tf.memory().numTensors;
    const r = await updateBatchNorm(fx.model, source, { epoch: 3 });
    expect(r).toEqual({ layers: 1, batches: 6, samples: 44 });
    expect(tf.memory().numTensors).toBe(tensors); // the source's batches were disposed
    const hand = await handStats(source, 3, (xs) => fx.model.layers[0]!.apply(xs) as tf.Tensor);
    const got = bnStats(fx.model);
    expectClose([got.mean, got.variance], [hand.mean, hand.variance], 1e-5, "statistics");
    expect(got.momentum).toBe(0.9);
    const after = weightsOf(fx.model);
    const bnIndex = fx.model.weights.findIndex((w) => w.name.includes("moving_mean"));
    after.forEach((w, i) => (i === bnIndex || i === bnIndex + 1 ? expect(w).not.toEqual(before[i]) : expect(w).toEqual(before[i])));
    fx.dispose();
  });

  it("tensors or batches you pass stay yours; maxBatches stops early; a model without BatchNorm reads nothing", async () => {
    const fx = tinyFixture({ samples: 32, withBatchNormAndDropout: true });
    const xs = [tf.slice(fx.xs, 0, 16), tf.slice(fx.xs, 16, 16)];
    const r = await updateBatchNorm(fx.model, xs, { maxBatches: 1 });
    expect(r).toEqual({ layers: 1, batches: 1, samples: 16 });
    expect(xs.every((t) => !t.isDisposed)).toBe(true);
    const h = tf.tidy(() => fx.model.layers[0]!.apply(xs[0]!) as tf.Tensor);
    const { mean, variance } = tf.moments(h, 0);
    expectClose([bnStats(fx.model).mean, bnStats(fx.model).variance], [Array.from(mean.dataSync()), Array.from(variance.dataSync())], 1e-6, "one batch");
    tf.dispose([...xs, h, mean, variance]);
    const plain = tinyFixture({ samples: 16 });
    let read = false;
    const spy: DataSource = { batches: () => ((read = true), []) };
    expect(await updateBatchNorm(plain.model, spy)).toEqual({ layers: 0, batches: 0, samples: 0 });
    expect(read).toBe(false);
    await expectRejected(() => updateBatchNorm(fx.model, spy, { epoch: -1, maxBatches: 0, seed: 0.5 }), OptionsError, "INVALID_OPTIONS", ["epoch", "maxBatches", "seed"], { model: fx.model });
    plain.dispose();
    fx.dispose();
  });

  it("a seed makes a pass with dropout before the BatchNorm reproducible; BatchNorm inside a nested model is found", async () => {
    const inner = dropoutFirst();
    const input = tfl.input({ shape: [4] });
    const outer = tfl.model({ inputs: input, outputs: inner.apply(input) as tfl.SymbolicTensor });
    expect(batchNormLayers(outer)).toHaveLength(1);
    const xs = seeded(1, () => tf.randomNormal([64, 4]));
    const data = tensorData(xs, tf.zeros([64]), { batchSize: 16 });
    const stats: number[][] = [];
    for (const seed of [5, 5, 6]) {
      await updateBatchNorm(outer, data, { seed });
      stats.push(bnStats(inner).mean);
    }
    expect(stats[1]).toEqual(stats[0]);
    expect(stats[2]).not.toEqual(stats[0]);
    tf.dispose(xs);
    outer.dispose();
  });

  it("a source that fails mid-pass: the previous statistics and momentum are back, bit for bit, and no tensor is left", async () => {
    const fx = tinyFixture({ samples: 32, withBatchNormAndDropout: true });
    const good = fx.data(8);
    const failing: DataSource = {
      *batches(cursor) {
        let i = 0;
        for (const b of good.batches(cursor) as Iterable<Batch>) {
          if (i++ === 2) {
            tf.dispose([b.xs, b.ys]);
            throw new Error("disk gone");
          }
          yield b;
        }
      },
    };
    const before = bnStats(fx.model);
    const tensors = tf.memory().numTensors;
    await expect(updateBatchNorm(fx.model, failing)).rejects.toThrow("disk gone");
    expect(bnStats(fx.model)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    fx.dispose();
  });
});

describe("the BatchNorm pass at the end of a run", () => {
  it.each([
    ["SWA (default: the pass at the end)", () => new SWA({ start: 1 })],
    ["EMA with updateBatchNorm: 'end'", () => new EMA({ decay: 0.9, updateBatchNorm: "end" })],
  ])("%s: the model's moving statistics are those of the averaged weights over the training data, in training mode", async (_, make) => {
    const fx = tinyFixture({ samples: 40, withBatchNormAndDropout: true });
    const plugin = make();
    const train = fx.data(8);
    await trainer(fx, [plugin], { seed: 4 }).fit({ epochs: 4, train, validation: fx.data(40) });
    const pass = plugin.lastBatchNormUpdate!;
    expect(pass).toEqual({ layers: 1, batches: 5, samples: 40, epoch: 4 }); // a fresh order: the epoch after the last
    const hand = await handStats(train, pass.epoch, (xs) => fx.model.layers[0]!.apply(xs) as tf.Tensor); // layer 0 holds the average now
    expectClose([bnStats(fx.model).mean, bnStats(fx.model).variance], [hand.mean, hand.variance], 1e-5, "statistics");
    // negative control: the statistics the training left (EMA: averaged) are not those
    const averaged = plugin.averagedWeights()!;
    if (plugin instanceof EMA) expect(averaged.find((w) => w.name.includes("moving_mean"))!.values).not.toEqual(Float32Array.from(bnStats(fx.model).mean));
    fx.dispose();
  });
});
