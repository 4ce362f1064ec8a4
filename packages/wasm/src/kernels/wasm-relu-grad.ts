import { engine, getGradient, getKernel, registerGradient, registerKernel, Relu, util, zerosLike, type GradConfig, type KernelConfig, type NamedAttrMap, type Tensor, type TensorInfo } from "@tensorflow/tfjs-core";
import { gemmSimd, reluGradSimd, type EmscriptenWasm } from "./simd/index.js";
import { asKernelFunc, disposeOnThrow, type KernelArgs, WASM, type WasmHeapBackend } from "./wasm-util.js";
import { planParts, splitRows } from "./kernel-threads.js";

/**
 * The ReLU gradient on wasm as one kernel. tfjs-core's gradient of `Relu` is
 * `mul(dy, cast(step(x), 'float32'))`: three full-size kernels (Step, Cast, Multiply; ~4 ms of a small
 * CNN's step). `FitloopReluGrad` computes the same values (bit for bit: step is 1 for x > 0, NaN
 * for NaN x, else 0, then dy * step) in one WebAssembly SIMD pass (`simd/relu-grad.wat`, on
 * tfjs-wasm's memory). `enableReluGrad()` overrides the registered gradient of `Relu`; the override
 * runs the stock gradient on other backends, for non-float32 tensors and where SIMD is unavailable
 * (a JS loop, kept in the kernel for direct calls, is slower than the stock kernels: ~5 vs ~1.5
 * ns/element), and `disableReluGrad()` puts the stock one back.
 */
export const RELU_GRAD = "FitloopReluGrad";

/** Inputs dy, x (float32, same shape); output dx = dy * step(x). */
export function wasmReluGrad({ inputs, backend }: KernelArgs): TensorInfo {
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  const b = backend as unknown as WasmHeapBackend;
  const n = util.sizeFromShape(x.shape);
  const dx = b.makeOutput([...x.shape], "float32");
  const p = (t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const simd = reluGradSimd(b.wasm);
  if (simd) {
    const [pd, px, po] = [p(dy), p(x), p(dx)];
    // elementwise: kernel threads (Node) take equal element ranges, multiples of 4 (SIMD lanes)
    disposeOnThrow(b, [dx], () =>
      splitRows(simd.memory, "relu-grad", "reluGrad", n, (s, count) => [pd + 4 * s, px + 4 * s, po + 4 * s, count], () => simd.exports.reluGrad(pd, px, po, n), { bytes: 12 * n, memoryBound: true }),
    );
    return dx;
  }
  const heap = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
  const [d0, x0, o0] = [p(dy) / 4, p(x) / 4, p(dx) / 4];
  for (let i = 0; i < n; i++) {
    const v = heap[x0 + i]!;
    heap[o0 + i] = heap[d0 + i]! * (Number.isNaN(v) ? NaN : v > 0 ? 1 : 0);
  }
  return dx;
}

export const wasmReluGradConfig: KernelConfig = { kernelName: RELU_GRAD, backendName: WASM, kernelFunc: asKernelFunc(wasmReluGrad) };

/**
 * The gradient of relu(z + b) for a convolution's bias: dz = dy * step(y) and db = the sum of dz over
 * every axis but the last (channels), in one pass over dy and y instead of `FitloopReluGrad` then a
 * column sum that reads dz again (the CNN's first layer: 5.5 MB). Outputs [dz, db]. db is summed in
 * float64 per part of the rows (one part per kernel thread from
 * RELU_GRAD_BIAS_SUM_MIN_SPLIT_BYTES, else one), the parts added in order, then rounded to float32:
 * deterministic for a given thread count, within float32 rounding of the separate Sum.
 * Not differentiable itself: its users call it only outside a gradient tape (see wasm-conv-bias-relu.ts).
 */
export const RELU_GRAD_BIAS_SUM = "FitloopReluGradBiasSum";

/** Bytes (dy, x and dz) from which `FitloopReluGradBiasSum` splits its rows over the kernel threads. */
export const RELU_GRAD_BIAS_SUM_MIN_SPLIT_BYTES = 8 * 1024 * 1024;

/** Whether `FitloopReluGradBiasSum` runs fused here (WebAssembly SIMD, channels a multiple of 4). */
export function reluGradBiasSumFused(backend: object, channels: number): boolean {
  return channels > 0 && channels % 4 === 0 && "wasm" in backend && gemmSimd((backend as WasmHeapBackend).wasm) !== undefined;
}

/** Inputs dy, x (float32, same shape, rank >= 1); outputs [dz = dy * step(x), db = sum of dz over all axes but the last]. */
export function wasmReluGradBiasSum({ inputs, backend }: KernelArgs): TensorInfo[] {
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  if (!dy || !x || dy.shape.join() !== x.shape.join()) throw new Error(`fitloop wasm ${RELU_GRAD_BIAS_SUM}: dy and x of the same shape are required`);
  const b = backend as unknown as WasmHeapBackend;
  const channels = x.shape[x.shape.length - 1] ?? 1;
  const n = util.sizeFromShape(x.shape);
  const rows = channels > 0 ? n / channels : 0;
  if (!reluGradBiasSumFused(backend, channels) || rows === 0) {
    const dz = wasmReluGrad({ inputs, backend });
    const db = disposeOnThrow(b, [dz], () => b.makeOutput([channels], "float32"));
    const heap = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
    const [z0, d0] = [b.dataIdMap.get(dz.dataId)!.memoryOffset / 4, b.dataIdMap.get(db.dataId)!.memoryOffset / 4];
    const acc = new Float64Array(channels);
    for (let r = 0; r < rows; r++) for (let c = 0; c < channels; c++) acc[c]! += heap[z0 + r * channels + c]!;
    for (let c = 0; c < channels; c++) heap[d0 + c] = acc[c]!;
    return [dz, db];
  }
  const simd = gemmSimd(b.wasm)!; // reluGradColSum lives in gemm.wat (filterGradMasked uses it too)
  const dz = b.makeOutput([...x.shape], "float32");
  return disposeOnThrow(b, [dz], () => {
    const db = b.makeOutput([channels], "float32");
    return disposeOnThrow(b, [db], () => {
      const p = (t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset;
      const [pd, px, pz, rowBytes] = [p(dy), p(x), p(dz), 4 * channels];
      // one float64 accumulator row per part (rows split over the kernel threads), added in part order
      // split only from 8 MiB: below, one thread measured faster (its 7744 x 64 call: 0.14 vs 0.19 ms
      // split, measured with 4 parts per thread before round 12's one part per thread)
      const split = { align: 1, bytes: 12 * n, minBytes: RELU_GRAD_BIAS_SUM_MIN_SPLIT_BYTES, memoryBound: true };
      const parts = planParts(simd.memory, rows, split).length;
      const acc = simd.malloc(8 * channels * parts + 8);
      if (!acc) throw new Error("fitloop wasm FitloopReluGradBiasSum: wasm malloc failed");
      try {
        const acc8 = (acc + 7) & ~7;
        const sums = new Float64Array(simd.memory.buffer, acc8, channels * parts);
        sums.fill(0);
        const args = (start: number, count: number, part: number): [number, number, number, number, number, number] =>
          [pd + start * rowBytes, px + start * rowBytes, pz + start * rowBytes, acc8 + 8 * channels * part, count, channels];
        const used = splitRows(simd.memory, "gemm", "reluGradColSum", rows, args, () => simd.exports.reluGradColSum(...args(0, rows, 0)), split);
        const out = new Float32Array(simd.memory.buffer, p(db), channels);
        const total = new Float64Array(simd.memory.buffer, acc8, channels * used); // the buffer again: work may have grown memory
        for (let c = 0; c < channels; c++) {
          let s = 0;
          for (let part = 0; part < used; part++) s += total[part * channels + c]!;
          out[c] = s;
        }
      } finally {
        simd.free(acc);
      }
      return [dz, db];
    });
  });
}

export const wasmReluGradBiasSumConfig: KernelConfig = { kernelName: RELU_GRAD_BIAS_SUM, backendName: WASM, kernelFunc: asKernelFunc(wasmReluGradBiasSum) };

const runReluGrad = (dy: Tensor, x: Tensor): Tensor => engine().runKernel(RELU_GRAD, { dy, x }, {}) as unknown as Tensor;

/** Second order: the mask is constant in x (as the stock gradient's Step). */
export const reluGradGradConfig: GradConfig = {
  kernelName: RELU_GRAD,
  inputsToSave: ["x"],
  gradFunc: (dz: Tensor | Tensor[], saved: Tensor[]) => {
    const [x] = saved as [Tensor];
    return { dy: () => runReluGrad(dz as Tensor, x), x: () => zerosLike(x) };
  },
};

let stockReluGrad: GradConfig | undefined;

/** Without SIMD the stock three kernels (XNNPACK/C++) beat a JS loop, so the override uses the kernel only with SIMD. */
const simdAvailable = (): boolean => reluGradSimd((engine().backend as unknown as WasmHeapBackend).wasm) !== undefined;

const reluGradOverride: GradConfig = {
  kernelName: Relu,
  inputsToSave: ["x"],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x] = saved as [Tensor];
    const d = dy as Tensor;
    if (engine().backendName === WASM && x.dtype === "float32" && d.dtype === "float32" && getKernel(RELU_GRAD, WASM) && simdAvailable()) return { x: () => runReluGrad(d, x) };
    return stockReluGrad!.gradFunc(dy, saved, attrs);
  },
};

/** Registers the kernel and overrides `Relu`'s gradient (idempotent). */
export function enableReluGrad(): void {
  if (!getKernel(RELU_GRAD, WASM)) registerKernel(wasmReluGradConfig);
  if (!getKernel(RELU_GRAD_BIAS_SUM, WASM)) registerKernel(wasmReluGradBiasSumConfig);
  if (!getGradient(RELU_GRAD)) registerGradient(reluGradGradConfig);
  const current = getGradient(Relu);
  if (!current || current.gradFunc === reluGradOverride.gradFunc) return;
  stockReluGrad = current;
  registerGradient(reluGradOverride);
}

/** Puts back tfjs-core's own gradient of `Relu`. */
export function disableReluGrad(): void {
  if (stockReluGrad && getGradient(Relu)?.gradFunc === reluGradOverride.gradFunc) registerGradient(stockReluGrad);
}

export const isReluGradEnabled = (): boolean => getGradient(Relu)?.gradFunc === reluGradOverride.gradFunc;
