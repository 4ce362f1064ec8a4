import type { backend_util, TensorInfo } from "@tensorflow/tfjs-core";
import type { GemmSimdExports, SimdKernels } from "./simd/index.js";
import { CHUNKS_PER_THREAD } from "./kernel-threads.js";
import { addPartials, convImagesEnabled, packedGemmEnabled, runPackedParts } from "./wasm-gemm-split.js";
import { disposeOnThrow, type WasmHeapBackend } from "./wasm-util.js";

/**
 * 3x3 convolutions with stride 1 by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016,
 * `gemm.wat`'s `winogradImages` and `winogradFilterGradImages`): per image, 4x4 input tiles
 * transformed, 16 products of [tiles, ci] by [ci, co] on the packed GEMM, 2x2 output tiles
 * transformed back. 2.25x fewer multiplications than the direct convolution (minus the tiles'
 * padding: the CNN's conv2, 11x11 outputs in 6x6 tiles of 2x2, 1.89x). For the forward convolution
 * (bias, relu; with kernel threads), the input gradient (the same convolution of dy with the filter
 * rotated by 180 degrees, its channel axes swapped) and the filter gradient (the transposed
 * transforms; where fitloop's GEMM takes the product, `ownGemm`). Sums come in another order than
 * the direct convolution's: results differ from it (and from cpu) in the last bits, ~1e-6 relative
 * here. Deterministic: the forward and input gradient give the same bits whatever the thread count;
 * the filter gradient adds one partial sum per part in part order, so its bits depend on the number
 * of parts (min(threads, images)), as the direct filter gradient's do.
 */
export const WINOGRAD_MIN_CHANNELS = 16;
/**
 * Largest scratch of one part (an image's transformed tiles and products; for the filter gradient
 * also the part's dU): beyond it the direct path runs.
 */
export const WINOGRAD_MAX_IMAGE_BYTES = 2 * 1024 * 1024;

let enabled = true;
/** Turns the Winograd convolutions on (default) or off (the direct image-by-image kernels); for benches and tests. */
export function setWinogradEnabled(on: boolean): void {
  enabled = on;
}
export const winogradEnabled = (): boolean => enabled;

/** `gemm.wat`'s (and gemm-fma.wat's) Winograd exports. */
export interface WinogradExports {
  /** U = G g Gᵀ of a [3, 3, ci, co] filter, packed as the 16 products' B operands (flip: the input gradient's filter). */
  winogradFilter(w: number, ci: number, co: number, flip: number, dst: number): void;
  winogradImages(
    x: number, out: number, images: number, inH: number, inW: number, ci: number, outH: number, outW: number,
    top: number, left: number, u: number, co: number, bias: number, relu: number, scratch: number,
  ): void;
  /** dU (16 blocks [ci, co]) (+)= the filter gradient's products over `images` images (see the .wat). */
  winogradFilterGradImages(
    x: number, dy: number, du: number, images: number, inH: number, inW: number, ci: number, outH: number, outW: number,
    top: number, left: number, co: number, accIn: number, scratch: number,
  ): void;
  /** dW [3, 3, ci, co] = Gᵀ dU G. */
  winogradFilterGradOut(du: number, ci: number, co: number, dw: number): void;
}

/** A convolution of `images` images of inH x inW x ci into outH x outW x co, 3x3, stride 1. */
interface WinogradGeometry {
  images: number;
  inH: number;
  inW: number;
  ci: number;
  outH: number;
  outW: number;
  co: number;
  top: number;
  left: number;
}

const tilesOf = (g: WinogradGeometry): number => Math.ceil(g.outH / 2) * Math.ceil(g.outW / 2);
const imageScratchBytes = (g: WinogradGeometry): number => 64 * tilesOf(g) * (g.ci + g.co) + 256;

function applies(g: WinogradGeometry): boolean {
  return (
    enabled &&
    convImagesEnabled() &&
    packedGemmEnabled() &&
    g.ci >= WINOGRAD_MIN_CHANNELS &&
    g.co >= WINOGRAD_MIN_CHANNELS &&
    g.ci % 4 === 0 &&
    g.co % 4 === 0 &&
    g.images > 0 &&
    g.outH > 0 &&
    g.outW > 0 &&
    imageScratchBytes(g) <= WINOGRAD_MAX_IMAGE_BYTES
  );
}

/** Whether the forward convolution of `info` runs by Winograd: 3x3, stride 1, no dilation, channels as `applies` says. */
export function winogradForwardApplies(info: backend_util.Conv2DInfo): boolean {
  return info.filterHeight === 3 && info.filterWidth === 3 && info.strideHeight === 1 && info.strideWidth === 1 && info.dilationHeight === 1 && info.dilationWidth === 1 && applies(forwardGeometry(info));
}

/** Whether the input gradient of `info`'s convolution runs by Winograd (the same conditions, channels swapped). */
export function winogradInputGradApplies(info: backend_util.Conv2DInfo): boolean {
  return info.filterHeight === 3 && info.filterWidth === 3 && info.strideHeight === 1 && info.strideWidth === 1 && info.dilationHeight === 1 && info.dilationWidth === 1 && applies(inputGradGeometry(info));
}

/**
 * Largest transformed tiles of one image (V and the packed dM) for the filter gradient: beyond it
 * they leave L2 between the transforms and the 16 products, and the direct kernel is as fast
 * (32x32x32 -> 32 images, 1 MiB: 0.96x; 26x26x16 -> 32, 519 KiB: 2.0x; 16x16x64 -> 64, 512 KiB: 3.4x).
 */
export const WINOGRAD_FILTER_GRAD_MAX_TILE_BYTES = 640 * 1024;

/** Whether the filter gradient of `info`'s convolution runs by Winograd (as the forward, its tiles within WINOGRAD_FILTER_GRAD_MAX_TILE_BYTES). */
export function winogradFilterGradApplies(info: backend_util.Conv2DInfo): boolean {
  if (!winogradForwardApplies(info)) return false;
  const g = forwardGeometry(info);
  return filterGradPartBytes(g) - duBytesOf(g) <= WINOGRAD_FILTER_GRAD_MAX_TILE_BYTES && filterGradPartBytes(g) <= WINOGRAD_MAX_IMAGE_BYTES;
}

/** A filter-gradient part's scratch: its dU (16 blocks of ci x co), V, the packed dM, the GEMM's edge tile. */
const duBytesOf = (g: WinogradGeometry): number => Math.ceil((16 * 4 * g.ci * g.co) / 64) * 64;
const filterGradPartBytes = (g: WinogradGeometry): number => duBytesOf(g) + 64 * tilesOf(g) * (g.ci + Math.ceil(g.co / 8) * 8) + 256;

function forwardGeometry(info: backend_util.Conv2DInfo): WinogradGeometry {
  const { batchSize: images, inHeight: inH, inWidth: inW, inChannels: ci, outHeight: outH, outWidth: outW, outChannels: co } = info;
  return { images, inH, inW, ci, outH, outW, co, top: info.padInfo.top, left: info.padInfo.left };
}

/** dx = the convolution of dy (padded by 2 - top, 2 - left) with the rotated, channel-swapped filter. */
function inputGradGeometry(info: backend_util.Conv2DInfo): WinogradGeometry {
  const { batchSize: images, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  return { images, inH: outHeight, inW: outWidth, ci: outChannels, outH: inHeight, outW: inWidth, co: inChannels, top: 2 - info.padInfo.top, left: 2 - info.padInfo.left };
}

type Gemm = SimdKernels<GemmSimdExports>;

/** Runs `winogradImages` over the images (split over the kernel threads), the filter transformed once on this thread. */
function run(backend: WasmHeapBackend, gemm: Gemm, g: WinogradGeometry, x: TensorInfo, filter: TensorInfo, flip: number, bias: number, relu: number): TensorInfo {
  const exports = gemm.exports as unknown as GemmSimdExports & WinogradExports;
  const uBytes = 16 * 4 * g.ci * Math.ceil(g.co / 8) * 8;
  const out = backend.makeOutput([g.images, g.outH, g.outW, g.co], "float32");
  return disposeOnThrow(backend, [out], () => {
    const u = gemm.malloc(uBytes + 16);
    if (!u) throw new Error(`fitloop wasm Winograd convolution: could not allocate ${uBytes} bytes for the transformed filter`);
    try {
      const p = (t: TensorInfo): number => backend.dataIdMap.get(t.dataId)!.memoryOffset;
      const pu = Math.ceil(u / 16) * 16;
      const [fci, fco] = flip ? [g.co, g.ci] : [g.ci, g.co]; // the filter's own [3, 3, ci, co]
      exports.winogradFilter(p(filter), fci, fco, flip, pu);
      const [px, po] = [p(x), p(out)];
      const [xImage, outImage] = [4 * g.inH * g.inW * g.ci, 4 * g.outH * g.outW * g.co];
      runPackedParts(gemm, "winogradImages", g.images, imageScratchBytes(g), CHUNKS_PER_THREAD, (start, count, _part, scratch) =>
        [px + start * xImage, po + start * outImage, count, g.inH, g.inW, g.ci, g.outH, g.outW, g.top, g.left, pu, g.co, bias, relu, scratch]);
      return out;
    } finally {
      gemm.free(u);
    }
  });
}

/** The forward convolution (`winogradForwardApplies(info)`), bias at byte `bias` (0: none), relu when `relu` is 1. */
export function winogradConv(backend: WasmHeapBackend, gemm: Gemm, x: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo, bias: number, relu: number): TensorInfo {
  return run(backend, gemm, forwardGeometry(info), x, filter, 0, bias, relu);
}

/**
 * dW of the convolution `info` from x and dy (`winogradFilterGradApplies(info)`): per part of the
 * images (one per kernel thread) dU = the sum over its images of V_pᵀ · dM_p (part 0 in its own
 * scratch, the others in theirs), the parts' dU added in part order (the sum depends on the thread
 * count, not on scheduling), then dW = Gᵀ dU G on this thread.
 */
export function winogradFilterGrad(backend: WasmHeapBackend, gemm: Gemm, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const g = forwardGeometry(info);
  const exports = gemm.exports as unknown as GemmSimdExports & WinogradExports;
  const duBytes = duBytesOf(g);
  const perPart = filterGradPartBytes(g);
  const out = backend.makeOutput([3, 3, g.ci, g.co], "float32");
  return disposeOnThrow(backend, [out], () => {
    const p = (t: TensorInfo): number => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    const [px, pdy, po] = [p(x), p(dy), p(out)];
    const [xImage, dyImage] = [4 * g.inH * g.inW * g.ci, 4 * g.outH * g.outW * g.co];
    runPackedParts(
      gemm,
      "winogradFilterGradImages",
      g.images,
      perPart,
      1,
      (start, count, _part, scratch) => [px + start * xImage, pdy + start * dyImage, scratch, count, g.inH, g.inW, g.ci, g.outH, g.outW, g.top, g.left, g.co, 0, scratch + duBytes],
      (scratch, parts, stride) => {
        addPartials(gemm.memory, scratch, scratch, parts, stride, 16 * g.ci * g.co);
        exports.winogradFilterGradOut(scratch, g.ci, g.co, po);
      },
    );
    return out;
  });
}

/** dx of the convolution `info` from dy (`winogradInputGradApplies(info)`). */
export function winogradInputGrad(backend: WasmHeapBackend, gemm: Gemm, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  return run(backend, gemm, inputGradGeometry(info), dy, filter, 1, 0, 0);
}
