import { BatchMatMul, Transpose, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { asKernelFunc, runWasm, withTemps, WASM, type KernelArgs } from "./wasm-util.js";
import { simdMatMul } from "./wasm-matmul-simd.js";

/**
 * tfjs-wasm's BatchMatMul takes its XNNPACK (SIMD) path only when neither operand is transposed and
 * falls to a scalar loop otherwise, at a fifth of the speed or less. A dense layer's gradients always
 * ask for a transpose (dx = dy·Wᵀ, dW = xᵀ·dy). This kernel transposes the flagged operand
 * explicitly with wasm's Transpose (a memory-bound copy) and runs the stock kernel without flags.
 * Below the thread gate's size, unbatched float32 matmuls run fitloop's own SIMD GEMM instead
 * (`wasm-matmul-simd.ts`: no per-call packing of the weight).
 */
export function wasmBatchMatMul({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { a, b } = inputs;
  const { transposeA, transposeB } = (attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
  if (!a || !b) throw new Error("fitloop wasm BatchMatMul: inputs a and b are required");
  const simd = simdMatMul({ inputs, backend, attrs }, BatchMatMul);
  if (simd) return simd;
  if ((!transposeA && !transposeB) || a.dtype !== "float32" || b.dtype !== "float32") {
    return runWasm(BatchMatMul, backend, inputs, attrs);
  }
  const swapLast = (rank: number): number[] => [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
  return withTemps(backend, (keep) => {
    const a2 = transposeA ? keep(runWasm(Transpose, backend, { x: a }, { perm: swapLast(a.shape.length) })) : a;
    const b2 = transposeB ? keep(runWasm(Transpose, backend, { x: b }, { perm: swapLast(b.shape.length) })) : b;
    return runWasm(BatchMatMul, backend, { a: a2, b: b2 }, { transposeA: false, transposeB: false });
  });
}

export const wasmBatchMatMulConfig: KernelConfig = { kernelName: BatchMatMul, backendName: WASM, kernelFunc: asKernelFunc(wasmBatchMatMul) };
