import { engine, getGradient, getKernel, registerGradient, registerKernel, Relu, util, zerosLike, type GradConfig, type KernelConfig, type NamedAttrMap, type Tensor, type TensorInfo } from "@tensorflow/tfjs-core";
import { reluGradSimd, type EmscriptenWasm } from "./simd/index.js";
import { asKernelFunc, disposeOnThrow, WASM, type KernelArgs } from "./wasm-util.js";
import { CHUNKS_PER_THREAD, splitRows } from "./kernel-threads.js";

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

interface WasmHeapBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: string): TensorInfo;
  wasm: EmscriptenWasm & { HEAPF32: Float32Array };
}

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
      splitRows(simd.memory, "relu-grad", "reluGrad", n, (s, count) => [pd + 4 * s, px + 4 * s, po + 4 * s, count], () => simd.exports.reluGrad(pd, px, po, n), { bytes: 12 * n, chunksPerThread: CHUNKS_PER_THREAD, memoryBound: true }),
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
