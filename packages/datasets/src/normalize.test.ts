import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { StateError, Trainer, seeded, silentLogger, type Callback, type TrainerStateDict } from "@fitloop/core";
import { expectNoLeaks } from "@fitloop/core/testing";
import { DataLoader, Normalizer, fitNormalizer, fromArrays, gaussianBlobs, splitDataset, type ArrayDataset } from "./index.js";

/** Mean and population std of column `j` of rows of `f`, in float64. */
function column(ds: ArrayDataset, j: number): { mean: number; std: number } {
  const f = ds.x.length / ds.size;
  const v = Array.from({ length: ds.size }, (_, i) => ds.x[i * f + j]!);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length) };
}

describe("Normalizer", () => {
  // Validation and test samples are shifted so their statistics differ visibly from train's.
  const blobs = gaussianBlobs({ samples: 600, features: 3, classes: 3, seed: 4 });
  const splits = splitDataset(blobs, { fractions: { train: 0.6, validation: 0.2, test: 0.2 }, seed: 1 });
  const shifted = (ds: ArrayDataset): ArrayDataset => ({ ...ds, x: ds.x.map((v) => v * 3 + 10) });
  const validation = shifted(splits.validation);

  it("statistics come from the training split only", () => {
    const norm = fitNormalizer(splits.train);
    for (let j = 0; j < 3; j++) {
      const t = column(splits.train, j);
      expect(norm.mean[j]).toBeCloseTo(t.mean, 5);
      expect(norm.std[j]).toBeCloseTo(t.std, 5);
      expect(Math.abs(norm.mean[j]! - column(validation, j).mean)).toBeGreaterThan(1);
    }
    expect(norm.count).toBe(splits.train.size);
    // Applied to every split with the training statistics: train becomes N(0, 1), validation does not.
    const trainN = norm.apply(splits.train);
    const valN = norm.apply(validation);
    for (let j = 0; j < 3; j++) {
      expect(column(trainN, j).mean).toBeCloseTo(0, 5);
      expect(column(trainN, j).std).toBeCloseTo(1, 4);
      const expected = (column(validation, j).mean - norm.mean[j]!) / norm.std[j]!;
      expect(column(valN, j).mean).toBeCloseTo(expected, 4);
    }
    expect(splits.train.x).not.toBe(trainN.x); // apply copies
  });

  it("per channel: one mean/std per last axis; global: one for everything", () => {
    // 2x2 images with 2 channels: channel 0 around 10, channel 1 around -5.
    const x = Array.from({ length: 20 }, (_, i) => Array.from({ length: 8 }, (_, k) => (k % 2 === 0 ? 10 + (i % 3) : -5 - (k % 4))));
    const ds = fromArrays({ x, y: new Array(20).fill(0), sampleShape: [2, 2, 2], numClasses: 1 });
    const ch = fitNormalizer(ds, { per: "channel" });
    expect(ch.mean.length).toBe(2);
    expect(ch.mean[0]).toBeCloseTo(10 + (7 * 0 + 7 * 1 + 6 * 2) / 20, 5);
    expect(ch.mean[1]).toBeCloseTo(-7, 5); // -5 - (k % 4) over k = 1, 3, 5, 7
    expect(fitNormalizer(ds, { per: "global" }).mean.length).toBe(1);
  });

  it("a constant feature is centred, not divided by ~0", () => {
    const ds = fromArrays({ x: [[1, 5], [2, 5], [3, 5]], y: [0, 0, 0], numClasses: 1 });
    const n = fitNormalizer(ds);
    expect(n.std[1]).toBe(0);
    expect(Array.from(n.apply(fromArrays({ x: [[2, 6]], y: [0], numClasses: 1 })).x)).toEqual([0, 1]);
  });

  it("stateDict / loadStateDict round-trip; mismatches are StateErrors", () => {
    const a = fitNormalizer(splits.train);
    const b = new Normalizer();
    expect(b.fitted).toBe(false);
    expect(() => b.apply(splits.train)).toThrow(StateError);
    b.loadStateDict(a.stateDict());
    expect(Array.from(b.apply(validation).x)).toEqual(Array.from(a.apply(validation).x));
    expect(() => new Normalizer({ per: "channel" }).loadStateDict(a.stateDict())).toThrow(/per feature/);
    expect(() => b.loadStateDict({ ...a.stateDict(), mean: new Float32Array(2) })).toThrow(StateError);
  });

  it("applyTensor matches apply and does not leak", async () => {
    const n = fitNormalizer(splits.train);
    const xs = tf.tensor(splits.test.x, [splits.test.size, 3]);
    await expectNoLeaks(async () => {
      const out = n.applyTensor(xs);
      const got = await out.data();
      out.dispose();
      const want = n.apply(splits.test).x;
      got.forEach((v, k) => expect(v).toBeCloseTo(want[k]!, 5));
    });
    xs.dispose();
  });

  it("saved with the trainer's checkpoint and restored into a fresh normalizer on resume", async () => {
    const norm = fitNormalizer(splits.train, { stateKey: "inputs" });
    const model = seeded(1, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ inputShape: [3], units: 3, activation: "softmax" }));
      return m;
    });
    // The loader normalises batches with whatever statistics the normalizer holds when the batch is made.
    const train = new DataLoader(splits.train, { batchSize: 60, seed: 1, transforms: [norm.transform()] });
    let saved: TrainerStateDict | undefined;
    const saver: Callback = { name: "saver", epochCheckpoint: () => void (saved = trainer.stateDict()) };
    const trainer = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [norm, saver], logger: silentLogger });
    await expectNoLeaks(() => trainer.fit({ epochs: 1, train }), { warmup: 1, iterations: 2 });
    const state = saved!.plugins["inputs"]!;
    expect(Array.from(state["mean"] as Float32Array)).toEqual(Array.from(norm.mean));

    const fresh = new Normalizer({ stateKey: "inputs" });
    const t2 = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [fresh], logger: silentLogger });
    t2.loadStateDict(saved!);
    await t2.fit({ epochs: 2, train: new DataLoader(splits.train, { batchSize: 60, transforms: [fresh.transform()] }) });
    expect(Array.from(fresh.std)).toEqual(Array.from(norm.std));
    model.dispose();
  });
});
