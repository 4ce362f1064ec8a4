import { backend_util, type KernelBackend, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { gemmSimd, type EmscriptenWasm } from "./simd/index.js";
import { im2colT } from "./wasm-im2col.js";
import { addPartials, packedGemmEnabled, packedScratchBytes, runPackedParts } from "./wasm-gemm-split.js";
import { IM2COL_CONV_MAX_TAPS } from "./wasm-conv2d-im2col.js";
import { asKernelFunc, disposeOnThrow, type KernelArgs, WASM, type WasmHeapBackend } from "./wasm-util.js";

/**
 * The filter and bias gradients of a first convolution layer with bias + ReLU, with the ReLU
 * gradient folded in: inputs x (the layer's input), dy (the gradient of its output y) and y; attrs
 * strides, pad, filterShape; outputs [dW (filterShape), db [co]]. The separate path writes
 * dz = dy * step(y) for the whole batch (the MNIST CNN's first layer: 5.5 MB), then reads it again
 * for dW and the bias; here dz is made block by block in cache and consumed at once (gemm.wat's
 * `filterGradMasked`). For layers whose input needs no gradient (the data): the layer's gradient
 * uses it only then (wasm-conv-bias-relu.ts), since the input gradient would need dz whole.
 * Few taps only (patchesᵀ, `im2colT`); pixels split over the kernel threads in one part per thread,
 * partial dW and float64 bias sums added in part order (split, the same dW bits as `splitGemmDepth`
 * over dz; on one thread the packed GEMM's, where the separate path may take the round-5 kernel for
 * so few rows of dW: equal without FMA, within FMA's last bits with it). Off with the packed GEMM
 * (`setPackedGemmEnabled(false)`). An empty batch gives zeros.
 */
export const CONV_FILTER_GRAD_RELU = "FitloopConv2DReluFilterGrad";

/** Pixels per block of dz: 1024 x 32 channels = 128 KiB, in L2 with its packed copy. */
export const FILTER_GRAD_RELU_BLOCK_ROWS = 1024;

interface Attrs {
  strides: [number, number] | number;
  pad: "valid" | "same";
  filterShape: [number, number, number, number];
}

/** Whether the fused gradient applies: float32 rank-4 x, few taps, output channels a multiple of 4, WebAssembly SIMD. */
export function filterGradReluApplies(backend: object, x: { shape: readonly number[]; dtype: string }, filterShape: readonly number[]): boolean {
  if (x.dtype !== "float32" || x.shape.length !== 4 || filterShape.length !== 4 || !("wasm" in backend)) return false;
  const [fh, fw, ci, co] = filterShape as [number, number, number, number];
  return fh * fw * ci <= IM2COL_CONV_MAX_TAPS && co > 0 && co % 4 === 0 && packedGemmEnabled() && gemmSimd((backend as WasmHeapBackend).wasm) !== undefined;
}

export function wasmConvReluFilterGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { x, dy, y } = inputs as Record<string, TensorInfo>;
  const a = attrs as unknown as Attrs;
  if (!x || !dy || !y || !filterGradReluApplies(backend, x, a.filterShape)) throw new Error(`fitloop wasm ${CONV_FILTER_GRAD_RELU}: needs float32 x, dy, y with few filter taps and output channels a multiple of 4`);
  const b = backend as unknown as WasmHeapBackend;
  const gemm = gemmSimd(b.wasm)!;
  const [fh, fw, ci, co] = a.filterShape;
  const info = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, undefined, false, "channelsLast");
  if (dy.shape.join() !== info.outShape.join() || y.shape.join() !== info.outShape.join()) throw new Error(`fitloop wasm ${CONV_FILTER_GRAD_RELU}: dy and y must have the output's shape [${info.outShape.join(",")}]`);
  const taps = fh * fw * ci;
  const rows = info.batchSize * info.outHeight * info.outWidth;
  const block = FILTER_GRAD_RELU_BLOCK_ROWS;
  const round = (n: number, to: number): number => Math.ceil(n / to) * to;
  // each part's scratch: its float64 bias sums, its partial dW (part 0 sums into dW itself), a block of dz, the GEMM's scratch
  const [accBytes, partialBytes] = [round(8 * co, 64), round(4 * taps * co, 64)];
  const perPart = accBytes + partialBytes + round(4 * block * co, 16) + packedScratchBytes(co, block);
  if (rows === 0) {
    // an empty sum: zeros (makeOutput does not clear)
    const zeros = [b.makeOutput([fh, fw, ci, co], "float32"), b.makeOutput([co], "float32")];
    for (const t of zeros) new Float32Array(gemm.memory.buffer, b.dataIdMap.get(t.dataId)!.memoryOffset, t.shape.reduce((n, d) => n * d, 1)).fill(0);
    return zeros;
  }
  const patches = im2colT(backend as unknown as KernelBackend, x, info); // [taps, rows]: A(tap, pixel) at tap*4*rows + 4*pixel
  try {
    const dw = b.makeOutput([fh, fw, ci, co], "float32");
    const db = disposeOnThrow(b, [dw], () => b.makeOutput([co], "float32"));
    return disposeOnThrow(b, [dw, db], () => {
      const p = (t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset;
      const [pa, pdy, py, pw] = [p(patches), p(dy), p(y), p(dw)];
      runPackedParts(
        gemm,
        "filterGradMasked",
        rows,
        perPart,
        1,
        (start, count, part, s) => {
          new Float64Array(gemm.memory.buffer, s, co).fill(0);
          return [pa + 4 * start, 4 * rows, 4, pdy + 4 * co * start, py + 4 * co * start, part === 0 ? pw : s + accBytes, 4 * co, taps, co, count, block, s, s + accBytes + partialBytes, 0];
        },
        (s, parts, stride) => {
          addPartials(gemm.memory, pw, s + accBytes, parts, stride, taps * co);
          const sums = new Float64Array(gemm.memory.buffer);
          const out = new Float32Array(gemm.memory.buffer, p(db), co);
          for (let c = 0; c < co; c++) {
            let total = 0;
            for (let part = 0; part < parts; part++) total += sums[(s + part * stride) / 8 + c]!;
            out[c] = total;
          }
        },
      );
      return [dw, db];
    });
  } finally {
    b.disposeData(patches.dataId);
  }
}

export const wasmConvReluFilterGradConfig: KernelConfig = { kernelName: CONV_FILTER_GRAD_RELU, backendName: WASM, kernelFunc: asKernelFunc(wasmConvReluFilterGrad) };
