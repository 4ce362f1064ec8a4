/**
 * bench/gemm.ts's ceiling: the GFLOP/s a product can reach through tf.matMul on this machine with a
 * kernel that costs nothing but its output (and the GEMM's own, without the engine's share and the output's
 * allocation). Measured in the bench's 2-thread child: the cost of
 * allocating an output (`measureAlloc`) and of handing half a product to the kernel worker
 * (`measureHandoff`); the engine's share of a call comes from the bench's 1x1·1x1 product.
 */
import * as tf from "@tensorflow/tfjs-core";
import { kernelThreadPool } from "../packages/wasm/src/index.js";
import type { KernelCall } from "../packages/wasm/src/kernels/kernel-threads.js";
import { gemmSimd, type EmscriptenWasm } from "../packages/wasm/src/kernels/simd/index.js";
import { median } from "./models.js";

/** µs of pool.run with one and with two tiny tasks (none without kernel threads), and of allocating an output. */
export interface HandoffSample {
  one?: number;
  two?: number;
  alloc: number;
}

/** The fixed costs of a tf.matMul call on the 2-thread child, in µs. */
export interface FixedCosts {
  /** The engine's share of every call: a 1x1·1x1 op minus its kernel function. */
  engineUs: number;
  allocUs: number;
  /** pool.run of two tasks minus one (Infinity without kernel threads). */
  handoffUs: number;
}

/** From the 1x1·1x1 product's ms per op and per kernel call, and the child's handoff sample. */
export function fixedCosts(oneByOne: { op: number; kernel: number }, handoff: HandoffSample | undefined): FixedCosts {
  return {
    engineUs: Math.max(0, (oneByOne.op - oneByOne.kernel) * 1000),
    allocUs: handoff?.alloc ?? 0,
    handoffUs: handoff?.one !== undefined && handoff.two !== undefined ? Math.max(0, handoff.two - handoff.one) : Infinity,
  };
}

type Dims = { m: number; n: number; k: number };

/**
 * µs of C[m, n] = A[m, k]·B[k, n]'s arithmetic at best: at the peak on 1 thread, or on 2 plus the
 * handoff, whichever is less, on f32x4 lanes along N (N = 10 fills 10 of 12 lanes).
 */
function arithmeticUs(fixed: FixedCosts, d: Dims, peak1: number, peak2: number): number {
  const flops = 2 * d.m * d.n * d.k;
  const lanes = d.n / (4 * Math.ceil(d.n / 4));
  const at = (gflops: number) => flops / (gflops * lanes * 1e3);
  return Math.min(at(peak1), at(peak2) + fixed.handoffUs);
}

/** GFLOP/s of the product through tf.matMul at best: its FLOPs / (the engine's share + the output's allocation + `arithmeticUs`). */
export function opCeiling(fixed: FixedCosts, d: Dims, peak1: number, peak2: number): number {
  return (2 * d.m * d.n * d.k) / ((fixed.engineUs + fixed.allocUs + arithmeticUs(fixed, d, peak1, peak2)) * 1e3);
}

/** GFLOP/s of the GEMM alone at best (no engine, no output to allocate): its FLOPs / `arithmeticUs`. */
export function kernelCeiling(fixed: FixedCosts, d: Dims, peak1: number, peak2: number): number {
  return (2 * d.m * d.n * d.k) / (arithmeticUs(fixed, d, peak1, peak2) * 1e3);
}

/** µs of the backend's makeOutput of a [64, 10] float32 tensor (the buffers are freed outside the timing). */
function measureAlloc(): number {
  const backend = tf.backend() as unknown as { makeOutput(shape: number[], dtype: string): tf.TensorInfo; disposeData(id: object): void };
  const samples: number[] = [];
  for (let r = 0; r < 9; r++) {
    const made: tf.TensorInfo[] = [];
    const t0 = performance.now();
    for (let i = 0; i < 64; i++) made.push(backend.makeOutput([64, 10], "float32"));
    samples.push(((performance.now() - t0) * 1000) / 64);
    for (const m of made) backend.disposeData(m.dataId);
  }
  return median(samples);
}

/** µs of pool.run with one and with two 1x1x1 GEMM tasks (the second on the worker when it takes it), and of an output's allocation; no pool: no handoff. */
export function measureHandoff(): HandoffSample {
  const alloc = measureAlloc();
  const pool = kernelThreadPool();
  const gemm = gemmSimd((tf.backend() as unknown as { wasm: EmscriptenWasm }).wasm);
  if (!pool?.ready() || !gemm) return { alloc };
  const [pa, pb, pc] = [gemm.malloc(16), gemm.malloc(16), gemm.malloc(16)];
  const call: KernelCall = { module: "gemm", fn: "gemm", args: [pa, 4, 4, pb, 4, pc, 4, 1, 1, 1] };
  const time = (tasks: KernelCall[]): number => {
    const samples: number[] = [];
    for (let r = 0; r < 9; r++) {
      const t0 = performance.now();
      for (let i = 0; i < 5000; i++) pool.run(tasks);
      samples.push(((performance.now() - t0) * 1000) / 5000);
    }
    return median(samples);
  };
  try {
    time([call, call]); // warm-up
    return { one: time([call]), two: time([call, call]), alloc };
  } finally {
    for (const p of [pa, pb, pc]) gemm.free(p);
  }
}

