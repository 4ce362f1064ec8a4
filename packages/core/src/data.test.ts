import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { arrayData, epochPermutation, tensorData, type Batch } from "./index.js";
import { expectNoLeaks } from "./testing/index.js";

async function collect(source: Iterable<Batch> | AsyncIterable<Batch>): Promise<{ xs: number[][]; ys: number[] }[]> {
  const out: { xs: number[][]; ys: number[] }[] = [];
  for await (const b of source) {
    out.push({ xs: b.xs.arraySync() as number[][], ys: b.ys.arraySync() as number[] });
    tf.dispose([b.xs, b.ys]);
  }
  return out;
}

describe("tensorData", () => {
  const n = 10;
  const xs = tf.tensor2d(Array.from({ length: n }, (_, i) => [i, 10 * i]));
  const ys = tf.tensor1d(Array.from({ length: n }, (_, i) => i % 3));

  it("yields batches in the (seed, epoch) permutation, the last one smaller", async () => {
    const batches = await collect(tensorData(xs, ys, { batchSize: 4, seed: 3 }).batches({ epoch: 2, batchIndex: 0 }));
    const perm = Array.from(epochPermutation(n, 3, 2));
    expect(batches.map((b) => b.xs.length)).toEqual([4, 4, 2]);
    expect(batches.flatMap((b) => b.xs.map((row) => row[0]))).toEqual(perm);
    expect(batches.flatMap((b) => b.ys)).toEqual(perm.map((i) => i % 3));
  });

  it("keeps storage order without shuffle and drops the last batch on request", async () => {
    const batches = await collect(tensorData(xs, ys, { batchSize: 4, shuffle: false, dropLast: true }).batches({ epoch: 0, batchIndex: 0 }));
    expect(batches.map((b) => b.xs.map((r) => r[0]))).toEqual([[0, 1, 2, 3], [4, 5, 6, 7]]);
  });

  it("resuming at {epoch, batchIndex} yields exactly the rest of the uninterrupted epoch", async () => {
    const source = tensorData(xs, ys, { batchSize: 3, seed: 9 });
    const full = await collect(source.batches({ epoch: 4, batchIndex: 0 }));
    const resumed = await collect(source.batches({ epoch: 4, batchIndex: 2 }));
    expect(resumed).toEqual(full.slice(2));
  });

  it("gives the same batches on the wasm backend (host-copy path) as on cpu", async () => {
    const onCpu = await collect(tensorData(xs, ys, { batchSize: 4, seed: 1 }).batches({ epoch: 0, batchIndex: 0 }));
    await import("@tensorflow/tfjs-backend-wasm");
    await tf.setBackend("wasm");
    const xw = tf.tensor2d(xs.arraySync());
    const yw = tf.tensor1d(ys.arraySync());
    const onWasm = await collect(tensorData(xw, yw, { batchSize: 4, seed: 1 }).batches({ epoch: 0, batchIndex: 0 }));
    tf.dispose([xw, yw]);
    await tf.setBackend("cpu");
    expect(onWasm).toEqual(onCpu);
  });

  it("creates and disposes batch tensors without leaks", async () => {
    const source = tensorData(xs, ys, { batchSize: 4, seed: 2 });
    await expectNoLeaks(async (i) => {
      for (const b of source.batches({ epoch: i, batchIndex: 0 }) as Iterable<Batch>) tf.dispose([b.xs, b.ys]);
    });
    const arr = arrayData([{ xs, ys }]);
    await expectNoLeaks(async () => {
      for (const b of arr.batches({ epoch: 0, batchIndex: 0 }) as Iterable<Batch>) tf.dispose([b.xs, b.ys]);
    });
  });
});
