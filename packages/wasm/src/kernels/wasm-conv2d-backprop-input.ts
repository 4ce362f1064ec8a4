import { backend_util, BatchMatMul, Conv2D, Conv2DBackpropInput, Reverse, Transpose, type Conv2DBackpropInputAttrs, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { col2imSimd, type EmscriptenWasm } from "./simd/index.js";
import { CHUNKS_PER_THREAD, planParts, splitRows } from "./kernel-threads.js";
import { convImagesApplies, ownGemm, packedScratchBytes, runPackedParts, splitGemm } from "./wasm-gemm-split.js";
import { winogradInputGrad, winogradInputGradApplies } from "./wasm-conv-winograd.js";
import { asKernelFunc, disposeOnThrow, type KernelArgs, runWasm, WASM, type WasmHeapBackend, withTemps } from "./wasm-util.js";

/** Padding of the forward Conv2D that computes an input gradient, or null when it does not apply. */
export function planInputGradConv(
  inputShape: readonly [number, number, number, number],
  filterShape: readonly [number, number, number, number],
  dyShape: readonly number[],
  attrs: Pick<Conv2DBackpropInputAttrs, "strides" | "pad" | "dimRoundingMode" | "dataFormat">,
): [[0, 0], [number, number], [number, number], [0, 0]] | null {
  if (attrs.dataFormat === "NCHW") return null;
  const info = backend_util.computeConv2DInfo([...inputShape], [...filterShape], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, "channelsLast");
  if (info.strideHeight !== 1 || info.strideWidth !== 1) return null;
  if (dyShape[1] !== info.outHeight || dyShape[2] !== info.outWidth) return null;
  const top = info.filterHeight - 1 - info.padInfo.top;
  const left = info.filterWidth - 1 - info.padInfo.left;
  const bottom = info.inHeight - info.outHeight - top + info.filterHeight - 1;
  const right = info.inWidth - info.outWidth - left + info.filterWidth - 1;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) return null;
  return [[0, 0], [top, bottom], [left, right], [0, 0]];
}

let gemmMode: boolean | "always" = true;
/**
 * Turns the GEMM + col2im input gradient on (default: where the measured rule, `preferGemm`, says it
 * is faster), off (the previous paths: XNNPACK Conv2D for stride 1, the stock kernel otherwise; the
 * Winograd input gradient is off with it), or on for every geometry it can handle ("always": tests
 * and benches; Winograd still goes first where it applies).
 */
export function setCol2imInputGradEnabled(on: boolean | "always"): void {
  gemmMode = on;
}
export const col2imInputGradEnabled = (): boolean | "always" => gemmMode;

/**
 * (Decides only where the Winograd input gradient does not apply.)
 * Stride 1: GEMM + col2im only where it measured faster than the composed XNNPACK Conv2D
 * (docs/journal.md, round 8a; 2 threads, per call). It writes and reads a cols matrix of
 * rows*taps floats, 2/co bytes per FLOP, and saves the FLOPs the composed conv spends on dy's zero
 * padding: a win from co >= 64 when the padding is >= 25% of the conv's work (the CNN's conv2,
 * valid: 0.71-0.81x) or from co >= 128; slower with fewer output channels or little padding
 * (3x3x32->32 on 26x26: 1.5x, 3x3x16->4: 3x, 3x3x32->64 'same': 1.14x). Strides > 1: always (the
 * stock kernel is a scalar loop, 0.06x).
 */
function preferGemm(info: backend_util.Conv2DInfo): boolean {
  if (info.strideHeight !== 1 || info.strideWidth !== 1) return true;
  const convOverGemm = (info.inHeight * info.inWidth) / (info.outHeight * info.outWidth); // the composed conv's output pixels per dy pixel
  return info.outChannels >= 64 && (convOverGemm >= 1.25 || info.outChannels >= 128);
}

/** Largest cols scratch (float32 elements, batch*outH*outW x fh*fw*ci): 64 MiB; the wasm heap never shrinks. */
export const COL2IM_MAX_SCRATCH = 16 * 1024 * 1024;

/**
 * The geometry of dx = col2im(dy · Wᵀ), or null where it does not apply (NCHW, a dy that does not
 * match the convolution's output, empty tensors, cols larger than COL2IM_MAX_SCRATCH).
 */
export function planInputGradGemm(
  inputShape: readonly [number, number, number, number],
  filterShape: readonly [number, number, number, number],
  dyShape: readonly number[],
  attrs: Pick<Conv2DBackpropInputAttrs, "strides" | "pad" | "dimRoundingMode" | "dataFormat">,
): backend_util.Conv2DInfo | null {
  if (attrs.dataFormat === "NCHW" || dyShape.length !== 4) return null;
  const info = backend_util.computeConv2DInfo([...inputShape], [...filterShape], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, "channelsLast");
  if (dyShape[0] !== info.batchSize || dyShape[1] !== info.outHeight || dyShape[2] !== info.outWidth || dyShape[3] !== info.outChannels) return null;
  const rows = info.batchSize * info.outHeight * info.outWidth;
  const taps = info.filterHeight * info.filterWidth * info.inChannels;
  if (rows === 0 || taps === 0 || info.outChannels === 0 || info.inHeight * info.inWidth === 0) return null;
  if (rows * taps > COL2IM_MAX_SCRATCH) return null;
  return info;
}

/**
 * dx = col2im(cols) where cols = dy · Wᵀ (dy as [rows, co], W as [fh*fw*ci, co]): image by image
 * (`col2imImages`) where one image's cols fit CONV_IMAGES_MAX_PATCH_BYTES; else one matmul for the
 * whole batch (fitloop's split GEMM, or XNNPACK through the thread gate) and a gather (gemm.wat's
 * `col2im`, or the JS loop below without SIMD). Computes only the 2*rows*taps*co FLOPs of the gradient, where the
 * composed Conv2D also multiplies the zero padding of dy (conv2 of the CNN: 285 vs 399 MFLOP).
 */
function gemmCol2im(backend: WasmHeapBackend, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo, simd: ReturnType<typeof col2imSimd>): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co, filterHeight: fh, filterWidth: fw } = info;
  const rows = batchSize * outHeight * outWidth;
  const taps = fh * fw * ci;
  const kb = backend as unknown as Parameters<typeof runWasm>[1];
  const gemm = ownGemm(backend.wasm, 2 * rows * taps * co);
  const imageCols = 4 * outHeight * outWidth * taps;
  if (simd && gemm && convImagesApplies(imageCols, packedScratchBytes(taps, co))) return col2imImages(backend, gemm, dy, filter, info);
  return withTemps(kb, (keep) => {
    // The stock BatchMatMul takes a scalar loop with transposeB: transpose the (small) filter first.
    const wT = keep(runWasm(Transpose, kb, { x: { ...filter, shape: [taps, co] } }, { perm: [1, 0] }));
    const p = (t: TensorInfo): number => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    // fitloop's SIMD GEMM (split over the kernel threads) below the thread gate's size, or from it when
    // kernel threads run; else XNNPACK on its threads.
    let cols: TensorInfo;
    if (gemm) {
      cols = keep(backend.makeOutput([rows, taps], "float32"));
      splitGemm(gemm, { pa: p(dy), ars: 4 * co, aks: 4, pb: p(wT), ldb: 4 * taps, pc: p(cols), ldc: 4 * taps, m: rows, n: taps, k: co });
    } else {
      cols = keep(runWasm(BatchMatMul, kb, { a: { ...dy, shape: [1, rows, co] }, b: { ...wT, shape: [1, co, taps] } }, { transposeA: false, transposeB: false }));
    }
    const dx = backend.makeOutput([batchSize, inHeight, inWidth, ci], "float32");
    const { top, left } = info.padInfo;
    const { strideHeight: sh, strideWidth: sw } = info;
    if (simd) {
      // Images split over fitloop's kernel threads when a pool runs (one scratch list per part).
      const listBytes = 4 * (fh + fw + fh * fw);
      const split = { align: 1, bytes: 4 * (rows * taps + batchSize * inHeight * inWidth * ci) };
      const scratch = simd.malloc(listBytes * planParts(simd.memory, batchSize, split).length);
      if (!scratch) {
        kb.disposeData(dx.dataId);
        throw new Error("fitloop wasm Conv2DBackpropInput: wasm malloc failed");
      }
      try {
        const [c0, d0] = [p(cols), p(dx)];
        const [colsImage, dxImage] = [4 * outHeight * outWidth * taps, 4 * inHeight * inWidth * ci];
        const args = (start: number, count: number, part: number): [number, number, number, number, number, number, number, number, number, number, number, number, number, number, number] =>
          [c0 + start * colsImage, d0 + start * dxImage, count, inHeight, inWidth, ci, outHeight, outWidth, fh, fw, sh, sw, top, left, scratch + part * listBytes];
        disposeOnThrow(backend, [dx], () => splitRows(simd.memory, "gemm", "col2im", batchSize, args, () => simd.exports.col2im(...args(0, batchSize, 0)), split));
      } finally {
        simd.free(scratch);
      }
    } else {
      col2imJs(backend.wasm.HEAPF32, p(cols) / 4, p(dx) / 4, info); // HEAPF32 after makeOutput, whose malloc may grow the heap
    }
    return dx;
  });
}

/**
 * dx image by image (gemm.wat's `col2imImages`): per image, cols = dy_image · Wᵀ (the packed GEMM,
 * W read as a transposed B: no transpose op) into a scratch that stays in cache, then its gather
 * into dx. The whole-batch cols (the CNN's conv2: 8.9 MB) are written and read beyond the caches of
 * a training step; one image's (139 KiB) stay in L2 (round 11). Images split over fitloop's kernel
 * threads, a scratch per part; the same sums as whole-batch GEMM + col2im (FMA or not, as the GEMM).
 */
function col2imImages(backend: WasmHeapBackend, gemm: NonNullable<ReturnType<typeof ownGemm>>, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co, filterHeight: fh, filterWidth: fw } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const taps = fh * fw * ci;
  const rows = outHeight * outWidth;
  const gemmBytes = Math.ceil(packedScratchBytes(taps, co) / 16) * 16;
  const perPart = Math.ceil((4 * rows * taps) / 16) * 16 + gemmBytes + 4 * (fh + fw + fh * fw);
  const dx = backend.makeOutput([batchSize, inHeight, inWidth, ci], "float32");
  return disposeOnThrow(backend, [dx], () => {
    const p = (t: TensorInfo): number => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    const [pdy, pdx, pw] = [p(dy), p(dx), p(filter)];
    const [dyImage, dxImage] = [4 * rows * co, 4 * inHeight * inWidth * ci];
    runPackedParts(gemm, "col2imImages", batchSize, perPart, CHUNKS_PER_THREAD, (start, count, _part, scratch) =>
      [pdy + start * dyImage, pdx + start * dxImage, count, inHeight, inWidth, ci, outHeight, outWidth, fh, fw, sh, sw, top, left, pw, co, gemmBytes, scratch]);
    return dx;
  });
}

/** The gather of gemm.wat's `col2im` as a JS loop (same sources, same order: oh, then ow ascending). */
function col2imJs(heap: Float32Array, cols: number, dx: number, info: backend_util.Conv2DInfo): void {
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, filterHeight: fh, filterWidth: fw } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const taps = fh * fw * ci;
  const rowSrc: number[] = [];
  const colSrc: number[] = [];
  const src: number[] = [];
  let o = dx;
  for (let b = 0; b < batchSize; b++) {
    for (let ih = 0; ih < inHeight; ih++) {
      rowSrc.length = 0;
      for (let kh = fh - 1; kh >= 0; kh--) {
        const t = ih + top - kh;
        if (t < 0 || t % sh !== 0 || t / sh >= outHeight) continue;
        rowSrc.push(cols + (b * outHeight + t / sh) * outWidth * taps + kh * fw * ci);
      }
      for (let iw = 0; iw < inWidth; iw++) {
        colSrc.length = 0;
        for (let kw = fw - 1; kw >= 0; kw--) {
          const t = iw + left - kw;
          if (t < 0 || t % sw !== 0 || t / sw >= outWidth) continue;
          colSrc.push((t / sw) * taps + kw * ci);
        }
        src.length = 0;
        for (const r of rowSrc) for (const c of colSrc) src.push(r + c);
        for (let c = 0; c < ci; c++) {
          let sum = 0;
          for (const s of src) sum += heap[s + c]!;
          heap[o++] = Math.fround(sum);
        }
      }
    }
  }
}

/**
 * Stride 1 (and a GEMM + col2im that does not apply): dx = conv2d(dy, W'), where
 * W'[i,j,co,ci] = W[fh-1-i, fw-1-j, ci, co] (the filter rotated by 180° with its channel axes
 * swapped) and padding fh-1-top (top), fw-1-left (left), and what makes the output as large as x.
 */
function composedConv(backend: Parameters<typeof runWasm>[1], dy: TensorInfo, filter: TensorInfo, pad: [[0, 0], [number, number], [number, number], [0, 0]]): TensorInfo {
  return withTemps(backend, (keep) => {
    const flipped = keep(runWasm(Reverse, backend, { x: filter }, { dims: [0, 1] }));
    const swapped = keep(runWasm(Transpose, backend, { x: flipped }, { perm: [0, 1, 3, 2] }));
    return runWasm(Conv2D, backend, { x: dy, filter: swapped }, { strides: [1, 1], dilations: [1, 1], pad, dataFormat: "NHWC" });
  });
}

/**
 * Winograd's geometry and GEMM for this input gradient (3x3, stride 1, channels as
 * `winogradInputGradApplies` says, dy matching the convolution's output, fitloop's GEMM taking a
 * product of this size: `ownGemm`), or null. It builds no cols matrix: COL2IM_MAX_SCRATCH does not apply.
 */
function winogradPlan(
  inputShape: readonly [number, number, number, number],
  filterShape: readonly [number, number, number, number],
  dyShape: readonly number[],
  attrs: Pick<Conv2DBackpropInputAttrs, "strides" | "pad" | "dimRoundingMode" | "dataFormat">,
  backend: WasmHeapBackend,
): { info: backend_util.Conv2DInfo; gemm: NonNullable<ReturnType<typeof ownGemm>> } | null {
  if (attrs.dataFormat === "NCHW" || dyShape.length !== 4 || filterShape[0] !== 3 || filterShape[1] !== 3) return null;
  const info = backend_util.computeConv2DInfo([...inputShape], [...filterShape], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, "channelsLast");
  if (dyShape[0] !== info.batchSize || dyShape[1] !== info.outHeight || dyShape[2] !== info.outWidth || dyShape[3] !== info.outChannels) return null;
  if (!winogradInputGradApplies(info) || !col2imSimd(backend.wasm)) return null;
  const gemm = ownGemm(backend.wasm, 2 * info.batchSize * info.outHeight * info.outWidth * 9 * info.inChannels * info.outChannels);
  return gemm ? { info, gemm } : null;
}

/** Which way `wasmConv2DBackpropInput` computes dx (see there). */
export type InputGradPath = "winograd" | "gemm-simd" | "gemm-js" | "conv" | "stock";

/**
 * The path for these inputs on this backend: Winograd where `winogradPlan` applies (3x3, stride 1,
 * 16+ channels; see `wasm-conv-winograd.ts`); else GEMM + col2im (float32 NHWC; stride 1 only where
 * `preferGemm` says so) with the WebAssembly SIMD gather; without SIMD, the composed XNNPACK Conv2D
 * for stride 1 and GEMM + the JS gather for strides > 1 (tfjs-wasm's own kernel is a scalar loop). Where GEMM + col2im does not apply
 * (NCHW, other dtypes, cols above COL2IM_MAX_SCRATCH, switched off): the composed conv for stride 1,
 * else the stock kernel.
 */
export function inputGradPath(dy: TensorInfo, filter: TensorInfo, attrs: Conv2DBackpropInputAttrs, backend: object): InputGradPath {
  return choosePath(dy, filter, attrs, backend).path;
}

/** `inputGradPath`'s path, with Winograd's plan when that is the path (the kernel runs it as planned). */
function choosePath(dy: TensorInfo, filter: TensorInfo, attrs: Conv2DBackpropInputAttrs, backend: object): { path: InputGradPath; winograd?: NonNullable<ReturnType<typeof winogradPlan>> } {
  const applies = dy.shape.length === 4 && filter.shape.length === 4 && attrs.inputShape.length === 4 && dy.dtype === "float32" && filter.dtype === "float32";
  if (!applies) return { path: "stock" };
  const filterShape = filter.shape as [number, number, number, number];
  const winograd = gemmMode && "makeOutput" in backend ? winogradPlan(attrs.inputShape, filterShape, dy.shape, attrs, backend as unknown as WasmHeapBackend) : null;
  if (winograd) return { path: "winograd", winograd };
  const info = gemmMode && "makeOutput" in backend ? planInputGradGemm(attrs.inputShape, filterShape, dy.shape, attrs) : null;
  if (info && (gemmMode === "always" || preferGemm(info))) {
    if (col2imSimd((backend as WasmHeapBackend).wasm)) return { path: "gemm-simd" };
    if (info.strideHeight !== 1 || info.strideWidth !== 1) return { path: "gemm-js" };
  }
  return { path: planInputGradConv(attrs.inputShape, filterShape, dy.shape, attrs) ? "conv" : "stock" };
}

/** tfjs-wasm's own Conv2DBackpropInput is a scalar loop; this takes `inputGradPath`'s path. */
export function wasmConv2DBackpropInput({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, filter } = inputs;
  if (!dy || !filter) throw new Error("fitloop wasm Conv2DBackpropInput: inputs dy and filter are required");
  const a = attrs as unknown as Conv2DBackpropInputAttrs;
  const { path, winograd } = choosePath(dy, filter, a, backend);
  if (path === "stock") return runWasm(Conv2DBackpropInput, backend, inputs, attrs);
  const filterShape = filter.shape as [number, number, number, number];
  if (winograd) return winogradInputGrad(backend as unknown as WasmHeapBackend, winograd.gemm, dy, filter, winograd.info);
  if (path === "conv") return composedConv(backend, dy, filter, planInputGradConv(a.inputShape, filterShape, dy.shape, a)!);
  const heapBackend = backend as unknown as WasmHeapBackend;
  const info = planInputGradGemm(a.inputShape, filterShape, dy.shape, a)!;
  return gemmCol2im(heapBackend, dy, filter, info, path === "gemm-simd" ? col2imSimd(heapBackend.wasm) : undefined);
}

export const wasmConv2DBackpropInputConfig: KernelConfig = { kernelName: Conv2DBackpropInput, backendName: WASM, kernelFunc: asKernelFunc(wasmConv2DBackpropInput) };
