import { backend_util, Transpose, type KernelBackend, type TensorInfo } from "@tensorflow/tfjs-core";
import { gemmSimd, type EmscriptenWasm } from "./simd/index.js";
import { disposeOnThrow, runWasm, type WasmHeapBackend } from "./wasm-util.js";
import { DEFAULT_MIN_SPLIT_BYTES, MAX_POOL_TASKS, memoryBoundSplitEnabled, poolFor, splitRows, type KernelCall } from "./kernel-threads.js";


/**
 * patchesᵀ[(kh*fw + kw)*ci + c, (b*outH + oh)*outW + ow] = x[b, oh*sh + kh*dh - top, ow*sw + kw*dw - left, c] (0 outside).
 * x is first transposed (XNNPACK) to [ci, b, H, W], so each output row segment (fixed tap, image and
 * output row) reads one input row with stride sw: contiguous for stride 1.
 */
export function im2colT(backend: KernelBackend, x: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const b = backend as unknown as WasmHeapBackend;
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const rows = batchSize * outHeight * outWidth;
  const xT = ci === 1 ? x : runWasm(Transpose, backend, { x }, { perm: [3, 0, 1, 2] });
  try {
    const out = b.makeOutput([fh * fw * ci, rows], "float32");
    const { top, left } = info.padInfo;
    const simd = gemmSimd(b.wasm as unknown as EmscriptenWasm);
    if (simd) {
      const src = b.dataIdMap.get(xT.dataId)!.memoryOffset;
      let dst = b.dataIdMap.get(out.dataId)!.memoryOffset;
      const calls: KernelCall[] = [];
      for (let kh = 0; kh < fh; kh++) {
        for (let kw = 0; kw < fw; kw++) {
          const shift = kw * dw - left;
          const lo = Math.min(outWidth, Math.max(0, Math.ceil(-shift / sw)));
          const hi = Math.max(lo, Math.min(outWidth, Math.ceil((inWidth - shift) / sw)));
          calls.push({ module: "gemm", fn: "im2colRows", args: [src, dst, ci * batchSize, inHeight * inWidth, inHeight, inWidth, outHeight, outWidth, sh, sw, kh * dh - top, shift, lo, hi] });
          dst += 4 * ci * rows;
        }
      }
      // One task per filter tap (disjoint rows of patchesᵀ) over fitloop's kernel threads when the copy is large.
      const pool = poolFor(simd.memory);
      disposeOnThrow(backend, [out], () => {
        if (pool && memoryBoundSplitEnabled() && calls.length > 1 && calls.length <= MAX_POOL_TASKS && 4 * fh * fw * ci * rows >= DEFAULT_MIN_SPLIT_BYTES) pool.run(calls);
        else for (const c of calls) simd.exports.im2colRows(...(c.args as Parameters<typeof simd.exports.im2colRows>));
      });
      return out;
    }
    const heap = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
    const x0 = b.dataIdMap.get(xT.dataId)!.memoryOffset / 4;
    let o = b.dataIdMap.get(out.dataId)!.memoryOffset / 4;
    const imageStride = inHeight * inWidth;
    const channelStride = batchSize * imageStride;
    for (let kh = 0; kh < fh; kh++) {
      for (let kw = 0; kw < fw; kw++) {
        // output columns ow with 0 <= ow*sw + kw*dw - left < inWidth: [lo, hi)
        const shift = kw * dw - left;
        const lo = Math.min(outWidth, Math.max(0, Math.ceil(-shift / sw)));
        const hi = Math.max(lo, Math.min(outWidth, Math.ceil((inWidth - shift) / sw)));
        for (let c = 0; c < ci; c++) {
          for (let n = 0; n < batchSize; n++) {
            const image = x0 + c * channelStride + n * imageStride + shift;
            for (let oh = 0; oh < outHeight; oh++) {
              const ih = oh * sh + kh * dh - top;
              if (ih < 0 || ih >= inHeight) {
                heap.fill(0, o, o + outWidth);
                o += outWidth;
                continue;
              }
              const row = image + ih * inWidth;
              for (let ow = 0; ow < lo; ow++) heap[o++] = 0;
              if (sw === 1) {
                for (let ow = lo; ow < hi; ow++) heap[o++] = heap[row + ow]!;
              } else {
                for (let ow = lo; ow < hi; ow++) heap[o++] = heap[row + ow * sw]!;
              }
              for (let ow = hi; ow < outWidth; ow++) heap[o++] = 0;
            }
          }
        }
      }
    }
    return out;
  } finally {
    if (xT !== x) backend.disposeData(xT.dataId);
  }
}


/**
 * patches[(b*outH + oh)*outW + ow, (kh*fw + kw)*ci + c] = x[b, oh*sh + kh*dh - top, ow*sw + kw*dw - left, c]
 * (0 outside): im2col in x's own NHWC order, so each tap is a run of ci floats (a filter row of fw*ci
 * floats when dw = 1) and x needs no transpose; images split over fitloop's kernel threads. For
 * many input channels; undefined without WebAssembly SIMD (then use `im2colT`).
 */
export function im2colNhwc(backend: KernelBackend, x: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo | undefined {
  const b = backend as unknown as WasmHeapBackend;
  const simd = gemmSimd(b.wasm as unknown as EmscriptenWasm);
  if (!simd) return undefined;
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const taps = fh * fw * ci;
  const out = b.makeOutput([batchSize * outHeight * outWidth, taps], "float32");
  const src = b.dataIdMap.get(x.dataId)!.memoryOffset;
  const dst = b.dataIdMap.get(out.dataId)!.memoryOffset;
  const [xImage, outImage] = [4 * inHeight * inWidth * ci, 4 * outHeight * outWidth * taps];
  const args = (start: number, count: number): [number, number, number, number, number, number, number, number, number, number, number, number, number, number, number, number] =>
    [src + start * xImage, dst + start * outImage, count, inHeight, inWidth, ci, outHeight, outWidth, fh, fw, sh, sw, dh, dw, top, left];
  disposeOnThrow(backend, [out], () =>
    splitRows(simd.memory, "gemm", "im2colNhwc", batchSize, args, () => simd.exports.im2colNhwc(...args(0, batchSize)), { align: 1, bytes: batchSize * outImage, memoryBound: true }),
  );
  return out;
}
