import { version_wasm } from "@tensorflow/tfjs-backend-wasm";
import os from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { getThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { DEFAULT_THREAD_MIN_FLOPS, kernelFlops, registerWasmKernels, restoreWasmKernels, setSimdMatMulEnabled, setWasmThreadGate, THREADPOOL_ADDRESS, wasmThreadGateEnabled, wasmThreadGateInfo, withWasmThreads } from "./index.js";
import { values } from "./values.fixture.js";
import { expectNoLeaks, useTestBackend } from "../testing.fixture.js";

const rand = (shape: number[], seed: number) => tf.tensor(values(shape.reduce((p, q) => p * q, 1), seed), shape);

const backend = () => tf.engine().backend;
const slot = () => (backend() as unknown as { wasm: { HEAP32: Int32Array } }).wasm.HEAP32[THREADPOOL_ADDRESS >> 2]!;

/** A dense layer's forward and backward, a convolution's forward and both gradients, at two sizes. */
const work = (big: boolean) =>
  tf.tidy(() => {
    const [n, k, c] = big ? [64, 784, 32] : [8, 20, 4];
    const x = rand([n, k], 1);
    const w = rand([k, 64], 2);
    const img = rand([big ? 32 : 2, 16, 16, c], 3) as tf.Tensor4D;
    const f = rand([3, 3, c, 16], 4) as tf.Tensor4D;
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor, i: tf.Tensor, ff: tf.Tensor) => tf.add(tf.sum(tf.relu(tf.matMul(a, b))), tf.sum(tf.conv2d(i as tf.Tensor4D, ff as tf.Tensor4D, 1, "same"))))([x, w, img, f]);
    const fused = tf.fused.matMul({ a: x, b: w, bias: tf.ones([64]), activation: "relu" });
    return [...g, fused].map((t) => [...t.dataSync()]);
  });

describe("threads per operation (tfjs-wasm's thread pool only for large matmuls and convolutions)", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
  });
  afterAll(async () => {
    registerWasmKernels({ tfjsWasmVersion: version_wasm });
    await tf.setBackend("cpu");
  });
  const threaded = (os.availableParallelism?.() ?? os.cpus().length) >= 2;

  it.runIf(threaded)("finds tfjs-wasm's pool, keeps it off for small kernels, lends it to large ones, and the opt-out puts it back", () => {
    expect(getThreadsCount()).toBeGreaterThanOrEqual(2);
    expect(wasmThreadGateEnabled()).toBe(true);
    const info = wasmThreadGateInfo(backend());
    expect(info).toEqual({ poolThreads: getThreadsCount(), gated: true });
    work(false);
    expect(slot()).toBe(0); // at rest: everything runs on the calling thread
    let during = -1;
    withWasmThreads(backend(), DEFAULT_THREAD_MIN_FLOPS, () => void (during = slot()));
    expect(during).toBeGreaterThan(0);
    withWasmThreads(backend(), DEFAULT_THREAD_MIN_FLOPS - 1, () => void (during = slot()));
    expect(during).toBe(0);
    expect(slot()).toBe(0);
    // an error inside a kernel does not leave the pool lent
    expect(() => withWasmThreads(backend(), 1e12, () => {
      throw new Error("kernel failed");
    })).toThrow("kernel failed");
    expect(slot()).toBe(0);
    restoreWasmKernels();
    expect(slot()).toBeGreaterThan(0);
    expect(wasmThreadGateEnabled()).toBe(false);
    registerWasmKernels(); // no version given: the gate stays off (its address is for one tfjs-wasm build)
    expect(wasmThreadGateEnabled()).toBe(false);
    registerWasmKernels({ tfjsWasmVersion: "4.99.0" });
    expect(wasmThreadGateEnabled()).toBe(false);
    registerWasmKernels({ tfjsWasmVersion: version_wasm });
    expect(wasmThreadGateEnabled()).toBe(true);
  });

  it.runIf(threaded)("rests the pool when every matmul runs on fitloop's SIMD GEMM (no other gated kernel in the model)", () => {
    restoreWasmKernels();
    registerWasmKernels({ tfjsWasmVersion: version_wasm });
    setSimdMatMulEnabled(true);
    expect(slot()).toBeGreaterThan(0); // the gate has not run yet: tfjs-wasm's pool is set
    tf.tidy(() => {
      const x = rand([8, 20], 1);
      const w = rand([20, 16], 2);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.relu(tf.add(tf.matMul(a, b), tf.ones([16])))))([x, w]);
      g.forEach((t) => t.dataSync());
    });
    expect(slot()).toBe(0); // small Add/Multiply... now run on the calling thread
  });

  it("gives the same results with the gate off, at the default threshold and with everything threaded", () => {
    const run = (on: boolean, minFlops: number) => {
      setWasmThreadGate(on, { minFlops });
      return [work(false), work(true)];
    };
    // XNNPACK for every matmul: fitloop's SIMD matmul takes those below the threshold, which moves with it
    setSimdMatMulEnabled(false);
    try {
      const stock = run(false, DEFAULT_THREAD_MIN_FLOPS);
      expect(run(true, DEFAULT_THREAD_MIN_FLOPS)).toEqual(stock);
      expect(run(true, 0)).toEqual(stock);
      expect(run(true, Number.POSITIVE_INFINITY)).toEqual(stock);
    } finally {
      setSimdMatMulEnabled(true);
      setWasmThreadGate(true, { minFlops: DEFAULT_THREAD_MIN_FLOPS });
    }
  });

  it("counts the work of matmuls (transposes, batch) and convolutions (padding, stride, depthwise), 0 for other kernels", () => {
    const t = (shape: number[]) => ({ dataId: {}, shape, dtype: "float32" as const });
    expect(kernelFlops("BatchMatMul", { a: t([64, 784]), b: t([784, 256]) }, {})).toBe(2 * 64 * 784 * 256);
    expect(kernelFlops("BatchMatMul", { a: t([3, 784, 64]), b: t([1, 256, 784]) }, { transposeA: true, transposeB: true })).toBe(2 * 3 * 64 * 784 * 256);
    expect(kernelFlops("_FusedMatMul", { a: t([64, 10]), b: t([10, 5]) }, {})).toBe(2 * 64 * 10 * 5);
    expect(kernelFlops("Conv2D", { x: t([64, 13, 13, 32]), filter: t([3, 3, 32, 64]) }, { strides: 1, pad: "valid", dataFormat: "NHWC" })).toBe(2 * 64 * 11 * 11 * 64 * 9 * 32);
    expect(kernelFlops("Conv2D", { x: t([2, 8, 8, 3]), filter: t([3, 3, 3, 4]) }, { strides: 2, pad: "same", dataFormat: "NHWC" })).toBe(2 * 2 * 4 * 4 * 4 * 9 * 3);
    expect(kernelFlops("DepthwiseConv2dNative", { x: t([2, 8, 8, 3]), filter: t([3, 3, 3, 2]) }, { strides: 1, pad: "valid", dataFormat: "NHWC" })).toBe(2 * 2 * 6 * 6 * 6 * 9);
    expect(kernelFlops("Add", { a: t([1000]), b: t([1000]) }, {})).toBe(0);
  });

  it("leaks neither tensors nor wasm buffers", async () => {
    work(true);
    const ids = (backend() as unknown as { numDataIds(): number }).numDataIds();
    await expectNoLeaks(() => work(true), { warmup: 1, iterations: 5 });
    expect((backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(ids);
  });
});
