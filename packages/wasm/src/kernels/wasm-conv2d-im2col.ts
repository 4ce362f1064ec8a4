import { backend_util, util, type TensorInfo } from "@tensorflow/tfjs-core";
import { gemmSimd, type EmscriptenWasm } from "./simd/index.js";
import { im2colNhwc, im2colT } from "./wasm-im2col.js";
import { IM2COL_NHWC_MIN_CHANNELS } from "./wasm-conv2d-backprop-filter.js";
import { kernelFlops, wasmThreadMinFlops, withWasmThreads } from "./wasm-threadpool.js";
import { winogradConv, winogradForwardApplies } from "./wasm-conv-winograd.js";
import { disposeOnThrow, type KernelArgs, type WasmHeapBackend } from "./wasm-util.js";
import { CHUNKS_PER_THREAD, poolFor, splitRows } from "./kernel-threads.js";
import { CONV_IMAGES_MAX_PATCH_BYTES, convImagesApplies, ownGemm, packedScratchBytes, runPackedParts, splitGemm } from "./wasm-gemm-split.js";

export { CONV_IMAGES_MAX_PATCH_BYTES };

/**
 * Forward convolutions on fitloop's SIMD GEMM, for `Conv2D` and `FusedConv2D` (bias, linear or relu)
 * on wasm. 3x3 stride-1 convolutions with 16+ channels go first to Winograd (`wasm-conv-winograd.ts`,
 * wherever fitloop's GEMM takes the product, also without kernel threads). The rest as im2col + GEMM:
 * with few filter taps (fh*fw*ci) below the thread gate's size, and with any taps
 * when fitloop's kernel threads run. XNNPACK's convolution is slow when the input has one or two
 * channels (the first layer on MNIST: 2.2 ms for 25 MFLOP, ~11 GFLOP/s), while patchesᵀ [taps, rows]
 * is small there and the GEMM reads it through its strides (A = patches, no copy) at ~30 GFLOP/s
 * (round 8). With more taps the patches are large (the CNN's conv2: 8.9 MB), but fitloop's split
 * packed GEMM on 2 threads outruns XNNPACK's threaded convolution by more than writing them costs
 * (round 10e: CNN step 3-5 % faster, with or without FMA). Without kernel threads XNNPACK keeps those.
 * From IM2COL_NHWC_MIN_CHANNELS input channels it runs image by image (`convImages`, round 11), or,
 * for images whose patches exceed CONV_IMAGES_MAX_PATCH_BYTES (or with `setConvImagesEnabled(false)`),
 * writes the whole batch's patches in x's NHWC order (runs of ci floats, no transpose of x), read as a
 * row-major A (the CNN's conv2 forward 2.6-2.8 vs 3.3-3.5 ms with patchesᵀ, round 11).
 */
export const IM2COL_CONV_MAX_TAPS = 27;
/**
 * ... and at least this many output channels (the im2col path only; Winograd, checked first, takes 16+): with fewer, each patch element loaded feeds too few
 * columns and XNNPACK is faster (measured: [64,26,26,2]x[3,3,2,8] 1.10 vs 0.62 ms; [32,32,32,3]x
 * [3,3,3,16] 1.56 vs 1.25; [64,28,28,1]x[3,3,1,32] 2.3 vs 5.1; [8,64,64,3]x[3,3,3,32] 2.2 vs 2.6).
 */
export const IM2COL_CONV_MIN_OUT_CHANNELS = 32;

let enabled = true;
/** Turns the im2col forward convolution on (default) or off (XNNPACK for every Conv2D); for benches and tests. */
export function setIm2colConvEnabled(on: boolean): void {
  enabled = on;
}
export const im2colConvEnabled = (): boolean => enabled;

interface ConvAttrs {
  strides: number | [number, number];
  pad: backend_util.ExplicitPadding | "valid" | "same" | number;
  dataFormat?: "NHWC" | "NCHW";
  dilations?: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
  activation?: string;
}

/** The convolution by im2col + GEMM, or undefined where it does not apply (the caller runs XNNPACK). */
export function im2colConv2D(args: KernelArgs, kernelName: string): TensorInfo | undefined {
  if (!enabled) return undefined;
  const { x, filter, bias, preluActivationWeights } = args.inputs;
  const attrs = (args.attrs ?? {}) as unknown as ConvAttrs;
  if (!x || !filter || x.dtype !== "float32" || filter.dtype !== "float32" || x.shape.length !== 4 || filter.shape.length !== 4) return undefined;
  if ((attrs.dataFormat ?? "NHWC") !== "NHWC" || preluActivationWeights) return undefined;
  const activation = attrs.activation ?? "linear";
  if (activation !== "linear" && activation !== "relu") return undefined;
  const [fh, fw, ci, co] = filter.shape as [number, number, number, number];
  if (x.shape[3] !== ci) return undefined;
  if (bias && (bias.dtype !== "float32" || util.sizeFromShape(bias.shape) !== co)) return undefined;
  const flops = kernelFlops(kernelName, args.inputs, args.attrs ?? {});
  const backend = args.backend as unknown as WasmHeapBackend;
  const simd = gemmSimd(backend.wasm);
  if (!simd) return undefined;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    [fh, fw, ci, co],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
  const rows = info.batchSize * info.outHeight * info.outWidth;
  if (rows === 0 || co === 0) return undefined;
  const p = (t: TensorInfo): number => backend.dataIdMap.get(t.dataId)!.memoryOffset;
  const [pb, relu] = [bias ? p(bias) : 0, activation === "relu" ? 1 : 0];
  // 3x3 stride 1 with 16+ channels: Winograd wherever fitloop's GEMM takes the product (`ownGemm`:
  // below the thread gate always, above it with kernel threads or an XNNPACK without threads: 1.9-2.6x
  // XNNPACK on one thread), from 16 output channels (im2col below needs 32, IM2COL_CONV_MIN_OUT_CHANNELS)
  if (winogradForwardApplies(info) && ownGemm(backend.wasm, flops)) return withWasmThreads(args.backend, flops, () => winogradConv(backend, simd, x, filter, info, pb, relu));
  // few taps below the thread gate always; any other size only with fitloop's kernel threads (its
  // split GEMM against XNNPACK's threaded convolution: CNN step 3-5 % faster, round 10e)
  const fewTaps = fh * fw * ci <= IM2COL_CONV_MAX_TAPS && flops < wasmThreadMinFlops();
  if (!fewTaps && !poolFor(simd.memory)) return undefined;
  if (co < IM2COL_CONV_MIN_OUT_CHANNELS) return undefined;
  return withWasmThreads(args.backend, flops, () => {
    const taps = fh * fw * ci;
    // many input channels: image by image (patches in cache, then GEMM, bias and relu: `convImages`)
    const nhwcRuns = ci >= IM2COL_NHWC_MIN_CHANNELS;
    if (nhwcRuns && convImagesApplies(4 * info.outHeight * info.outWidth * taps, packedScratchBytes(co, taps))) return convImages(backend, simd, x, filter, info, pb, relu);
    // else whole-batch patches: in x's NHWC order (runs of ci floats, read as a row-major A), or
    // patchesᵀ from x transposed to [ci, b, H, W] for few channels
    const nhwc = nhwcRuns ? im2colNhwc(args.backend, x, info) : undefined;
    const patches = nhwc ?? im2colT(args.backend, x, info);
    try {
      const out = backend.makeOutput(info.outShape, "float32");
      return disposeOnThrow(backend, [out], () => {
        // C[rows, co] = patches[rows, taps] · filter[taps, co]; patches(m, k) = patchesᵀ[k, m].
        splitGemm(simd, { pa: p(patches), ars: nhwc ? 4 * taps : 4, aks: nhwc ? 4 : 4 * rows, pb: p(filter), ldb: 4 * co, pc: p(out), ldc: 4 * co, m: rows, n: co, k: taps });
        if (bias || activation === "relu") {
          // a memory-bound pass over the output: rows split over fitloop's kernel threads
          const pc = p(out);
          splitRows(simd.memory, "gemm", "biasAct", rows, (start, count) => [pc + start * 4 * co, count, co, pb, relu], () => simd.exports.biasAct(pc, rows, co, pb, relu), {
            align: 1,
            bytes: 8 * rows * co,
            memoryBound: true,
          });
        }
        return out;
      });
    } finally {
      backend.disposeData(patches.dataId);
    }
  });
}

/**
 * The forward convolution image by image (`gemm.wat`'s `convImages`): for each image its NHWC
 * patches into a scratch that stays in cache, the packed GEMM into its output rows, then bias and
 * relu on them. Whole-batch im2col writes and reads the patches of every image (the CNN's conv2:
 * 8.9 MB) beyond the caches of a training step; per image they never leave L2 (round 11). Images
 * split over fitloop's kernel threads (a scratch per part); each output element is one chain over k,
 * the same bits as one call.
 */
function convImages(backend: WasmHeapBackend, simd: NonNullable<ReturnType<typeof gemmSimd>>, x: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo, pb: number, relu: number): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co, filterHeight: fh, filterWidth: fw } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, left } = info.padInfo;
  const taps = fh * fw * ci;
  const rows = outHeight * outWidth;
  const perPart = Math.ceil((4 * rows * taps) / 16) * 16 + packedScratchBytes(co, taps);
  const out = backend.makeOutput(info.outShape, "float32");
  return disposeOnThrow(backend, [out], () => {
    const p = (t: TensorInfo): number => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    const [px, po, pw] = [p(x), p(out), p(filter)];
    const [xImage, outImage] = [4 * inHeight * inWidth * ci, 4 * rows * co];
    runPackedParts(simd, "convImages", batchSize, perPart, CHUNKS_PER_THREAD, (start, count, _part, scratch) =>
      [px + start * xImage, po + start * outImage, count, inHeight, inWidth, ci, outHeight, outWidth, fh, fw, sh, sw, dh, dw, top, left, pw, co, pb, relu, scratch]);
    return out;
  });
}
