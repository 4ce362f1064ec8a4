import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { NORM_SCALE, SCALE_TENSORS, SUM_OF_SQUARES, setSimdKernelsEnabled } from "@fitloop/wasm";
import { useBackend } from "./backend.js";
import { globalNorm, globalNormScale, scaleTensors, sumOfSquares, NORM_SCALE_KERNEL, SCALE_TENSORS_KERNEL, SUM_OF_SQUARES_KERNEL } from "./grads.js";
import { expectNoLeaks } from "./testing/index.js";

/**
 * Core's gradient helpers on wasm with `@fitloop/wasm`'s fused kernels (FitloopSumOfSquares,
 * FitloopScaleTensors, FitloopNormScale) against the same helpers as tfjs ops on cpu.
 */

/** Deterministic values in [-scale, scale) without touching tfjs's RNG. */
function values(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 31 - 1) * scale;
  }
  return out;
}
const size = (shape: readonly number[]): number => shape.reduce((p, q) => p * q, 1);

/** Max abs error relative to the largest expected magnitude (at least `floor`). */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string, rtol = 1e-5, floor = 1e-6): void {
  expect(actual.length, label).toBe(expected.length);
  let scale = floor;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst / scale, `${label}: max abs error ${worst} vs scale ${scale}`).toBeLessThanOrEqual(rtol);
}

// sizes with and without a tail (not a multiple of 16), a block boundary (1024) and an MLP kernel
const SHAPES = [[784, 256], [256], [7], [1024], [1031], [3, 3, 8, 16], [1], [0]];
const tensors = () => SHAPES.map((s, i) => tf.tensor(values(size(s), 40 + i), s));

async function use(name: "cpu" | "wasm"): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`setBackend(${name}) failed`);
  await tf.ready();
}

describe("fused kernels over many tensors (gradient norms and clipping)", () => {
  beforeAll(async () => {
    await useBackend("wasm");
  });
  afterAll(async () => {
    await use("cpu");
  });

  it("are registered on wasm under the names core looks for, and not on cpu", () => {
    expect(SUM_OF_SQUARES).toBe(SUM_OF_SQUARES_KERNEL);
    expect(SCALE_TENSORS).toBe(SCALE_TENSORS_KERNEL);
    expect(NORM_SCALE).toBe(NORM_SCALE_KERNEL);
    for (const k of [SUM_OF_SQUARES, SCALE_TENSORS, NORM_SCALE]) {
      expect(tf.getKernel(k, "wasm"), k).toBeDefined();
      expect(tf.getKernel(k, "cpu"), k).toBeUndefined();
    }
  });

  it.each([
    ["WebAssembly SIMD", true],
    ["the JS loop (SIMD off)", false],
  ])("sumOfSquares, scaleTensors and globalNorm match the cpu backend's ops, with %s", async (_, simd) => {
    await use("cpu");
    const ref = tf.tidy(() => {
      const xs = tensors();
      return { ss: sumOfSquares(xs).dataSync()[0]!, scaled: scaleTensors(xs, tf.scalar(-0.37)).map((t) => t.dataSync().slice()), norm: globalNorm(Object.fromEntries(xs.map((x, i) => [`x${i}`, x]))).dataSync()[0]! };
    });
    await use("wasm");
    setSimdKernelsEnabled(simd);
    try {
      tf.tidy(() => {
        const xs = tensors();
        expectClose([sumOfSquares(xs).dataSync()[0]!], [ref.ss], "sum of squares", 1e-6);
        const scaled = scaleTensors(xs, tf.scalar(-0.37));
        scaled.forEach((t, i) => {
          expect(t.shape).toEqual(SHAPES[i]);
          expect(Array.from(t.dataSync()), `scaled ${i}`).toEqual(Array.from(ref.scaled[i]!)); // one float32 multiply: bit for bit
        });
        expectClose([globalNorm(Object.fromEntries(xs.map((x, i) => [`x${i}`, x]))).dataSync()[0]!], [ref.norm], "norm", 1e-6);
      });
    } finally {
      setSimdKernelsEnabled(true);
    }
  });

  it("globalNormScale: the same float32 bits as the cpu backend's Sqrt, Maximum and Div of the sum (above, below and at the limit, NaN)", async () => {
    const cases = [0.5, 3, 1e-3, 1e30];
    const grads = () => ({ a: tf.tensor1d([3, -4]), b: tf.tensor2d([[12, 0]]) });
    const nan = () => ({ a: tf.tensor1d([1, Number.NaN]) });
    const read = (g: tf.NamedTensorMap, m: number) => tf.tidy(() => {
      const { norm, scale } = globalNormScale(g, m);
      return [norm.dataSync()[0]!, scale.dataSync()[0]!];
    });
    await use("cpu");
    const ref = [...cases.map((m) => read(grads(), m)), read(nan(), 1), read(grads(), 13)];
    await use("wasm");
    const got = [...cases.map((m) => read(grads(), m)), read(nan(), 1), read(grads(), 13)];
    expect(got).toEqual(ref);
    expect(got[2]![1]).toBeCloseTo(1e-3 / 13, 9);
    expect(got[3]![1]).toBe(1); // below the limit: exactly 1
    expect(got[5]).toEqual([13, 1]); // at the limit
    expect(got[4]![1]).toBeNaN();
  });

  it("propagate NaN and Infinity, leave no tensors behind, and fall back to tfjs ops for other dtypes", async () => {
    await use("wasm");
    tf.tidy(() => {
      expect(sumOfSquares([tf.tensor1d([1, Number.NaN, 2])]).dataSync()[0]).toBeNaN();
      expect(sumOfSquares([tf.fill([100], 1), tf.tensor1d([Number.POSITIVE_INFINITY])]).dataSync()[0]).toBe(Number.POSITIVE_INFINITY);
      expect(Array.from(scaleTensors([tf.tensor1d([1, 2])], tf.scalar(Number.NaN))[0]!.dataSync())).toEqual([Number.NaN, Number.NaN]);
      expect(sumOfSquares([tf.tensor1d([3, 4], "int32")]).dataSync()[0]).toBe(25);
      expect(sumOfSquares([]).dataSync()[0]).toBe(0);
    });
    const xs = tensors();
    const s = tf.scalar(2);
    await expectNoLeaks(() => {
      tf.dispose(sumOfSquares(xs));
      tf.dispose(scaleTensors(xs, s));
      tf.dispose(globalNorm({ a: xs[0]!, b: xs[1]! }));
    });
    tf.dispose([...xs, s]);
  });
});
