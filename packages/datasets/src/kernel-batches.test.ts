import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { DataError, Trainer, seeded, silentLogger, useBackend, type Batch } from "@fitloop/core";
import { expectNoLeaks } from "@fitloop/core/testing";
import { AUGMENT_JOIN, AUGMENT_POST } from "./kernel-batches.js";
import { DataLoader, fitNormalizer, fromArrays, gaussianNoise, randomCrop, randomRotation, randomShift, type BatchTransform, type LoaderOptions } from "./index.js";
import { loadEmbeddedMnist } from "./node/index.js";

// Batches made in the background by @fitloop/wasm's FitloopAugmentPost / FitloopAugmentJoin
// (registered by useBackend("wasm"), with its kernel threads) against the host's batches of the
// same loader (`hostBatch`: gather, shift and noise in JS and datasets' own noise kernel).

const digits = loadEmbeddedMnist();

/** 57 synthetic 5x7 RGB images (h != w, 3 channels), 4 classes. */
function rgb() {
  const x = Float32Array.from({ length: 57 * 105 }, (_, k) => ((k * 2654435761) % 1000) / 1000);
  return fromArrays({ x, sampleShape: [5, 7, 3], y: Array.from({ length: 57 }, (_, i) => i % 4), numClasses: 4 });
}

/** Kernels run (by name) while `fn` runs. */
async function kernelsOf(fn: () => Promise<unknown>): Promise<string[]> {
  const info = await tf.profile(async () => void (await fn()));
  return info.kernels.map((k) => k.name);
}

/** Every batch of `epoch` from `batches()` (the background path), checked bit for bit against `hostBatch()`. */
async function expectSameAsHost(loader: DataLoader, epoch: number, from = 0): Promise<number> {
  let b = from;
  for await (const batch of loader.batches({ epoch, batchIndex: from }) as AsyncIterable<Batch>) {
    const host = loader.hostBatch(epoch, b);
    const xs = (await batch.xs.data()) as Float32Array;
    expect(batch.xs.shape[0]).toBe(host.size);
    expect(xs.length).toBe(host.x.length);
    const bad = xs.findIndex((v, i) => !Object.is(v, host.x[i]));
    expect(bad, `epoch ${epoch}, batch ${b}: first differing feature`).toBe(-1);
    const ys = await batch.ys.data();
    expect(Array.from(ys)).toEqual(Array.from(host.y));
    tf.dispose([batch.xs, batch.ys]);
    b++;
  }
  return b - from;
}

describe("DataLoader batches made by the wasm backend's kernel threads", () => {
  beforeAll(async () => {
    await useBackend("wasm");
    expect(tf.getKernel(AUGMENT_POST, "wasm"), "@fitloop/wasm registers the kernels").toBeDefined();
  });
  afterAll(async () => {
    await tf.setBackend("cpu");
  });

  const cases: [string, () => DataLoader][] = [
    ["MNIST, shift + noise with a clip, flattened (the demo's loader)", () => new DataLoader(digits, { batchSize: 64, seed: 3, flatten: true, transforms: [randomShift({ maxShift: 2 }), gaussianNoise({ std: 0.1, clip: [0, 1] })] })],
    ["MNIST, noise only, no clip, 37 per batch (chunks that are not whole groups of eight)", () => new DataLoader(digits, { batchSize: 37, seed: 5, transforms: [gaussianNoise({ std: 0.5 })] })],
    ["RGB 5x7x3, a crop with fill 0.5 and one-hot labels, a short last batch", () => new DataLoader(rgb(), { batchSize: 8, seed: 7, oneHot: true, transforms: [randomCrop({ padding: 3, fill: 0.5 })] })],
    ["RGB 5x7x3, shift by up to 4 (more than the height allows less), then noise", () => new DataLoader(rgb(), { batchSize: 16, seed: 9, transforms: [randomShift({ maxShift: 4 }), gaussianNoise({ std: 2, clip: [-1, 1.5] })] })],
    ["MNIST, the README's recipe: shift, noise, a per-pixel normaliser (constant pixels: invStd 1)", () => new DataLoader(digits, { batchSize: 64, seed: 12, flatten: true, transforms: [randomShift({ maxShift: 2 }), gaussianNoise({ std: 0.05, clip: [0, 1] }), fitNormalizer(digits).transform()] })],
    ["RGB 5x7x3, a per-channel normaliser alone (a plain gather first)", () => new DataLoader(rgb(), { batchSize: 9, seed: 13, transforms: [fitNormalizer(rgb(), { per: "channel" }).transform()] })],
    ["RGB 5x7x3, a crop, then a global normaliser", () => new DataLoader(rgb(), { batchSize: 12, seed: 14, transforms: [randomCrop({ padding: 2 }), fitNormalizer(rgb(), { per: "global" }).transform()] })],
  ];

  it.each(cases)("%s: the same bits as the host, through the kernel", async (_, make) => {
    const loader = make();
    try {
      const names = await kernelsOf(() => expectSameAsHost(loader, 0));
      expect(names.filter((k) => k === AUGMENT_POST)).toHaveLength(loader.batchesPerEpoch);
      expect(names.filter((k) => k === AUGMENT_JOIN)).toHaveLength(loader.batchesPerEpoch);
      expect(await expectSameAsHost(loader, 1)).toBe(loader.batchesPerEpoch);
      // resumed mid-epoch: the same batches as an uninterrupted epoch
      expect(await expectSameAsHost(loader, 1, loader.batchesPerEpoch - 2)).toBe(2);
      // the synchronous batch() too
      const one = loader.batch(2, 1);
      expect(Array.from(await one.xs.data())).toEqual(Array.from(loader.hostBatch(2, 1).x));
      tf.dispose([one.xs, one.ys]);
    } finally {
      loader.dispose();
    }
  });

  it.each([
    ["without kernel threads (every task runs when its batch is finished)", false],
    ["with kernel threads", true],
  ])("two loaders with different noise, iterated in turn (each one's post finishes the other's batch first), %s: the same bits as the host", async (_, threads) => {
    await useBackend("wasm", { kernelThreads: threads as boolean });
    const a = new DataLoader(digits, { batchSize: 50, seed: 21, prefetch: 0, transforms: [randomShift({ maxShift: 1 }), gaussianNoise({ std: 0.1, clip: [0, 1] })] });
    const b = new DataLoader(digits, { batchSize: 30, seed: 22, prefetch: 0, transforms: [gaussianNoise({ std: 0.7 })] });
    const iterators = [a, b].map((loader) => [loader, (loader.batches({ epoch: 0, batchIndex: 0 }) as Iterable<Batch>)[Symbol.iterator]()] as const);
    try {
      for (let k = 0; k < 6; k++) {
        for (const [loader, it] of iterators) {
          const batch = it.next().value as Batch;
          const host = loader.hostBatch(0, k).x;
          const bad = (batch.xs.dataSync() as Float32Array).findIndex((v, i) => !Object.is(v, host[i]));
          expect(bad, `std ${loader === a ? 0.1 : 0.7}, batch ${k}: first differing feature`).toBe(-1);
          tf.dispose([batch.xs, batch.ys]);
        }
      }
    } finally {
      for (const [loader, it] of iterators) {
        it.return?.();
        loader.dispose();
      }
      await useBackend("wasm");
    }
  });

  it("keeps the host path where a transform has no kernel step, or the order is not shift then noise", async () => {
    const host: BatchTransform[][] = [
      [], // a plain gather: as cheap on the host, and no copy of the data set
      [randomRotation({ maxDegrees: 10 })],
      [gaussianNoise({ std: 0.1 }), randomShift({ maxShift: 1 })],
      [randomShift({ maxShift: 1 }), randomShift({ maxShift: 1 })],
      [fitNormalizer(rgb()).transform(), gaussianNoise({ std: 0.1 })], // noise after the normaliser
    ];
    for (const transforms of host) {
      const loader = new DataLoader(rgb(), { batchSize: 8, seed: 1, transforms });
      const names = await kernelsOf(() => expectSameAsHost(loader, 0));
      expect(names).not.toContain(AUGMENT_POST);
      loader.dispose();
    }
  });

  it("leaks nothing: whole epochs, a consumer that stops early, a throw mid-epoch (the data set's copy is no tensor)", async () => {
    const loader = new DataLoader(digits, { batchSize: 64, seed: 1, flatten: true, transforms: [randomShift({ maxShift: 2 }), gaussianNoise({ std: 0.1, clip: [0, 1] })] });
    const before = tf.memory().numTensors;
    const ids = tf.engine().backend.numDataIds();
    const buffers = tf.memory().numDataBuffers;
    await expectNoLeaks(async (i) => {
      let n = 0;
      for await (const b of loader.batches({ epoch: i, batchIndex: 150 }) as AsyncIterable<Batch>) {
        tf.dispose([b.xs, b.ys]);
        if (++n === 3 && i % 2) break; // the next batch was posted: it must be joined and freed
      }
      await expect(
        (async () => {
          for await (const b of loader.batches({ epoch: i, batchIndex: 0 }) as AsyncIterable<Batch>) {
            tf.dispose([b.xs, b.ys]);
            throw new Error("consumer boom");
          }
        })(),
      ).rejects.toThrow("consumer boom");
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.engine().backend.numDataIds(), "every buffer freed, also the jobs' references").toBe(ids);
    expect(tf.memory().numDataBuffers).toBe(buffers);
    loader.dispose();
    // a disposed loader makes a new copy when used again
    expect(await expectSameAsHost(loader, 3, loader.batchesPerEpoch - 2)).toBe(2);
    loader.dispose();
  });

  it("a tf.tidy around the consumer's next() does not free the batch being made meanwhile", async () => {
    const loader = new DataLoader(digits, { batchSize: 64, seed: 6, flatten: true, prefetch: 0, transforms: [randomShift({ maxShift: 2 }), gaussianNoise({ std: 0.1 })] });
    const it = (loader.batches({ epoch: 0, batchIndex: 0 }) as Iterable<Batch>)[Symbol.iterator]();
    const before = tf.memory().numTensors;
    for (let b = 0; b < 4; b++) {
      const sum = tf.tidy(() => {
        const r = it.next();
        expect(r.done).toBe(false);
        return tf.sum(r.value.xs).dataSync()[0]!; // the tidy disposes the batch; batch b + 1 was posted inside it
      });
      expect(sum).toBeCloseTo(loader.hostBatch(0, b).x.reduce((a, v) => a + v, 0), 0);
    }
    it.return!();
    expect(tf.memory().numTensors).toBe(before);
    loader.dispose();
  });

  it("switching to the cpu backend mid-epoch: the rest of the epoch comes from the host, the same bits", async () => {
    const loader = new DataLoader(rgb(), { batchSize: 8, seed: 21, transforms: [randomShift({ maxShift: 2 }), gaussianNoise({ std: 0.3 })] });
    let b = 0;
    try {
      for await (const batch of loader.batches({ epoch: 0, batchIndex: 0 }) as AsyncIterable<Batch>) {
        expect(Array.from(await batch.xs.data()), `batch ${b}`).toEqual(Array.from(loader.hostBatch(0, b).x));
        tf.dispose([batch.xs, batch.ys]);
        if (++b === 2) await tf.setBackend("cpu"); // batch 2 was posted on wasm
      }
      expect(b).toBe(loader.batchesPerEpoch);
    } finally {
      await tf.setBackend("wasm");
    }
    expect(await expectSameAsHost(loader, 1)).toBe(loader.batchesPerEpoch); // back on wasm: the kernel again
    loader.dispose();
  });

  it("a transform that throws while drawing is a DataError naming it; nothing is left behind", async () => {
    const bad: BatchTransform = {
      name: "badNoise",
      apply: (b) => b,
      kernel: {
        kind: "noise",
        step: (ctx) => {
          if (ctx.batchIndex === 2) throw new Error("no draws today");
          return { kind: "noise", std: 0.1, lo: -Infinity, hi: Infinity, states: new Int32Array(16).fill(1) };
        },
      },
    };
    const loader = new DataLoader(rgb(), { batchSize: 8, seed: 1, transforms: [bad] });
    const before = tf.memory().numTensors;
    let seen = 0;
    const run = async () => {
      for await (const b of loader.batches({ epoch: 0, batchIndex: 0 }) as AsyncIterable<Batch>) {
        tf.dispose([b.xs, b.ys]);
        seen++;
      }
    };
    await expect(run()).rejects.toThrow(DataError);
    await expect(run()).rejects.toThrow(/transform "badNoise" threw on batch 2 of epoch 0: no draws today/);
    expect(seen, "batches 0 and 1 of each run were handed out").toBe(4);
    loader.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("a fit over the loader trains to the same weights, bit for bit, with the kernel and on the host", async () => {
    const options: LoaderOptions = { batchSize: 64, seed: 2, flatten: true, transforms: [randomShift({ maxShift: 2 }), gaussianNoise({ std: 0.1, clip: [0, 1] })] };
    const small = fromArrays({ x: digits.x.subarray(0, 640 * 784), sampleShape: [28, 28, 1], y: Array.from(digits.y.subarray(0, 640)), numClasses: 10 });
    const fit = async (): Promise<Float32Array[]> => {
      const model = seeded(1, () => {
        const m = tfl.sequential();
        m.add(tfl.layers.dense({ inputShape: [784], units: 32, activation: "relu" }));
        m.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
        return m;
      });
      const loader = new DataLoader(small, options);
      const trainer = new Trainer({ model, optimizer: tf.train.adam(1e-3), loss: "sparseCategoricalCrossentropy", logger: silentLogger });
      await trainer.fit({ epochs: 2, train: loader });
      const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
      loader.dispose();
      model.dispose();
      return weights;
    };
    const withKernel = await kernelsOf(fit);
    expect(withKernel).toContain(AUGMENT_POST);
    const a = await fit();
    const post = tf.getKernel(AUGMENT_POST, "wasm")!;
    tf.unregisterKernel(AUGMENT_POST, "wasm"); // the loader now makes its batches on the host
    try {
      const b = await fit();
      expect(b.map((w) => Array.from(w))).toEqual(a.map((w) => Array.from(w)));
    } finally {
      tf.registerKernel(post);
    }
  });
});
