import { planParts, poolFor, type KernelCall } from "./kernel-threads.js";
import { gemmSimd, type EmscriptenWasm, type GemmSimdExports, type SimdKernels } from "./simd/index.js";
import { wasmThreadMinFlops } from "./wasm-threadpool.js";

/**
 * fitloop's SIMD GEMM for a product of `flops`, or undefined: below the thread gate's size always
 * (XNNPACK repacks its right operand, new at every training step), from it only when fitloop's kernel
 * threads run (else XNNPACK on its thread pool is faster); undefined without WebAssembly SIMD.
 */
export function ownGemm(wasm: EmscriptenWasm, flops: number): SimdKernels<GemmSimdExports> | undefined {
  const gemm = gemmSimd(wasm);
  return gemm && (flops < wasmThreadMinFlops() || poolFor(gemm.memory)) ? gemm : undefined;
}

/**
 * C = A·B on fitloop's SIMD GEMM (`simd/gemm.wat`), split over fitloop's kernel threads
 * (`kernel-threads.ts`) when a pool runs and the product is at least `minFlops`: along the rows of C
 * when M >= N (each part reads all of B, its own rows of A), else along its columns in multiples of
 * 8 (each part reads all of A, its own columns of B). Every element of C is computed by one call with
 * the same k order, so the result is bit-identical to one call. Pointers and strides in bytes, as
 * `gemm`: A(m, k) at pa + m*ars + k*aks, B(k, n) at pb + k*ldb + 4n, C(m, n) at pc + m*ldc + 4n.
 */
export interface GemmOperands {
  pa: number;
  ars: number;
  aks: number;
  pb: number;
  ldb: number;
  pc: number;
  ldc: number;
  m: number;
  n: number;
  k: number;
}

/**
 * Below this many FLOPs one call on the calling thread: a dispatch costs ~10-30 us, a 4 MFLOP GEMM
 * ~0.12 ms (docs/journal.md, round 8).
 */
export const DEFAULT_SPLIT_GEMM_MIN_FLOPS = 4e6;

/** Runs the GEMM, split over the kernel threads where that pays; returns the number of parts. */
export function splitGemm(gemm: SimdKernels<GemmSimdExports>, o: GemmOperands, minFlops = DEFAULT_SPLIT_GEMM_MIN_FLOPS): number {
  const { pa, ars, aks, pb, ldb, pc, ldc, m, n, k } = o;
  const whole = (): void => gemm.exports.gemm(pa, ars, aks, pb, ldb, pc, ldc, m, n, k);
  const pool = poolFor(gemm.memory);
  if (!pool || 2 * m * n * k < minFlops) {
    whole();
    return 1;
  }
  const byRows = m >= n;
  const parts = planParts(gemm.memory, byRows ? m : n, { align: byRows ? 4 : 8, bytes: Infinity });
  if (parts.length <= 1) {
    whole();
    return 1;
  }
  const calls: KernelCall[] = parts.map(([start, count]) => ({
    module: "gemm",
    fn: "gemm",
    args: byRows
      ? [pa + start * ars, ars, aks, pb, ldb, pc + start * ldc, ldc, count, n, k]
      : [pa, ars, aks, pb + 4 * start, ldb, pc + 4 * start, ldc, m, count, k],
  }));
  pool.run(calls);
  return parts.length;
}
