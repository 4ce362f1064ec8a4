import { backend_util, MaxPool, type KernelConfig, type MaxPoolAttrs, type TensorInfo } from "@tensorflow/tfjs-core";
import { maxPool2x2Simd, type EmscriptenWasm } from "./simd/index.js";
import { splitRows } from "./kernel-threads.js";
import { asKernelFunc, disposeOnThrow, type KernelArgs, runWasm, WASM, type WasmHeapBackend } from "./wasm-util.js";

/**
 * Whether a pooling is 2x2 windows with stride 2, no padding and no dilation, on a channel count that
 * is a multiple of 4 (`simd/max-pool-2x2.wat`): non-overlapping windows, an odd last row/column dropped
 * (`valid`, or `same` on even sizes).
 */
export function isPool2x2(info: backend_util.Conv2DInfo): boolean {
  const { filterHeight, filterWidth, strideHeight, strideWidth, dilationHeight, dilationWidth, padInfo, inHeight, inWidth, outHeight, outWidth, inChannels, batchSize } = info;
  return (
    filterHeight === 2 && filterWidth === 2 && strideHeight === 2 && strideWidth === 2 && dilationHeight === 1 && dilationWidth === 1 &&
    padInfo.top === 0 && padInfo.left === 0 && outHeight === Math.floor(inHeight / 2) && outWidth === Math.floor(inWidth / 2) &&
    outHeight > 0 && outWidth > 0 && batchSize > 0 && inChannels > 0 && inChannels % 4 === 0
  );
}

/**
 * `MaxPool` 2x2/stride 2 (the common CNN pooling) as one WebAssembly SIMD pass; the first maximum as on
 * cpu (NaN is skipped, a window of only NaN gives -inf), equal to stock XNNPACK on values without NaN.
 * Other poolings, dtypes and no SIMD run the stock kernel.
 */
export function wasmMaxPool({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x } = inputs;
  if (!x) throw new Error("fitloop wasm MaxPool: input x is required");
  const a = attrs as unknown as MaxPoolAttrs;
  const wb = backend as unknown as WasmHeapBackend;
  if (x.shape.length !== 4 || x.dtype !== "float32") return runWasm(MaxPool, backend, inputs, attrs);
  const info = backend_util.computePool2DInfo(x.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
  const simd = isPool2x2(info) ? maxPool2x2Simd(wb.wasm) : undefined;
  if (!simd) return runWasm(MaxPool, backend, inputs, attrs);
  const out = wb.makeOutput([...info.outShape], "float32");
  const p = (t: TensorInfo): number => wb.dataIdMap.get(t.dataId)!.memoryOffset;
  // images split over fitloop's kernel threads (a memory-bound pass; kernel-threads.ts)
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth } = info;
  const [xImage, yImage] = [4 * inHeight * inWidth * c, 4 * outHeight * outWidth * c];
  const [px, py] = [p(x), p(out)];
  disposeOnThrow(wb, [out], () => splitRows(simd.memory, "max-pool-2x2", "maxPool", batchSize, (start, count) => [px + start * xImage, py + start * yImage, count, inHeight, inWidth, c, outHeight, outWidth], () => simd.exports.maxPool(px, py, batchSize, inHeight, inWidth, c, outHeight, outWidth), {
    align: 1,
    bytes: batchSize * (xImage + yImage),
    memoryBound: true,
  }));
  return out;
}

export const wasmMaxPoolConfig: KernelConfig = { kernelName: MaxPool, backendName: WASM, kernelFunc: asKernelFunc(wasmMaxPool) };
