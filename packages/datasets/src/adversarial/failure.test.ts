/**
 * Adversarial suite, class "failure paths": a rejected fit, a transform that throws or returns
 * garbage mid-epoch, a stream that fails or is abandoned, a consumer that stops early. Each must
 * fail with a typed error naming the culprit and leave `tf.memory().numTensors` (and the model's
 * weights, when no step ran) unchanged.
 */
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { DataError, FitloopError, OptionsError, ShapeMismatchError, StateError, Trainer, seeded, silentLogger, type Batch, type DataSource } from "@fitloop/core";
import { DataLoader, Normalizer, fromArrays, gaussianNoise, prefetch, randomShift, streamData, toTensors, type BatchTransform, type HostBatch } from "../index.js";
import { drain, expectRefused, expectRejected } from "./harness.fixture.js";

/** 24 samples of 2x2x1 images, 3 classes. */
const images = (allowNaNAt = -1) => {
  const x = Float32Array.from({ length: 24 * 4 }, (_, k) => (k % 7) / 7);
  if (allowNaNAt >= 0) x[allowNaNAt * 4 + 1] = NaN;
  return fromArrays({ x, sampleShape: [2, 2, 1], y: Array.from({ length: 24 }, (_, i) => i % 3), numClasses: 3, allowNonFinite: allowNaNAt >= 0 });
};

function model(inputs: number, units = 3): tfl.LayersModel {
  return seeded(1, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [inputs], units, activation: "softmax" }));
    return m;
  });
}
const weights = (m: tfl.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));


/** A fit on `m`; the trainer and its optimizer (SGD keeps a scalar) are made before the caller counts tensors. */
function fitter(m: tfl.LayersModel): (train: DataSource, validation?: DataSource) => Promise<unknown> {
  const trainer = new Trainer({ model: m, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger });
  return (train, validation) => trainer.fit({ epochs: 1, train, ...(validation ? { validation } : {}) });
}

describe("adversarial / failure paths: a fit whose pre-flight fails", () => {
  it("NaN in the loader's data: refused on the host before any tensor exists; weights unchanged", async () => {
    const m = model(4);
    const w = weights(m);
    const fit = fitter(m);
    const loader = new DataLoader(images(13), { batchSize: 8, flatten: true });
    await expectRejected(() => fit(loader), DataError, "NON_FINITE_INPUT", ["sample 13", "NaN"]);
    expect(weights(m)).toEqual(w);
    m.dispose();
  });

  it("NaN in the validation loader: the train loader's peek is released too", async () => {
    const m = model(4);
    const train = new DataLoader(images(), { batchSize: 8, flatten: true });
    const validation = new DataLoader(images(5), { batchSize: 8, flatten: true, shuffle: false });
    const fit = fitter(m);
    const before = tf.memory().numTensors;
    await expect(fit(train, validation)).rejects.toThrow(/sample 5/);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it("samples of another shape than the model's input: ShapeMismatchError, the peeked tensors are released", async () => {
    const m = model(5);
    const w = weights(m);
    const fit = fitter(m);
    await expectRejected(() => fit(new DataLoader(images(), { batchSize: 8, flatten: true })), ShapeMismatchError, "SHAPE_MISMATCH", ["[24,4]", "[batch,5]"]);
    expect(weights(m)).toEqual(w);
    m.dispose();
  });

  it("labels past the model's classes: LABEL_OUT_OF_RANGE naming the sample, the peeked tensors are released", async () => {
    const m = model(4, 2);
    const fit = fitter(m);
    await expectRejected(() => fit(new DataLoader(images(), { batchSize: 8, flatten: true })), DataError, "LABEL_OUT_OF_RANGE", "sample 2");
    m.dispose();
  });

  it("whatever core does, releasePeek() (or dispose()) gives every peeked tensor back, and the loader still works", async () => {
    const loader = new DataLoader(images(), { batchSize: 8, flatten: true });
    const before = tf.memory().numTensors;
    loader.peekAll();
    loader.peekAll(); // cached: no second copy
    expect(tf.memory().numTensors).toBe(before + 2);
    loader.releasePeek();
    loader.releasePeek(); // idempotent
    expect(tf.memory().numTensors).toBe(before);
    expect(await drain(loader.batches({ epoch: 0, batchIndex: 0 }))).toBe(3);
    expect(tf.memory().numTensors).toBe(before);
  });
});

const throwing = (at: number, error: () => unknown): BatchTransform => ({
  name: "flaky",
  apply(b, ctx) {
    if (ctx.batchIndex === at) throw error();
    return b;
  },
});

describe("adversarial / failure paths: a transform that fails mid-epoch", () => {
  it.each([0, 1, 2, 4])("a foreign throw at batch 2 (prefetch %i): TRANSFORM_FAILED naming the transform and batch, cause kept, nothing leaked", async (depth) => {
    const boom = new RangeError("index out of range");
    const loader = new DataLoader(images(), { batchSize: 4, prefetch: depth, transforms: [randomShift({ maxShift: 1 }), throwing(2, () => boom)] });
    const err = await expectRejected(() => drain(loader.batches({ epoch: 0, batchIndex: 0 })), DataError, "TRANSFORM_FAILED", ['transform "flaky"', "batch 2 of epoch 0", "index out of range"]);
    expect(err.cause).toBe(boom);
    // the loader is not broken: the next epoch runs (until the same batch fails again)
    await expect(drain(loader.batches({ epoch: 1, batchIndex: 3 }))).resolves.toBe(3);
  });

  it("a fitloop error thrown by a transform keeps its own type and code", async () => {
    const loader = new DataLoader(images(), { batchSize: 4, transforms: [throwing(1, () => new OptionsError("flaky", [{ path: "level", message: "too high" }]))] });
    await expectRejected(() => drain(loader.batches({ epoch: 0, batchIndex: 0 })), OptionsError, "INVALID_OPTIONS", ["flaky", "level"]);
  });

  it("a non-Error thrown (a string) is still reported with the transform's name", () => {
    const loader = new DataLoader(images(), { batchSize: 4, transforms: [throwing(0, () => "nope")] });
    expectRefused(() => loader.batch(0, 0), DataError, "TRANSFORM_FAILED", ['transform "flaky"', "nope"]);
  });

  const broken: [string, (b: HostBatch) => HostBatch, string][] = [
    ["returns undefined", () => undefined as unknown as HostBatch, "got undefined"],
    ["drops a sample", (b) => ({ ...b, size: b.size - 1, x: b.x.subarray(0, b.x.length - 4), y: b.y.subarray(1) }), "transforms must keep every sample"],
    ["returns too few features", (b) => ({ ...b, x: b.x.subarray(1) }), "x has 15 values"],
    ["returns a plain array", (b) => ({ ...b, x: Array.from(b.x) as unknown as Float32Array }), "x must be a Float32Array"],
    ["returns labels of the wrong length", (b) => ({ ...b, y: new Int32Array(3) }), "y has 3 values"],
    ["changes the sample shape inconsistently", (b) => ({ ...b, sampleShape: [3, 3, 1] }), "samples of [3, 3, 1] need 36"],
  ];
  it.each(broken)("a transform that %s: TRANSFORM_OUTPUT naming it, before any tensor exists", (_, bad, culprit) => {
    const loader = new DataLoader(images(), { batchSize: 4, transforms: [{ name: "broken", apply: bad }] });
    expectRefused(() => loader.batch(0, 1), DataError, "TRANSFORM_OUTPUT", ['transform "broken"', "batch 1 of epoch 0", culprit]);
  });

  it("a fused first transform (gatherApply) that returns garbage is caught as well", () => {
    const t: BatchTransform = { name: "fused", apply: (b) => b, gatherApply: () => ({ x: new Float32Array(1), y: new Int32Array(4), size: 4, sampleShape: [2, 2, 1], labelShape: [], indices: new Int32Array(4) }) };
    expectRefused(() => new DataLoader(images(), { batchSize: 4, transforms: [t] }).batch(0, 0), DataError, "TRANSFORM_OUTPUT", ['transform "fused"', "x has 1 values"]);
  });

  it("toTensors refuses an inconsistent batch instead of leaking its feature tensor", () => {
    const b: HostBatch = { x: new Float32Array(8), y: new Float32Array(3), size: 2, sampleShape: [4], labelShape: [], indices: new Int32Array(2) };
    expectRefused(() => toTensors(b, false), DataError, "BAD_BATCH", "y has 3 values");
  });

  it("a transform that throws during a Trainer fit: the fit rejects naming it, no tensor is left", async () => {
    const m = model(4);
    const loader = new DataLoader(images(), { batchSize: 4, flatten: true, transforms: [gaussianNoise({ std: 0.01 }), throwing(3, () => new Error("disk gone"))] });
    const fit = fitter(m);
    await fit(new DataLoader(images(), { batchSize: 4, flatten: true })); // warm-up: the optimizer's slots and caches exist
    await expectRejected(() => fit(loader), DataError, "TRANSFORM_FAILED", ['transform "flaky"', "batch 3", "disk gone"]);
    m.dispose();
  });
});

describe("adversarial / failure paths: a normaliser that was never fitted nor restored", () => {
  it("the fit rejects at the first batch with a StateError naming it; no step ran, no tensor is left", async () => {
    const m = model(4);
    const w = weights(m);
    const fit = fitter(m);
    const loader = new DataLoader(images(), { batchSize: 4, flatten: true, transforms: [new Normalizer({ stateKey: "inputs" }).transform()] });
    await expectRejected(() => fit(loader), StateError, "STATE_MISMATCH", ['Normalizer "inputs" is not fitted', "load its state"]);
    expect(weights(m)).toEqual(w);
    m.dispose();
  });
});

describe("adversarial / failure paths: consumers that stop early", () => {
  it.each([1, 2, 4])("a for-await that breaks after one batch (prefetch %i) disposes the prefetched batches", async (depth) => {
    const loader = new DataLoader(images(), { batchSize: 2, prefetch: depth });
    const before = tf.memory().numTensors;
    const it = (loader.batches({ epoch: 0, batchIndex: 0 }) as AsyncIterable<Batch>)[Symbol.asyncIterator]();
    const first = await it.next();
    tf.dispose([first.value.xs, first.value.ys]);
    await new Promise((r) => setTimeout(r, 10)); // let the prefetch fill up
    await it.return!();
    expect(tf.memory().numTensors).toBe(before);
    expect((await it.next()).done).toBe(true); // and it stays finished
    expect(tf.memory().numTensors).toBe(before);
  });

  it("return() before the first next() leaves nothing behind", async () => {
    const loader = new DataLoader(images(), { batchSize: 2, prefetch: 3 });
    const before = tf.memory().numTensors;
    const it = (loader.batches({ epoch: 0, batchIndex: 0 }) as AsyncIterable<Batch>)[Symbol.asyncIterator]();
    await it.return!();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("a stream abandoned early closes its source and disposes what it prefetched", async () => {
    let closed = 0;
    const source = {
      async *open() {
        try {
          for (let i = 0; i < 50; i++) yield { x: [i, i, i], y: i % 2 };
        } finally {
          closed++;
        }
      },
    };
    const before = tf.memory().numTensors;
    await drain(streamData(source, { batchSize: 4, sampleShape: [3], numClasses: 2, prefetch: 3 }).batches({ epoch: 0, batchIndex: 0 }), 2);
    await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("a stream whose source throws mid-epoch rejects with that error, closes nothing twice and leaks nothing", async () => {
    const source = {
      *open() {
        for (let i = 0; i < 50; i++) {
          if (i === 21) throw new Error("connection reset");
          yield { x: [i, i, i], y: i % 2 };
        }
      },
    };
    const before = tf.memory().numTensors;
    await expect(drain(streamData(source, { batchSize: 4, sampleShape: [3], numClasses: 2, prefetch: 2 }).batches({ epoch: 0, batchIndex: 0 }))).rejects.toThrow("connection reset");
    expect(tf.memory().numTensors).toBe(before);
  });

  it("a stream sample with NaN at index 37 fails that batch naming the sample; earlier batches were fine and nothing leaks", async () => {
    const source = { *open() { for (let i = 0; i < 50; i++) yield { x: [i, i === 37 ? NaN : i, i], y: i % 2 }; } };
    await expectRejected(() => drain(streamData(source, { batchSize: 4, sampleShape: [3], numClasses: 2 }).batches({ epoch: 0, batchIndex: 0 })), DataError, "NON_FINITE_INPUT", "sample 37");
  });

  it("prefetch over a source that throws on its very first item rejects once and closes the source", async () => {
    let returned = false;
    const source: Iterator<number> = {
      next: () => {
        throw new Error("first item");
      },
      return: () => ((returned = true), { done: true, value: undefined }),
    };
    const it = prefetch(source, 2, () => undefined);
    await expect(it.next()).rejects.toThrow("first item");
    expect(returned).toBe(true);
    expect((await it.next()).done).toBe(true);
  });

  it("errors are FitloopErrors with stable codes, never bare TypeErrors, for a misused loader", () => {
    const loader = new DataLoader(images(), { batchSize: 4 });
    for (const fn of [() => loader.batch(0, 99), () => loader.hostBatch(-1, 0), () => loader.batches({ epoch: 0, batchIndex: 7 })]) {
      expect(fn).toThrow(FitloopError);
    }
  });
});
