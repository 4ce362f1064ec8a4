import { util, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { elementwiseSimd, type EmscriptenWasm } from "./simd/index.js";
import { asKernelFunc, type KernelArgs, WASM, type WasmHeapBackend } from "./wasm-util.js";

/**
 * Core's per-batch data check in one dispatch. Inputs `{ xs, ys }`, attrs `{ target, classes }`;
 * outputs `[inputs, targets]`, float32 scalars that are 0 for a clean batch and NaN or > 0
 * otherwise. `target`: "none" (custom losses), "finite", "unit" (finite and in [0, 1]) or "classes"
 * (integers in [0, classes)). The same contract as the tfjs-op version in core's `batch-checks.ts`,
 * which runs on backends without this kernel.
 */
export const BATCH_CHECK = "FitloopBatchCheck";

export type TargetRule = "none" | "finite" | "unit" | "classes";

export function wasmBatchCheck({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WasmHeapBackend;
  const { xs, ys } = inputs as { xs: TensorInfo; ys: TensorInfo };
  const { target, classes } = attrs as unknown as { target: TargetRule; classes: number };
  const outs = [b.makeOutput([], "float32"), b.makeOutput([], "float32")];
  const at = (t: TensorInfo) => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const simd = elementwiseSimd(b.wasm);
  const heapF = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
  const nonFinite = (t: TensorInfo): number => {
    const n = util.sizeFromShape(t.shape);
    if (simd) return simd.exports.nonFinite(at(t), n);
    let acc = 0;
    for (let i = at(t) / 4, end = i + n; i < end; i++) acc += heapF[i]! * 0;
    return acc;
  };
  heapF[at(outs[0]!) / 4] = xs.dtype === "float32" ? nonFinite(xs) : 0;
  let bad = 0;
  if (target !== "none") {
    const n = util.sizeFromShape(ys.shape);
    // bool tensors take one byte per value on the wasm heap; int32 and float32 four
    const byte = ys.dtype === "bool";
    const heap = ys.dtype === "float32" ? heapF : byte ? b.wasm.HEAPU8 : b.wasm.HEAP32;
    const start = byte ? at(ys) : at(ys) / 4;
    if (target === "finite") bad = ys.dtype === "float32" ? nonFinite(ys) : 0;
    else if (target === "unit") for (let i = start; i < start + n; i++) bad += heap[i]! >= 0 && heap[i]! <= 1 ? 0 : 1;
    else for (let i = start; i < start + n; i++) bad += Number.isInteger(heap[i]!) && heap[i]! >= 0 && heap[i]! < classes ? 0 : 1;
  }
  heapF[at(outs[1]!) / 4] = bad;
  return outs;
}

export const wasmBatchCheckConfig: KernelConfig = { kernelName: BATCH_CHECK, backendName: WASM, kernelFunc: asKernelFunc(wasmBatchCheck as never) };
