import { Tile, util, type KernelBackend, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { asKernelFunc, type KernelArgs, runWasm, WASM, type WasmHeapBackend } from "./wasm-util.js";

/** Rows (calls of the innermost copy) above which the stock kernel is used. */
const MAX_ROWS = 1 << 14;

/**
 * Tile as memory copies on the wasm heap: each input row is copied once, then every axis, innermost
 * first, is repeated by doubling `copyWithin` (memmove speed). tfjs-wasm's stock Tile computes a
 * multi-index per element, ~40 ns each; BatchNorm's gradient tiles a [1,1,1,C] tensor to the full
 * activation shape, which made it the second-largest kernel of a small CNN's training step.
 */
export function wasmTile({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x } = inputs;
  if (!x) throw new Error("fitloop wasm Tile: input x is required");
  const reps = (attrs as { reps: number[] }).reps;
  const rank = x.shape.length;
  const bytes = x.dtype === "float32" || x.dtype === "int32" ? 4 : x.dtype === "bool" ? 1 : 0;
  const rows = rank === 0 ? 1 : util.sizeFromShape(x.shape) / Math.max(1, x.shape[rank - 1]!);
  if (bytes === 0 || rank === 0 || reps.length !== rank || rows > MAX_ROWS || util.sizeFromShape(x.shape) === 0) {
    return runWasm(Tile, backend, inputs, attrs);
  }
  return tileOnHeap(x, reps, bytes, backend);
}

function tileOnHeap(x: TensorInfo, reps: number[], bytes: 1 | 4, kb: KernelBackend): TensorInfo {
  const backend = kb as unknown as WasmHeapBackend;
  const rank = x.shape.length;
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  const out = backend.makeOutput(outShape, x.dtype);
  if (util.sizeFromShape(outShape) === 0) return out;
  // after makeOutput: its malloc may grow (and replace) the heap
  const heap = bytes === 4 ? backend.wasm.HEAP32 : backend.wasm.HEAPU8;
  const src0 = backend.dataIdMap.get(x.dataId)!.memoryOffset / bytes;
  const dst0 = backend.dataIdMap.get(out.dataId)!.memoryOffset / bytes;
  const xStrides = [...util.computeStrides(x.shape), 1];
  const oStrides = [...util.computeStrides(outShape), 1];
  const repeat = (start: number, length: number, times: number): void => {
    // doubling: 1, 2, 4, ... copies, then the remainder
    let done = 1;
    while (done < times) {
      const n = Math.min(done, times - done);
      heap.copyWithin(start + done * length, start, start + n * length);
      done += n;
    }
  };
  const fill = (dim: number, src: number, dst: number): void => {
    const n = x.shape[dim]!;
    if (dim === rank - 1) {
      heap.copyWithin(dst, src, src + n);
    } else {
      for (let i = 0; i < n; i++) fill(dim + 1, src + i * xStrides[dim]!, dst + i * oStrides[dim]!);
    }
    repeat(dst, n * oStrides[dim]!, reps[dim]!);
  };
  fill(0, src0, dst0);
  return out;
}

export const wasmTileConfig: KernelConfig = { kernelName: Tile, backendName: WASM, kernelFunc: asKernelFunc(wasmTile) };
