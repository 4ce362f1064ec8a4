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

/** With WebAssembly SIMD one pass per tensor (`simd/elementwise.wat` `sumSquares`); otherwise a float64 JS loop. */
export function wasmSumOfSquares({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as unknown as WasmHeapBackend;
  const xs = float32Inputs(SUM_OF_SQUARES, inputs);
  const out = b.makeOutput([], "float32");
  const at = (t: TensorInfo) => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const simd = elementwiseSimd(b.wasm);
  let total = 0;
  for (const x of xs) {
    const n = util.sizeFromShape(x.shape);
    if (simd) {
      total += simd.exports.sumSquares(at(x), n);
      continue;
    }
    const heap = b.wasm.HEAPF32;
    const start = at(x) / 4;
    for (let i = start; i < start + n; i++) total += heap[i]! * heap[i]!;
  }
  b.wasm.HEAPF32[at(out) / 4] = total;
  return out;
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
export const wasmScaleTensorsConfig: KernelConfig = { kernelName: SCALE_TENSORS, backendName: WASM, kernelFunc: asKernelFunc(wasmScaleTensors as never) };
