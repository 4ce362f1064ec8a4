import type { backend_util, TensorInfo } from "@tensorflow/tfjs-core";
import type { GemmSimdExports, SimdKernels } from "./simd/index.js";
import { CHUNKS_PER_THREAD } from "./kernel-threads.js";
import { addPartials, convImagesEnabled, packedGemmEnabled, runPackedParts } from "./wasm-gemm-split.js";
import { disposeOnThrow, type WasmHeapBackend } from "./wasm-util.js";

/**
 * 3x3 convolutions with stride 1 by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016,
 * `gemm.wat`'s `winogradImages`, `winogradInputGradImages`, `winogradFilterGradImages`): per image,
 * 4x4 input tiles transformed, 16 products of [tiles, ci] by [ci, co] on the packed GEMM, 2x2 output
 * tiles transformed back (the input gradient's products: [tiles, co] by [co, ci]). For float32 NHWC
 * 3x3 convolutions, stride 1, no dilation, 16+ input and output channels (multiples of 4), one image's
 * transformed tiles and products within WINOGRAD_MAX_IMAGE_BYTES (the filter gradient's tiles also
 * within WINOGRAD_FILTER_GRAD_MAX_TILE_BYTES), the forward with a linear or relu activation; off with
 * `setWinogradEnabled(false)`, `setConvImagesEnabled(false)` or `setPackedGemmEnabled(false)`. 2.25x fewer multiplications than the direct convolution (minus the tiles'
 * padding: the CNN's conv2, 11x11 outputs in 6x6 tiles of 2x2, 1.89x). The input and filter
 * gradients run the transposed transforms on the same tiles. Wherever fitloop's GEMM takes the
 * product (`ownGemm`: below the thread gate's ~100 MFLOP always, above it with kernel threads or
 * an XNNPACK without threads). Sums come in another order than the direct convolution's: results
 * differ from it (and from cpu) in the last bits, within 1e-5 of the largest magnitude in the tests. Deterministic: the forward and input gradient give the same bits whatever the
 * thread count; the filter gradient adds one partial sum per part in part order, so its bits depend
 * on the number of parts (min(threads, images)), as the direct filter gradient's do.
 */
/** Fewest input and output channels a convolution needs to run by Winograd (both also multiples of 4). */
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
/** Whether the Winograd convolutions are on (`setWinogradEnabled`). */
export const winogradEnabled = (): boolean => enabled;

/** `gemm.wat`'s (and gemm-fma.wat's) Winograd exports. */
export interface WinogradExports {
  /** U = G g Gᵀ of a [3, 3, ci, co] filter, packed as the 16 products' B operands (transpose: U_pᵀ, the input gradient's). */
  winogradFilter(w: number, ci: number, co: number, transpose: number, dst: number): void;
  winogradImages(
    x: number, out: number, images: number, inH: number, inW: number, ci: number, outH: number, outW: number,
    top: number, left: number, u: number, co: number, bias: number, relu: number, scratch: number,
  ): void;
  /** dx of `images` images from dy by the transposed transforms (see the .wat). */
  winogradInputGradImages(
    dy: number, dx: number, images: number, inH: number, inW: number, ci: number, outH: number, outW: number,
    top: number, left: number, u: number, co: number, scratch: number,
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

/** Whether the input gradient of `info`'s convolution runs by Winograd (the forward's conditions: it runs on the forward's tiles). */
export function winogradInputGradApplies(info: backend_util.Conv2DInfo): boolean {
  return winogradForwardApplies(info);
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

type Gemm = SimdKernels<GemmSimdExports>;

/**
 * Runs `fn` over the images (split over the kernel threads) from `src` into a new [images, H, W, C]
 * output, the filter transformed and packed once on this thread first (the input gradient's
 * transposed). `args(src, out, u, start, count, scratch)` are one part's arguments.
 */
function run(
  backend: WasmHeapBackend,
  gemm: Gemm,
  fn: "winogradImages" | "winogradInputGradImages",
  g: WinogradGeometry,
  src: TensorInfo,
  filter: TensorInfo,
  outShape: [number, number, number, number],
  args: (src: number, out: number, u: number, start: number, count: number, scratch: number) => number[],
): TensorInfo {
  const exports = gemm.exports as unknown as GemmSimdExports & WinogradExports;
  const transpose = fn === "winogradInputGradImages" ? 1 : 0;
  const [k, n] = transpose ? [g.co, g.ci] : [g.ci, g.co];
  const uBytes = 16 * 4 * k * Math.ceil(n / 8) * 8;
  const out = backend.makeOutput(outShape, "float32");
  return disposeOnThrow(backend, [out], () => {
    const u = gemm.malloc(uBytes + 16);
    if (!u) throw new Error(`fitloop wasm Winograd convolution: could not allocate ${uBytes} bytes for the transformed filter`);
    try {
      const p = (t: TensorInfo): number => backend.dataIdMap.get(t.dataId)!.memoryOffset;
      const pu = Math.ceil(u / 16) * 16;
      exports.winogradFilter(p(filter), g.ci, g.co, transpose, pu);
      const [ps, po] = [p(src), p(out)];
      runPackedParts(gemm, fn, g.images, imageScratchBytes(g), CHUNKS_PER_THREAD, (start, count, _part, scratch) => args(ps, po, pu, start, count, scratch));
      return out;
    } finally {
      gemm.free(u);
    }
  });
}

/** The forward convolution (`winogradForwardApplies(info)`), bias at byte `bias` (0: none), relu when `relu` is 1. */
export function winogradConv(backend: WasmHeapBackend, gemm: Gemm, x: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo, bias: number, relu: number): TensorInfo {
  const g = forwardGeometry(info);
  const [xImage, outImage] = [4 * g.inH * g.inW * g.ci, 4 * g.outH * g.outW * g.co];
  return run(backend, gemm, "winogradImages", g, x, filter, [g.images, g.outH, g.outW, g.co], (px, po, pu, start, count, scratch) =>
    [px + start * xImage, po + start * outImage, count, g.inH, g.inW, g.ci, g.outH, g.outW, g.top, g.left, pu, g.co, bias, relu, scratch]);
}

/**
 * dx of the convolution `info` from dy (`winogradInputGradApplies(info)`): the transposed transforms
 * on dy's own tiles (as many products as the forward; a convolution of dy padded by two would need
 * the tiles of dx, 7x7 instead of 6x6 for the CNN's conv2).
 */
export function winogradInputGrad(backend: WasmHeapBackend, gemm: Gemm, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const g = forwardGeometry(info);
  const [xImage, dyImage] = [4 * g.inH * g.inW * g.ci, 4 * g.outH * g.outW * g.co];
  return run(backend, gemm, "winogradInputGradImages", g, dy, filter, [g.images, g.inH, g.inW, g.ci], (pdy, pdx, pu, start, count, scratch) =>
    [pdy + start * dyImage, pdx + start * xImage, count, g.inH, g.inW, g.ci, g.outH, g.outW, g.top, g.left, pu, g.co, scratch]);
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
