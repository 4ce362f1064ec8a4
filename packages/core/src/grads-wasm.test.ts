import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { AXPY_TENSORS, LERP_TENSORS, NORM_SCALE, SCALE_TENSORS, SUM_OF_SQUARES, setSimdKernelsEnabled } from "@fitloop/wasm";
import { useBackend } from "./backend.js";
import { axpyTensors, globalNorm, globalNormScale, lerpTensors, scaleTensors, sumOfSquares, AXPY_TENSORS_KERNEL, LERP_TENSORS_KERNEL, NORM_SCALE_KERNEL, SCALE_TENSORS_KERNEL, SUM_OF_SQUARES_KERNEL } from "./grads.js";
import { expectNoLeaks } from "./testing/index.js";

/**
 * Core's gradient helpers on wasm with `@fitloop/wasm`'s fused kernels (FitloopSumOfSquares,
 * FitloopScaleTensors, FitloopNormScale, FitloopAxpyTensors, FitloopLerpTensors) against the same
 * helpers as tfjs ops on cpu.
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
    expect(AXPY_TENSORS).toBe(AXPY_TENSORS_KERNEL);
    expect(LERP_TENSORS).toBe(LERP_TENSORS_KERNEL);
    for (const k of [SUM_OF_SQUARES, SCALE_TENSORS, NORM_SCALE, AXPY_TENSORS, LERP_TENSORS]) {
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
  it.each([
    ["WebAssembly SIMD", true],
    ["the JS loop (SIMD off)", false],
  ])("axpyTensors (also with a scale) and lerpTensors (also with divide) match the cpu backend's ops bit for bit, with %s, the scalar a number or a tensor", async (_, simd) => {
    const others = () => SHAPES.map((s, i) => tf.tensor(values(size(s), 90 + i, 5), s));
    const run = () =>
      tf.tidy(() => {
        const [xs, ys] = [tensors(), others()];
        const all = [axpyTensors(ys, xs, 16), axpyTensors(ys, xs, tf.scalar(-0.37)), axpyTensors(ys, xs, 0.75, { scale: 1 / 48 }), axpyTensors(ys, xs, tf.scalar(3), { scale: 0.1 }), lerpTensors(xs, ys, 1e-3), lerpTensors(xs, ys, tf.scalar(0.75)), lerpTensors(xs, ys, 7, { divide: true }), lerpTensors(xs, ys, tf.scalar(3), { divide: true })];
        return all.map((outs) => outs.map((t) => ({ shape: t.shape, dtype: t.dtype, data: Array.from(t.dataSync()) })));
      });
    await use("cpu");
    const ref = run();
    await use("wasm");
    setSimdKernelsEnabled(simd);
    try {
      expect(run()).toEqual(ref);
    } finally {
      setSimdKernelsEnabled(true);
    }
  });

  it("axpyTensors and lerpTensors on wasm: one kernel dispatch for all tensors, NaN and Infinity propagate, other dtypes and mismatches as on cpu, no leaks", async () => {
    await use("wasm");
    tf.tidy(() => {
      const xs = tensors();
      const ys = tensors();
      expect(Array.from(axpyTensors([tf.tensor1d([1, Number.NaN, 0])], [tf.tensor1d([Number.POSITIVE_INFINITY, 1, 1])], 2)[0]!.dataSync())).toEqual([Number.POSITIVE_INFINITY, Number.NaN, 2]);
      expect(Array.from(lerpTensors([tf.tensor1d([1, 2])], [tf.tensor1d([3, Number.NEGATIVE_INFINITY])], 0.5)[0]!.dataSync())).toEqual([2, Number.NEGATIVE_INFINITY]);
      // int32 pairs: tfjs ops (float32 results, tfjs's type promotion), as on cpu
      const ints = axpyTensors([tf.tensor1d([1, 2], "int32")], [tf.tensor1d([3, 4], "int32")], 2)[0]!;
      expect([ints.dtype, Array.from(ints.dataSync())]).toEqual(["float32", [7, 10]]);
      expect(() => lerpTensors(xs, ys.slice(1), 0.5)).toThrow(/8 tensors in as and 7 in bs/);
      expect(axpyTensors([], [], 1)).toEqual([]);
    });
    const xs = tensors();
    const ys = tensors();
    const s = tf.scalar(0.5);
    const kernels = async (fn: () => tf.Tensor[]) => {
      let out: tf.Tensor[] = [];
      const info = await tf.profile(() => (out = fn()));
      tf.dispose(out);
      return info.kernels.map((k) => k.name);
    };
    expect(await kernels(() => axpyTensors(ys, xs, 2))).toEqual([AXPY_TENSORS]);
    expect(await kernels(() => axpyTensors(ys, xs, s, { scale: 0.25 }))).toEqual([AXPY_TENSORS]);
    expect(await kernels(() => lerpTensors(ys, xs, s, { divide: true }))).toEqual([LERP_TENSORS]);
    // donated: the same bits, written into the donated buffers (the caller disposes those)
    const copies = () => ys.map((y) => tf.add(y, 0));
    for (const [name, fn] of [
      ["axpy", (p: tf.Tensor[], donate: boolean) => axpyTensors(p, xs, 0.5, { scale: 0.25, donate })],
      ["lerp", (p: tf.Tensor[], donate: boolean) => lerpTensors(p, xs, s, { donate })],
    ] as const) {
      const fresh = fn(ys, false);
      const given = copies();
      const ids = given.map((t) => t.dataId);
      const donated = fn(given, true);
      tf.dispose(given);
      donated.forEach((t, i) => {
        expect(t.dataId, `${name} ${i}`).toBe(ids[i]);
        expect(Array.from(t.dataSync()), `${name} ${i}`).toEqual(Array.from(fresh[i]!.dataSync()));
      });
      tf.dispose([...fresh, ...donated]);
    }
    await expectNoLeaks(() => {
      tf.dispose(axpyTensors(ys, xs, 2));
      tf.dispose(axpyTensors(ys, xs, s));
      tf.dispose(axpyTensors(ys, xs, 2, { scale: 0.5 }));
      tf.dispose(lerpTensors(ys, xs, 0.25));
      tf.dispose(lerpTensors(ys, xs, s, { divide: true }));
      const given = ys.map((y) => tf.add(y, 0));
      const out = lerpTensors(given, xs, 0.5, { donate: true });
      tf.dispose(given);
      tf.dispose(out);
    });
    tf.dispose([...xs, ...ys, s]);
  });
});
