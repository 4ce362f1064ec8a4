import { backend_util, util, type TensorInfo } from "@tensorflow/tfjs-core";
import { gemmSimd, type EmscriptenWasm } from "./simd/index.js";
import type { KernelArgs } from "./wasm-util.js";
import { kernelFlops, withWasmThreads } from "./wasm-threadpool.js";
import { ownGemm, splitGemm } from "./wasm-gemm-split.js";
import type { WasmHeapBackend } from "./wasm-util.js";

/**
 * fitloop's own matmul on wasm (`simd/gemm.wat` through `splitGemm`) for BatchMatMul and
 * _FusedMatMul below the thread gate's size (from it too when fitloop's kernel threads run, or when
 * XNNPACK has no threads either: `ownGemmTakes`).
 * XNNPACK packs the right-hand operand (the weight) on every call; training changes the weights
 * every step, so for the MLP's matmuls (4-26 MFLOP) the packing costs as much as the multiply (~18
 * GFLOP/s for the step's matmuls vs ~35 for the round-5 kernel; docs/journal.md, rounds 5 and 9).
 * Both operands are read through their strides: the packed GEMM (round 9) packs a transposed right
 * operand as it packs a plain one (the round-5 kernel, for fewer than 5 rows, copies it transposed first).
 * Applies to float32 operands whose batch dimensions are all 1, with M, N > 0, and fewer than the
 * thread gate's minimum FLOPs (larger ones keep XNNPACK on its threads where fitloop has none); fused: no bias or a bias
 * of N elements, activation linear or relu. Elsewhere (and without WebAssembly SIMD) it returns
 * undefined and the caller runs the existing path.
 */

let enabled = true;
/** Turns fitloop's SIMD matmul on (default) or off (XNNPACK for every matmul); for benches and tests. */
export function setSimdMatMulEnabled(on: boolean): void {
  enabled = on;
}
export const simdMatMulEnabled = (): boolean => enabled;

const batchSize = (shape: readonly number[]): number => util.sizeFromShape(shape.slice(0, -2));

/** The matmul (with bias and relu when given) by the SIMD GEMM, or undefined where it does not apply. */
export function simdMatMul(args: KernelArgs, kernelName: string): TensorInfo | undefined {
  if (!enabled) return undefined;
  const { a, b, bias, preluActivationWeights } = args.inputs;
  const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean; activation?: string };
  if (!a || !b || a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length < 2 || b.shape.length < 2) return undefined;
  if (batchSize(a.shape) !== 1 || batchSize(b.shape) !== 1) return undefined;
  if (preluActivationWeights) return undefined;
  const activation = attrs.activation ?? "linear";
  if (activation !== "linear" && activation !== "relu") return undefined;
  const ta = !!attrs.transposeA;
  const tb = !!attrs.transposeB;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = ta ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = ta ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const kb = tb ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const n = tb ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (k !== kb || m === 0 || n === 0) return undefined; // shape errors: the stock kernel reports them
  if (bias && (bias.dtype !== "float32" || util.sizeFromShape(bias.shape) !== n || (bias.shape.length > 0 && bias.shape[bias.shape.length - 1] !== n))) return undefined;
  const flops = kernelFlops(kernelName, args.inputs, args.attrs ?? {});
  const backend = args.backend as unknown as WasmHeapBackend;
  // From the gate's size XNNPACK runs on its threads, unless fitloop's kernel threads can split this
  // GEMM or XNNPACK would run on one thread too (the single-threaded builds).
  const simd = ownGemm(backend.wasm, flops);
  if (!simd) return undefined;
  // Through the thread gate although this kernel never uses the pool: the gate puts tfjs-wasm's pool
  // pointer to rest (0) on its first call, and in a model whose matmuls all run here (the MLP) no
  // other kernel may call it, which left every small XNNPACK op (broadcast Add, Multiply...) on
  // the 2-thread pool (docs/journal.md, round 6).
  return withWasmThreads(args.backend, flops, () => gemmInto(simd, backend, a, b, bias, m, n, k, ta, tb, activation));
}

function gemmInto(
  simd: NonNullable<ReturnType<typeof gemmSimd>>,
  backend: WasmHeapBackend,
  a: TensorInfo,
  b: TensorInfo,
  bias: TensorInfo | undefined,
  m: number,
  n: number,
  k: number,
  ta: boolean,
  tb: boolean,
  activation: string,
): TensorInfo {
  const outer = backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = backend.makeOutput([...outer, m, n], "float32");
  const p = (t: TensorInfo): number => backend.dataIdMap.get(t.dataId)!.memoryOffset;
  try {
    const [ars, aks] = ta ? [4, 4 * m] : [4 * k, 4];
    // a transposed B (the weight in dx = dy·Wᵀ) is read through its strides: the packed GEMM packs it as it is
    const [ldb, bns] = tb ? [4, 4 * k] : [4 * n, 4];
    splitGemm(simd, { pa: p(a), ars, aks, pb: p(b), ldb, bns, pc: p(out), ldc: 4 * n, m, n, k });
    if (bias || activation === "relu") simd.exports.biasAct(p(out), m, n, bias ? p(bias) : 0, activation === "relu" ? 1 : 0);
  } catch (e) {
    backend.disposeData(out.dataId); // a kernel thread's error or a failed allocation: leave no buffer behind
    throw e;
  }
  return out;
}
