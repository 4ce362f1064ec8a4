import {
  backend_util,
  BatchMatMul,
  Conv2D,
  Conv2DBackpropFilter,
  Slice,
  Transpose,
  type Conv2DBackpropFilterAttrs,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from "@tensorflow/tfjs-core";
import { im2colNhwc, im2colT } from "./wasm-im2col.js";
import type { EmscriptenWasm, GemmSimdExports, SimdKernels } from "./simd/index.js";
import { addPartials, convImagesApplies, ownGemm, packedScratchBytes, runPackedParts, splitGemm, splitGemmDepth } from "./wasm-gemm-split.js";
import { disposeOnThrow, runWasm, type WasmHeapBackend } from "./wasm-util.js";
import { winogradFilterGrad, winogradFilterGradApplies } from "./wasm-conv-winograd.js";

const BACKEND = "wasm";

/**
 * Attributes of `Conv2DBackpropFilter`. tfjs itself never passes `dilations` (its conv2d gradient
 * rejects dilation > 1); we accept it so the kernel is correct for dilated forward convolutions too.
 */
export interface WasmConv2DBackpropFilterAttrs extends Conv2DBackpropFilterAttrs {
  dilations?: [number, number] | number;
}

/** Geometry of the filter gradient expressed as one forward Conv2D (see `planFilterGradConv`). */
export interface FilterGradPlan {
  /** Padding of the composed conv, as tfjs explicit padding of an NHWC tensor. */
  pad: [[0, 0], [number, number], [number, number], [0, 0]];
  strides: [number, number];
  dilations: [number, number];
  /** Spatial size the composed conv produces; can exceed the filter's, then it is cropped. */
  outHeight: number;
  outWidth: number;
  filterHeight: number;
  filterWidth: number;
}

/**
 * dW[i,j,ci,co] = sum_{b,oh,ow} xPadded[b, oh*s + i*d, ow*s + j*d, ci] * dy[b,oh,ow,co] is a Conv2D
 * of x seen as [ci, H, W, b] with dy seen as the filter [oh, ow, b, co], where the roles of stride
 * and dilation swap. Padding keeps the original top/left; bottom/right become what output rows
 * 0..fh-1 need (may be less than the original, or more with 'ceil' rounding); extra rows are cropped.
 */
export function planFilterGradConv(
  xShape: readonly [number, number, number, number],
  dyShape: readonly [number, number, number, number],
  attrs: WasmConv2DBackpropFilterAttrs,
): FilterGradPlan {
  if (attrs.dataFormat === "NCHW") {
    throw new Error("fitloop wasm Conv2DBackpropFilter supports only dataFormat 'NHWC' (tfjs-wasm's Conv2D does too); got 'NCHW'");
  }
  const info = backend_util.computeConv2DInfo(
    [xShape[0], xShape[1], xShape[2], xShape[3]],
    attrs.filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
  const [b, oh, ow, co] = dyShape;
  if (b !== info.batchSize || oh !== info.outHeight || ow !== info.outWidth || co !== info.outChannels) {
    throw new Error(`fitloop wasm Conv2DBackpropFilter: dy shape [${dyShape.join(",")}] does not match the convolution's output [${info.outShape.join(",")}]`);
  }
  // needed = padded extent that output rows 0..filter-1 read; rows past the input are zeros.
  const side = (inSize: number, padBefore: number, out: number, filter: number, stride: number, dilation: number): [number, number] => {
    const needed = (filter - 1) * dilation + (out - 1) * stride + 1;
    const padAfter = Math.max(0, needed - inSize - padBefore);
    return [padAfter, filter + Math.floor((inSize + padBefore + padAfter - needed) / dilation)];
  };
  const [padBottom, outHeight] = side(info.inHeight, info.padInfo.top, oh, info.filterHeight, info.strideHeight, info.dilationHeight);
  const [padRight, outWidth] = side(info.inWidth, info.padInfo.left, ow, info.filterWidth, info.strideWidth, info.dilationWidth);
  return {
    pad: [[0, 0], [info.padInfo.top, padBottom], [info.padInfo.left, padRight], [0, 0]],
    strides: [info.dilationHeight, info.dilationWidth],
    dilations: [info.strideHeight, info.strideWidth],
    outHeight,
    outWidth,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
  };
}


function as4d(shape: readonly number[], what: string): [number, number, number, number] {
  if (shape.length !== 4) throw new Error(`fitloop wasm Conv2DBackpropFilter: ${what} must be rank 4, got shape [${shape.join(",")}]`);
  return [shape[0]!, shape[1]!, shape[2]!, shape[3]!];
}

/** Arguments tfjs passes to a kernel function, with the backend typed (tfjs types it as `{}`). */
export interface WasmKernelArgs {
  inputs: NamedTensorInfoMap;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}

/**
 * Up to this many filter taps (filterHeight * filterWidth * inChannels), the filter gradient runs as
 * im2col + one matmul: the composed Conv2D below has dy as its "filter", which XNNPACK repacks at
 * every call, and with few input channels it computes only fh*fw*ci output pixels from it (the
 * first layer of a CNN on MNIST: 9 pixels from a [26,26,64,32] filter; ~10 ms). im2col writes
 * patchesᵀ [taps, batch*outH*outW] (small when taps are few) and one XNNPACK matmul patchesᵀ · dy
 * gives dW as [fh*fw*ci, co], already in the filter's layout. Measured (round 7, 2 threads, fresh
 * dy per call): 3x3x8->16 on [64,26,26,8] 5.5 vs 8.8 ms; conv2 3x3x32->64 on [64,13,13,32] 8.6 vs
 * 9.3 ms ('same': 12.4 vs 13.8); 5x5x16->32 (400 taps) on [64,24,24,16] 23.5 vs 21.4 ms (slower):
 * hence 288 (3x3x32) taps. Since round 7 the im2col copy runs in `simd/gemm.wat` (im2colRows).
 */
export const IM2COL_MAX_TAPS = 288;

/**
 * From this many input channels im2col writes patches in x's NHWC order (`im2colNhwc`: runs of ci
 * floats, no transpose of x) when fitloop's GEMM takes the matmul; conv2 of the CNN (ci 32): ~2.0 ->
 * ~0.5 ms (docs/journal.md, round 8). With fewer the runs are too short to copy well.
 */
export const IM2COL_NHWC_MIN_CHANNELS = 8;

/**
 * From this many FLOPs (2 * fh*fw*ci * batch*outH*outW * co), the filter gradient also runs as
 * im2col + one matmul whatever the taps: that matmul reaches the thread gate's minimum, so XNNPACK
 * runs it on all pool threads (docs/journal.md, round 7). Infinity: only IM2COL_MAX_TAPS applies.
 */
export const DEFAULT_IM2COL_MIN_FLOPS = Infinity;
let im2colMinFlops = DEFAULT_IM2COL_MIN_FLOPS;
/** Sets the FLOPs from which the filter gradient uses im2col + matmul (Infinity: taps rule only). */
export function setIm2colFilterGradMinFlops(flops: number): void {
  if (!(flops >= 0)) throw new RangeError(`minFlops must be >= 0, got ${flops}`);
  im2colMinFlops = flops;
}
export const im2colFilterGradMinFlops = (): number => im2colMinFlops;
/** Largest im2col scratch (patchesᵀ, float32 elements) the FLOPs rule allows: 256 MiB. */
const IM2COL_MAX_SCRATCH = 64 * 1024 * 1024;

/** Whether the filter gradient of this geometry runs as im2col + one matmul (the rule above). */
export function useIm2colFilterGrad(taps: number, rows: number, outChannels: number): boolean {
  if (taps <= IM2COL_MAX_TAPS) return true;
  return 2 * taps * rows * outChannels >= im2colMinFlops && taps * rows <= IM2COL_MAX_SCRATCH;
}

interface GemmBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: string): TensorInfo;
  wasm: EmscriptenWasm;
}

/** Largest dW (taps x co floats) whose gradient is split over the kernel threads by pixels (`splitGemmDepth`). */
export const DEPTH_SPLIT_MAX_OUTPUT = 64 * 64;
/** ... from this many pixels (batch x output pixels). */
export const DEPTH_SPLIT_MIN_ROWS = 4096;

/**
 * dW [taps, co] = patchesᵀ [taps, rows] · dy [rows, co] on fitloop's SIMD GEMM (split over fitloop's
 * kernel threads, `kernel-threads.ts`, when a pool runs): below the thread gate's size always (the
 * stock XNNPACK matmul took ~6 ms for the first layer's [9, 43264]·[43264, 32]: it repacks dy, new at
 * every call, and streams it once per row tile), from it only with a kernel thread pool; else
 * undefined (then XNNPACK on its threads). Measured in docs/journal.md, round 8.
 */
function gemmFilterGrad(backend: KernelBackend, gemm: SimdKernels<GemmSimdExports>, patches: TensorInfo, dy: TensorInfo, taps: number, rows: number, co: number, nhwc: boolean): TensorInfo {
  const b = backend as unknown as GemmBackend;
  const out = b.makeOutput([taps, co], "float32");
  const p = (t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset;
  // A(tap, pixel): patchesᵀ [taps, rows] row-major, or patches [rows, taps] (NHWC) read transposed
  const [ars, aks] = nhwc ? [4, 4 * taps] : [4 * rows, 4];
  const operands = { pa: p(patches), ars, aks, pb: p(dy), ldb: 4 * co, pc: p(out), ldc: 4 * co, m: taps, n: co, k: rows };
  // a small dW from many pixels (few taps): split the pixels, not dW's rows or columns
  const byDepth = taps * co <= DEPTH_SPLIT_MAX_OUTPUT && rows >= DEPTH_SPLIT_MIN_ROWS;
  disposeOnThrow(backend, [out], () => (byDepth ? splitGemmDepth(gemm, operands) : splitGemm(gemm, operands)));
  return out;
}

/**
 * dW image by image (gemm.wat's `filterGradImages`): per image, its NHWC patches into a scratch that
 * stays in cache, then dW += patchesᵀ · dy_image (the packed GEMM accumulating). Whole-batch im2col
 * writes and reads the patches of every image (the CNN's conv2: 8.9 MB) beyond the caches of a
 * training step (round 11). With kernel threads the images are split in one part per thread: part 0
 * sums into dW, the others into partial sums in scratch, added to dW in part order (so the sum
 * depends on the thread count, not on scheduling).
 */
function filterGradImages(b: GemmBackend, gemm: SimdKernels<GemmSimdExports>, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co, filterHeight: fh, filterWidth: fw } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const taps = fh * fw * ci;
  const rows = outHeight * outWidth;
  // each part's scratch: its partial dW (part 0 sums into dW itself), the patches, the GEMM's scratch
  const partial = Math.ceil((4 * taps * co) / 64) * 64;
  const perPart = partial + Math.ceil((4 * rows * taps) / 16) * 16 + packedScratchBytes(co, rows);
  const out = b.makeOutput([taps, co], "float32");
  return disposeOnThrow(b as unknown as KernelBackend, [out], () => {
    const po = b.dataIdMap.get(out.dataId)!.memoryOffset;
    const [px, pdy] = [b.dataIdMap.get(x.dataId)!.memoryOffset, b.dataIdMap.get(dy.dataId)!.memoryOffset];
    const [xImage, dyImage] = [4 * inHeight * inWidth * ci, 4 * rows * co];
    runPackedParts(
      gemm,
      "filterGradImages",
      batchSize,
      perPart,
      1,
      (start, count, part, scratch) => [px + start * xImage, pdy + start * dyImage, part === 0 ? po : scratch, count, inHeight, inWidth, ci, outHeight, outWidth, fh, fw, sh, sw, dh, dw, top, left, co, 0, scratch + partial],
      (scratch, parts, stride) => addPartials(gemm.memory, po, scratch, parts, stride, taps * co),
    );
    return out;
  });
}

/**
 * The kernel function. 3x3 stride 1 with 16+ channels: Winograd (`winogradFilterGradApplies`,
 * `wasm-conv-winograd.ts`). Few filter taps: image by image (`filterGradImages`, 8+ input channels and
 * images that fit), else im2col + one matmul (see IM2COL_MAX_TAPS). Otherwise: transposes, one
 * XNNPACK Conv2D, an optional crop, a transpose back.
 */
export function wasmConv2DBackpropFilter({ inputs, backend, attrs }: WasmKernelArgs): TensorInfo {
  const { x, dy } = inputs;
  if (!x || !dy) throw new Error("fitloop wasm Conv2DBackpropFilter: inputs x and dy are required");
  const a = attrs as unknown as WasmConv2DBackpropFilterAttrs;
  const xShape = as4d(x.shape, "x");
  const plan = planFilterGradConv(xShape, as4d(dy.shape, "dy"), a);
  const [fh, fw, ci, co] = a.filterShape;
  const dyRows = dy.shape[0]! * dy.shape[1]! * dy.shape[2]!;
  const float = x.dtype === "float32" && dy.dtype === "float32" && "makeOutput" in backend;
  const info = float ? backend_util.computeConv2DInfo([...xShape], a.filterShape, a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, false, "channelsLast") : undefined;
  // 3x3 stride 1 with 16+ channels: Winograd (any number of taps; fitloop's GEMM taking the product;
  // an image's tiles within WINOGRAD_FILTER_GRAD_MAX_TILE_BYTES, see `winogradFilterGradApplies`)
  if (info && fh === 3 && fw === 3) {
    const dyMatches = dy.shape[0] === info.batchSize && dy.shape[1] === info.outHeight && dy.shape[2] === info.outWidth && dy.shape[3] === co;
    const gemm = dyMatches && winogradFilterGradApplies(info) ? ownGemm((backend as unknown as GemmBackend).wasm, 2 * 9 * ci * dyRows * co) : undefined;
    if (gemm) return { ...winogradFilterGrad(backend as unknown as WasmHeapBackend, gemm, x, dy, info), shape: [fh, fw, ci, co] };
  }
  if (useIm2colFilterGrad(fh * fw * ci, dyRows, co) && info) {
    const rows = info.batchSize * info.outHeight * info.outWidth;
    // Many input channels: patches in NHWC order (runs of ci floats, no transpose of x), read by the
    // GEMM through its strides; few: patchesᵀ from x transposed to [ci, b, H, W].
    const gemm = ownGemm((backend as unknown as GemmBackend).wasm, 2 * fh * fw * ci * rows * co);
    // (batch 0 takes the whole-batch path, whose GEMM writes the zeros of an empty sum)
    if (gemm && info.batchSize > 0 && ci >= IM2COL_NHWC_MIN_CHANNELS && convImagesApplies(4 * info.outHeight * info.outWidth * fh * fw * ci, packedScratchBytes(co, info.outHeight * info.outWidth))) {
      return { ...filterGradImages(backend as unknown as GemmBackend, gemm, x, dy, info), shape: [fh, fw, ci, co] };
    }
    const nhwc = gemm && ci >= IM2COL_NHWC_MIN_CHANNELS ? im2colNhwc(backend, x, info) : undefined;
    const patches = nhwc ?? im2colT(backend, x, info);
    try {
      if (gemm) return { ...gemmFilterGrad(backend, gemm, patches, dy, fh * fw * ci, rows, co, !!nhwc), shape: [fh, fw, ci, co] };
      const dy2 = { dataId: dy.dataId, shape: [1, rows, co], dtype: dy.dtype };
      const p3 = { ...patches, shape: [1, fh * fw * ci, rows] };
      const grad = runWasm(BatchMatMul, backend, { a: p3, b: dy2 }, { transposeA: false, transposeB: false });
      return { ...grad, shape: [fh, fw, ci, co] };
    } finally {
      backend.disposeData(patches.dataId);
    }
  }
  const temps: TensorInfo[] = [];
  const keep = (t: TensorInfo): TensorInfo => (temps.push(t), t);
  try {
    const xT = keep(runWasm(Transpose, backend, { x }, { perm: [3, 1, 2, 0] }));
    const dyT = keep(runWasm(Transpose, backend, { x: dy }, { perm: [1, 2, 0, 3] }));
    let grad = keep(
      runWasm(Conv2D, backend, { x: xT, filter: dyT }, {
        strides: plan.strides,
        dilations: plan.dilations,
        pad: plan.pad,
        dataFormat: "NHWC",
      }),
    );
    if (plan.outHeight !== plan.filterHeight || plan.outWidth !== plan.filterWidth) {
      grad = keep(runWasm(Slice, backend, { x: grad }, { begin: [0, 0, 0, 0], size: [ci, plan.filterHeight, plan.filterWidth, co] }));
    }
    // [ci, fh, fw, co] -> [fh, fw, ci, co]; the result is owned by the engine, not disposed here.
    return runWasm(Transpose, backend, { x: grad }, { perm: [1, 2, 0, 3] });
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

export const wasmConv2DBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: BACKEND,
  // tfjs types the backend parameter as `{}`; the engine passes the wasm KernelBackend
  kernelFunc: wasmConv2DBackpropFilter as unknown as KernelFunc,
};
