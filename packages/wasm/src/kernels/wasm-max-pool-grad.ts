import { backend_util, MaxPoolGrad, util, type KernelBackend, type KernelConfig, type MaxPoolGradAttrs, type TensorInfo } from "@tensorflow/tfjs-core";
import { maxPool2x2Simd, maxPoolGradSimd, type EmscriptenWasm } from "./simd/index.js";
import { splitRows } from "./kernel-threads.js";
import { isPool2x2 } from "./wasm-max-pool.js";
import { asKernelFunc, disposeOnThrow, type KernelArgs, runWasm, WASM, type WasmHeapBackend } from "./wasm-util.js";

/**
 * MaxPoolGrad on the wasm heap: for every output cell, find the first maximum of its window (in
 * row-major window order, as the cpu backend does) and add dy there. One pass over the windows;
 * tfjs-wasm's stock kernel (like cpu's) loops over every input cell and every window covering it,
 * and was the largest kernel of a small CNN's step after the convolutions were fixed.
 * With a channel count that is a multiple of 4 the pass runs as WebAssembly SIMD
 * (`simd/max-pool-grad.wat`, on tfjs-wasm's memory, same semantics), else as the JS loop below;
 * 2x2 windows with stride 2 and no padding take `simd/max-pool-2x2.wat` (same semantics, one write per dx element).
 */
export function wasmMaxPoolGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, input } = inputs;
  if (!dy || !input) throw new Error("fitloop wasm MaxPoolGrad: inputs dy and input are required");
  const a = attrs as unknown as MaxPoolGradAttrs;
  if (input.shape.length !== 4 || dy.dtype !== "float32" || input.dtype !== "float32") return runWasm(MaxPoolGrad, backend, inputs, attrs);
  const info = backend_util.computePool2DInfo(input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
  if (dy.shape.some((d, i) => d !== info.outShape[i])) return runWasm(MaxPoolGrad, backend, inputs, attrs);
  return poolGrad(dy, input, info, backend);
}

function poolGrad(dy: TensorInfo, x: TensorInfo, info: backend_util.Conv2DInfo, kb: KernelBackend): TensorInfo {
  const backend = kb as unknown as WasmHeapBackend;
  const out = backend.makeOutput([...x.shape], "float32");
  const { batchSize, inHeight, inWidth, inChannels: ch, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const { top, left } = info.padInfo;
  // 2x2 windows with stride 2 do not overlap: each dx element written once, no zero fill + scatter
  const simd2x2 = isPool2x2(info) ? maxPool2x2Simd(backend.wasm) : undefined;
  if (simd2x2) {
    const p = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    // images split over fitloop's kernel threads (a memory-bound pass; kernel-threads.ts)
    const [xImage, yImage] = [4 * inHeight * inWidth * ch, 4 * outHeight * outWidth * ch];
    const [px, pdy, pdx] = [p(x), p(dy), p(out)];
    disposeOnThrow(backend, [out], () => splitRows(simd2x2.memory, "max-pool-2x2", "maxPoolGrad", batchSize, (start, count) => [px + start * xImage, pdy + start * yImage, pdx + start * xImage, count, inHeight, inWidth, ch, outHeight, outWidth], () => simd2x2.exports.maxPoolGrad(px, pdy, pdx, batchSize, inHeight, inWidth, ch, outHeight, outWidth), {
      align: 1,
      bytes: batchSize * (2 * xImage + yImage),
      memoryBound: true,
    }));
    return out;
  }
  const simd = ch % 4 === 0 ? maxPoolGradSimd(backend.wasm) : undefined;
  if (simd) {
    const p = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    simd.exports.maxPoolGrad(p(x), p(dy), p(out), batchSize, inHeight, inWidth, ch, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth, top, left);
    return out;
  }
  const heap = backend.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
  const xs = backend.dataIdMap.get(x.dataId)!.memoryOffset / 4;
  const dys = backend.dataIdMap.get(dy.dataId)!.memoryOffset / 4;
  const dxs = backend.dataIdMap.get(out.dataId)!.memoryOffset / 4;
  const size = util.sizeFromShape(x.shape);
  heap.fill(0, dxs, dxs + size);
  const rowStride = inWidth * ch;
  const best = new Float64Array(ch);
  const where = new Int32Array(ch);
  let dyp = dys;
  for (let b = 0; b < batchSize; b++) {
    const xb = xs + b * inHeight * rowStride;
    for (let oh = 0; oh < outHeight; oh++) {
      const r0 = oh * strideHeight - top;
      const rMin = Math.max(0, r0);
      const rMax = Math.min(inHeight, r0 + filterHeight);
      for (let ow = 0; ow < outWidth; ow++, dyp += ch) {
        const c0 = ow * strideWidth - left;
        const cMin = Math.max(0, c0);
        const cMax = Math.min(inWidth, c0 + filterWidth);
        best.fill(-Infinity);
        where.fill(-1);
        for (let r = rMin; r < rMax; r++) {
          for (let c = cMin; c < cMax; c++) {
            const p = xb + r * rowStride + c * ch;
            for (let d = 0; d < ch; d++) {
              const v = heap[p + d]!;
              if (v > best[d]!) {
                best[d] = v;
                where[d] = p + d;
              }
            }
          }
        }
        for (let d = 0; d < ch; d++) {
          const w = where[d]!;
          if (w >= 0) heap[dxs + (w - xs)]! += heap[dyp + d]!;
        }
      }
    }
  }
  return out;
}

export const wasmMaxPoolGradConfig: KernelConfig = { kernelName: MaxPoolGrad, backendName: WASM, kernelFunc: asKernelFunc(wasmMaxPoolGrad) };
