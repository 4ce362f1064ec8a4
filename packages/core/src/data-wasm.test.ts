import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { tensorData, useBackend } from "./index.js";
import { epochPermutation } from "./rng.js";

/**
 * tensorData on wasm cuts batches from one host copy without an allocation per batch (a view in
 * storage order, a reused gather buffer when shuffled): wasm copies a tensor's values into its heap,
 * so every batch must still hold its own rows after later batches reuse the buffer.
 */
beforeAll(async () => {
  await useBackend("wasm");
});

describe("tensorData batches on wasm (reused host buffers)", () => {
  const n = 37;
  const features = 5;
  const x = Float32Array.from({ length: n * features }, (_, i) => i * 0.5 - 3);
  const y = Int32Array.from({ length: n }, (_, i) => (i * 7) % 10);
  const rowsOf = (order: ArrayLike<number>, start: number, end: number): { xs: number[]; ys: number[] } => {
    const xs: number[] = [];
    const ys: number[] = [];
    for (let i = start; i < end; i++) {
      const r = order[i]!;
      for (let f = 0; f < features; f++) xs.push(x[r * features + f]!);
      ys.push(y[r]!);
    }
    return { xs, ys };
  };

  it.each([
    ["shuffled", true],
    ["in storage order", false],
  ])("%s: every batch of an epoch, all kept alive until the end, holds its own rows; a resume mid-epoch gives the same tail", async (_name, shuffle) => {
    const xs = tf.tensor2d(x, [n, features]);
    const ys = tf.tensor1d(y, "int32");
    const data = tensorData(xs, ys, { batchSize: 8, shuffle, seed: 3 });
    const order = shuffle ? epochPermutation(n, 3, 1) : Int32Array.from({ length: n }, (_, i) => i);
    const batches = [...(data.batches({ epoch: 1, batchIndex: 0 }) as Iterable<{ xs: tf.Tensor; ys: tf.Tensor }>)];
    expect(batches).toHaveLength(5);
    batches.forEach((b, k) => {
      const want = rowsOf(order, 8 * k, Math.min(n, 8 * k + 8));
      expect(Array.from(b.xs.dataSync()), `batch ${k} features`).toEqual(want.xs);
      expect(Array.from(b.ys.dataSync()), `batch ${k} labels`).toEqual(want.ys);
      expect(b.ys.dtype).toBe("int32");
    });
    const tail = [...(data.batches({ epoch: 1, batchIndex: 3 }) as Iterable<{ xs: tf.Tensor; ys: tf.Tensor }>)];
    expect(tail.map((b) => Array.from(b.xs.dataSync()))).toEqual(batches.slice(3).map((b) => Array.from(b.xs.dataSync())));
    tf.dispose([xs, ys, ...batches.flatMap((b) => [b.xs, b.ys]), ...tail.flatMap((b) => [b.xs, b.ys])]);
    expect(x[5], "the caller's array is untouched").toBe(-0.5);
  });
});
