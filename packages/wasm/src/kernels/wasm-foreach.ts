import { util, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { elementwiseSimd, type EmscriptenWasm } from "./simd/index.js";
import { asKernelFunc, WASM, type KernelArgs } from "./wasm-util.js";

/**
 * Kernels over many tensors at once (PyTorch's `_foreach_*` idea), for what plugins do to all of a
 * model's gradients every step (global norm, clipping): one dispatch and one pass per tensor instead
 * of two or three ops per tensor. The names are the contract: core's `sumOfSquares` and
 * `scaleTensors` use these kernels when the active backend has them, and tfjs ops otherwise.
 */

/** `sum over inputs of sum(x^2)` (float32 inputs, float32 scalar out; accumulated in float64). */
export const SUM_OF_SQUARES = "FitloopSumOfSquares";
/** Inputs `[s, x1 .. xN]` (s a float32 scalar): outputs `x_i * s`, one float32 multiply per element. */
export const SCALE_TENSORS = "FitloopScaleTensors";
/**
 * Inputs `x1 .. xN`, attr `maxNorm`: outputs `[norm, scale]` with `norm = sqrt(sum of squares)` and
 * `scale = maxNorm / max(norm, maxNorm)` (the clip-by-global-norm factor), as float32 scalars: the
 * whole computation of gradient clipping in one dispatch.
 */
export const NORM_SCALE = "FitloopNormScale";

interface WasmHeapBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: string): TensorInfo;
  wasm: EmscriptenWasm & { HEAPF32: Float32Array };
}

function float32Inputs(name: string, inputs: KernelArgs["inputs"]): TensorInfo[] {
  const xs = Object.values(inputs) as TensorInfo[];
  for (const x of xs) if (x.dtype !== "float32") throw new Error(`${name}: inputs must be float32, got ${x.dtype}`);
  return xs;
}

/** The sum of squares of every input, in float64: SIMD with one pass per tensor where available, else a JS loop. */
function sumSquaresOf(b: WasmHeapBackend, xs: readonly TensorInfo[]): number {
  const simd = elementwiseSimd(b.wasm);
  let total = 0;
  for (const x of xs) {
    const n = util.sizeFromShape(x.shape);
    const start = b.dataIdMap.get(x.dataId)!.memoryOffset;
    if (simd) {
      total += simd.exports.sumSquares(start, n);
      continue;
    }
    const heap = b.wasm.HEAPF32;
    for (let i = start / 4; i < start / 4 + n; i++) total += heap[i]! * heap[i]!;
  }
  return total;
}

/** With WebAssembly SIMD one pass per tensor (`simd/elementwise.wat` `sumSquares`); otherwise a float64 JS loop. */
export function wasmSumOfSquares({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as unknown as WasmHeapBackend;
  const total = sumSquaresOf(b, float32Inputs(SUM_OF_SQUARES, inputs));
  const out = b.makeOutput([], "float32");
  b.wasm.HEAPF32[b.dataIdMap.get(out.dataId)!.memoryOffset / 4] = total;
  return out;
}

/**
 * `[norm, scale]` as float32, computed as tfjs's Sqrt, Maximum and Div would on the float32 sum
 * (each a correctly rounded float32 operation, so the same bits as those ops on the cpu backend).
 */
export function wasmNormScale({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WasmHeapBackend;
  const f = Math.fround;
  const maxNorm = f((attrs as { maxNorm: number }).maxNorm);
  const norm = f(Math.sqrt(f(sumSquaresOf(b, float32Inputs(NORM_SCALE, inputs)))));
  // Math.max(NaN, m) is NaN, as tfjs's Maximum propagates NaN
  const scale = f(maxNorm / (Number.isNaN(norm) ? Number.NaN : Math.max(norm, maxNorm)));
  const outs = [b.makeOutput([], "float32"), b.makeOutput([], "float32")];
  const heap = b.wasm.HEAPF32;
  heap[b.dataIdMap.get(outs[0]!.dataId)!.memoryOffset / 4] = norm;
  heap[b.dataIdMap.get(outs[1]!.dataId)!.memoryOffset / 4] = scale;
  return outs;
}

/** The scale is read from the wasm heap (the backend's own memory, not a device read), then one SIMD pass per tensor. */
export function wasmScaleTensors({ inputs, backend }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WasmHeapBackend;
  const [s, ...xs] = float32Inputs(SCALE_TENSORS, inputs);
  if (!s || util.sizeFromShape(s.shape) !== 1) throw new Error(`${SCALE_TENSORS}: the first input must be a scalar`);
  const at = (t: TensorInfo) => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const outs = xs.map((x) => b.makeOutput([...x.shape], "float32"));
  const simd = elementwiseSimd(b.wasm);
  const heap = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
  const scale = heap[at(s) / 4]!;
  xs.forEach((x, i) => {
    const n = util.sizeFromShape(x.shape);
    if (simd) return simd.exports.scale(at(x), at(outs[i]!), n, scale);
    const src = at(x) / 4;
    const dst = at(outs[i]!) / 4;
    for (let k = 0; k < n; k++) heap[dst + k] = heap[src + k]! * scale;
  });
  return outs;
}

export const wasmSumOfSquaresConfig: KernelConfig = { kernelName: SUM_OF_SQUARES, backendName: WASM, kernelFunc: asKernelFunc(wasmSumOfSquares) };
export const wasmNormScaleConfig: KernelConfig = { kernelName: NORM_SCALE, backendName: WASM, kernelFunc: asKernelFunc(wasmNormScale as never) };
export const wasmScaleTensorsConfig: KernelConfig = { kernelName: SCALE_TENSORS, backendName: WASM, kernelFunc: asKernelFunc(wasmScaleTensors as never) };
