import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { DataError, OptionsError, type Batch, type DataCursor, type DataSource } from "@fitloop/core";
import { expectNoLeaks } from "@fitloop/core/testing";
import { DataLoader, fromArrays, gaussianNoise, mixUp, randomShift, type ArrayDataset } from "./index.js";

/** `n` samples of 2x2x1 images whose pixels are the sample index (so a batch shows which samples it holds). */
function indexed(n: number, classes = 3): ArrayDataset {
  const x = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) x.fill(i, i * 4, i * 4 + 4);
  return fromArrays({ x, y: Array.from({ length: n }, (_, i) => i % classes), sampleShape: [2, 2, 1], numClasses: classes });
}

/** Reads every batch of `cursor`'s epoch into plain arrays, disposing the tensors as the loop does. */
async function collect(source: DataSource, cursor: DataCursor): Promise<{ xs: number[]; ys: number[]; xShape: number[]; yShape: number[] }[]> {
  const out: { xs: number[]; ys: number[]; xShape: number[]; yShape: number[] }[] = [];
  for await (const b of source.batches(cursor) as AsyncIterable<Batch>) {
    out.push({ xs: Array.from(await b.xs.data()), ys: Array.from(await b.ys.data()), xShape: b.xs.shape, yShape: b.ys.shape });
    tf.dispose([b.xs, b.ys]);
  }
  return out;
}

const firstPixel = (b: { xs: number[] }) => b.xs.filter((_, k) => k % 4 === 0);

describe("DataLoader", () => {
  it("batches every sample once per epoch; dropLast drops the short batch", async () => {
    const ds = indexed(10);
    const keep = new DataLoader(ds, { batchSize: 4, seed: 1 });
    expect(keep.batchesPerEpoch).toBe(3);
    let batches: Awaited<ReturnType<typeof collect>> = [];
    await expectNoLeaks(async () => void (batches = await collect(keep, { epoch: 0, batchIndex: 0 })));
    expect(batches.map((b) => b.xShape)).toEqual([[4, 2, 2, 1], [4, 2, 2, 1], [2, 2, 2, 1]]);
    expect(batches.flatMap(firstPixel).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const drop = new DataLoader(ds, { batchSize: 4, seed: 1, dropLast: true });
    expect(drop.batchesPerEpoch).toBe(2);
    expect((await collect(drop, { epoch: 0, batchIndex: 0 })).length).toBe(2);
  });

  it("labels are class indices [n] (float32, as tfjs losses want), or one-hot [n, K] with oneHot; flatten gives [n, features]", async () => {
    const ds = indexed(6);
    const sparse = (await collect(new DataLoader(ds, { batchSize: 6, shuffle: false }), { epoch: 0, batchIndex: 0 }))[0]!;
    expect(sparse.ys).toEqual([0, 1, 2, 0, 1, 2]);
    expect(sparse.yShape).toEqual([6]);
    const dtype = new DataLoader(ds, { batchSize: 2 }).batch(0, 0);
    expect(dtype.ys.dtype).toBe("float32");
    tf.dispose([dtype.xs, dtype.ys]);
    const b = new DataLoader(ds, { batchSize: 6, shuffle: false, oneHot: true, flatten: true }).batch(0, 0);
    expect(b.ys.dtype).toBe("float32");
    expect(b.ys.shape).toEqual([6, 3]);
    expect(b.xs.shape).toEqual([6, 4]);
    expect(Array.from(await b.ys.data()).slice(0, 6)).toEqual([1, 0, 0, 0, 1, 0]);
    tf.dispose([b.xs, b.ys]);
  });

  it("the order is a permutation of (seed, epoch): same seed same order, new epoch or seed new order", () => {
    const ds = indexed(50);
    const a = new DataLoader(ds, { batchSize: 5, seed: 7 });
    const b = new DataLoader(ds, { batchSize: 5, seed: 7 });
    expect(Array.from(a.order(3))).toEqual(Array.from(b.order(3)));
    expect(Array.from(a.order(3))).not.toEqual(Array.from(a.order(4)));
    expect(Array.from(a.order(0))).not.toEqual(Array.from(new DataLoader(ds, { batchSize: 5, seed: 8 }).order(0)));
    expect(Array.from(a.order(2)).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(Array.from(new DataLoader(ds, { batchSize: 5, shuffle: false }).order(5))).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it("resuming at {epoch, batchIndex} yields exactly the batches of an uninterrupted epoch, augmentation included", async () => {
    const ds = indexed(37);
    const make = () => new DataLoader(ds, { batchSize: 5, seed: 3, transforms: [randomShift({ maxShift: 1 }), gaussianNoise({ std: 0.5 }), mixUp({ alpha: 0.4 })] });
    await expectNoLeaks(async () => {
      const full = await collect(make(), { epoch: 2, batchIndex: 0 });
      expect(full.length).toBe(8);
      for (const start of [1, 4, 7]) {
        // A fresh loader, as in a fresh process after a checkpoint: no replay of earlier batches.
        const resumed = await collect(make(), { epoch: 2, batchIndex: start });
        expect(resumed).toEqual(full.slice(start));
      }
      expect(await collect(make(), { epoch: 2, batchIndex: 8 })).toEqual([]);
    }, { warmup: 1, iterations: 2 });
  });

  it("augmentation is seeded per (seed, epoch, batch): repeatable, and different across epochs", () => {
    const ds = indexed(8);
    const loader = (seed: number) => new DataLoader(ds, { batchSize: 4, seed, shuffle: false, transforms: [gaussianNoise({ std: 1 })] });
    const x = (l: DataLoader, epoch: number) => Array.from(l.hostBatch(epoch, 0).x);
    expect(x(loader(1), 0)).toEqual(x(loader(1), 0));
    expect(x(loader(1), 0)).not.toEqual(x(loader(1), 1));
    expect(x(loader(1), 0)).not.toEqual(x(loader(2), 0));
  });

  it("prefetch 0 gives a plain synchronous iterable with the same batches", async () => {
    const ds = indexed(9);
    const sync = new DataLoader(ds, { batchSize: 4, seed: 5, prefetch: 0 });
    const it = sync.batches({ epoch: 1, batchIndex: 0 });
    expect(Symbol.iterator in it).toBe(true);
    const a = await collect(sync, { epoch: 1, batchIndex: 0 });
    expect(a).toEqual(await collect(new DataLoader(ds, { batchSize: 4, seed: 5, prefetch: 2 }), { epoch: 1, batchIndex: 0 }));
  });

  it("a consumer that stops early leaks nothing (prefetched batches are disposed by return())", async () => {
    const ds = indexed(40);
    const loader = new DataLoader(ds, { batchSize: 4, seed: 1, prefetch: 3 });
    await expectNoLeaks(async () => {
      let seen = 0;
      const base = tf.memory().numTensors;
      for await (const b of loader.batches({ epoch: 0, batchIndex: 0 }) as AsyncIterable<Batch>) {
        tf.dispose([b.xs, b.ys]);
        // a step that yields: the prefetcher fills its queue (polled, so a loaded machine only waits longer)
        for (let i = 0; i < 400 && tf.memory().numTensors < base + 2 * 3; i++) await new Promise((r) => setTimeout(r, 5));
        expect(tf.memory().numTensors).toBe(base + 2 * 3); // three batches prepared ahead, no more
        if (++seen === 3) break;
      }
    });
  });

  it("peekAll holds every sample until batches() is called or dispose()", async () => {
    const ds = indexed(6);
    const loader = new DataLoader(ds, { batchSize: 2, oneHot: true });
    const before = tf.memory().numTensors;
    const all = loader.peekAll();
    expect(all.xs.shape).toEqual([6, 2, 2, 1]);
    expect(all.ys.shape).toEqual([6, 3]);
    expect(loader.peekAll()).toBe(all);
    expect(tf.memory().numTensors).toBe(before + 2);
    await collect(loader, { epoch: 0, batchIndex: 0 });
    expect(tf.memory().numTensors).toBe(before);
    loader.peekAll();
    loader.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("bad options: one OptionsError listing every problem (non-integer seed, typos)", () => {
    const ds = indexed(4);
    let err: unknown;
    try {
      new DataLoader(ds, { batchSize: 0, seed: 1.5, batch_size: 4 } as never);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OptionsError);
    const paths = (err as OptionsError).issues.map((i) => i.path).join(" ");
    expect(paths).toMatch(/batchSize/);
    expect(paths).toMatch(/seed/);
    expect((err as OptionsError).message).toMatch(/batch_size/);
    expect(() => new DataLoader(ds, { batchSize: 5, dropLast: true })).toThrow(DataError);
    expect(new DataLoader(ds, { batchSize: 5 }).batchesPerEpoch).toBe(1); // as Keras: one smaller batch
    expect(() => new DataLoader(ds, { batchSize: 2 }).batches({ epoch: 0, batchIndex: 3 })).toThrow(OptionsError);
    expect(() => new DataLoader(ds, { batchSize: 2 }).hostBatch(0, 2)).toThrow(/\[0, 1\]/);
    expect(() => new DataLoader(ds, { batchSize: 2 }).batches({ epoch: -1, batchIndex: 0 })).toThrow(/cursor.epoch/);
  });

  it("a hand-built data set with inconsistent lengths is refused", () => {
    const bad = { x: new Float32Array(7), y: new Int32Array(2), size: 2, sampleShape: [4], labelShape: [], numClasses: 2 };
    expect(() => new DataLoader(bad, { batchSize: 1 })).toThrow(/x has 7 values/);
  });
});
