import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { values } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { gemmSimd, type EmscriptenWasm } from "./simd/index.js";
import { kernelThreadPool, setKernelThreadsEnabled } from "./kernel-threads.js";
import { splitGemm } from "./wasm-gemm-split.js";
import { useTestBackend } from "../testing.fixture.js";

interface HeapBackend {
  wasm: EmscriptenWasm;
  dataIdMap: { get(id: object): { memoryOffset: number } };
}

describe("splitGemm: fitloop's SIMD GEMM over the kernel threads", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
  });

  it.each([
    ["rows (M >= N)", 288, 700, 64],
    ["columns (M < N)", 64, 300, 784],
    ["ragged rows", 37, 50, 9],
    ["ragged columns", 5, 64, 203],
  ] as const)("splits along %s bit-identically to one call (M=%i K=%i N=%i)", (_what, m, k, n) => {
    expect(kernelThreadPool()?.ready(), "the kernel thread pool runs in Node with the threaded build").toBe(true);
    const backend = tf.backend() as unknown as HeapBackend;
    const gemm = gemmSimd(backend.wasm)!;
    const a = tf.tensor2d(values(m * k, 3), [m, k]);
    const b = tf.tensor2d(values(k * n, 4), [k, n]);
    const split = tf.fill([m, n], Number.NaN);
    const one = tf.zeros([m, n]);
    const p = (t: tf.Tensor): number => backend.dataIdMap.get(t.dataId).memoryOffset;
    const operands = (c: tf.Tensor) => ({ pa: p(a), ars: 4 * k, aks: 4, pb: p(b), ldb: 4 * n, pc: p(c), ldc: 4 * n, m, n, k });
    const parts = splitGemm(gemm, operands(split), 0);
    expect(parts).toBeGreaterThan(1);
    setKernelThreadsEnabled(false);
    try {
      expect(splitGemm(gemm, operands(one), 0)).toBe(1);
    } finally {
      setKernelThreadsEnabled(true);
    }
    expect(Array.from(split.dataSync())).toEqual(Array.from(one.dataSync()));
    const ref = tf.matMul(a, b);
    expectClose(split.dataSync(), ref.dataSync(), "vs tf.matMul", 1e-5);
    tf.dispose([a, b, split, one, ref]);
  });

  it("keeps small products on the calling thread", () => {
    const backend = tf.backend() as unknown as HeapBackend;
    const gemm = gemmSimd(backend.wasm)!;
    const a = tf.ones([8, 8]);
    const c = tf.zeros([8, 8]);
    const p = (t: tf.Tensor): number => backend.dataIdMap.get(t.dataId).memoryOffset;
    expect(splitGemm(gemm, { pa: p(a), ars: 32, aks: 4, pb: p(a), ldb: 32, pc: p(c), ldc: 32, m: 8, n: 8, k: 8 })).toBe(1);
    expect(c.dataSync()[0]).toBe(8);
    tf.dispose([a, c]);
  });
});
