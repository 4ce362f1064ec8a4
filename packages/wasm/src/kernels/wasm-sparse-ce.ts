import { engine, getGradient, getKernel, registerGradient, registerKernel, unregisterGradient, unregisterKernel, zerosLike, type GradConfig, type KernelConfig, type NamedAttrMap, type Tensor, type TensorInfo } from "@tensorflow/tfjs-core";
import { asKernelFunc, disposeOnThrow, type KernelArgs, WASM, type WasmHeapBackend } from "./wasm-util.js";

/**
 * Sparse categorical cross-entropy on wasm as one forward and one gradient kernel. `@fitloop/core`'s
 * `sparseCategoricalCrossentropy` is, as tfjs-layers computes it, reshape + floor + cast + oneHot +
 * `categoricalCrossentropy` (sum, divide, clip, log, multiply, sum, negate): ~13 kernels forward and
 * ~15 backward per step, each paying tfjs's dispatch. `FitloopSparseCrossentropy` computes the same
 * per-sample loss in one pass over the wasm heap (N*C is small: plain JS loops):
 *
 *   S = Σ_j p_ij (float64, rounded to float32 as tfjs's Sum output), q = fround(p_il / S),
 *   loss_i = -log(clip(q, eps, 1 - eps)) with l = floor(label_i)
 *
 * and `FitloopSparseCrossentropyGrad` its gradient with respect to the probabilities, as tfjs's
 * composite gradient (ClipByValue passes the gradient where eps <= q <= 1 - eps, inclusive):
 *
 *   g = (q in [eps, 1 - eps] ? -dy_i / q : 0),  dp_ij = (j == l ? g / S : 0) - g * p_il / S².
 *
 * Labels are int32, or float32 floored here (as core floors them). A label outside [0, C) gives an
 * all-zero one-hot row in the composite: loss +0 and gradient 0 here. A NaN label is treated as out
 * of range too (loss 0, gradient 0); the composite would cast NaN to int32 (0 on the cpu backend,
 * unspecified elsewhere), so there the results differ on purpose. Core reaches the kernel by its
 * name only (`tf.getKernel`), so it runs only where this module registered it (wasm).
 */
export const SPARSE_CE = "FitloopSparseCrossentropy";
export const SPARSE_CE_GRAD = "FitloopSparseCrossentropyGrad";

/** Attributes of both kernels: tfjs-layers' fuzz factor (`epsilon()`, 1e-7 on float32 backends). */
export interface SparseCrossentropyAttrs {
  epsilon: number;
}

const f = Math.fround;

/** Checks the inputs before any output is made (a failed check leaves nothing behind). */
function checkInputs(kernel: string, probs: TensorInfo | undefined, labels: TensorInfo | undefined): { n: number; c: number } {
  if (!probs || probs.dtype !== "float32" || probs.shape.length !== 2) {
    throw new Error(`${kernel}: input 'probs' must be a float32 tensor of rank 2 [N, C], got ${probs ? `${probs.dtype} [${probs.shape.join(",")}]` : "nothing"}`);
  }
  const [n, c] = probs.shape as [number, number];
  if (!labels || (labels.dtype !== "int32" && labels.dtype !== "float32") || labels.shape.length !== 1 || labels.shape[0] !== n) {
    throw new Error(`${kernel}: input 'labels' must be an int32 or float32 tensor of shape [${n}], got ${labels ? `${labels.dtype} [${labels.shape.join(",")}]` : "nothing"}`);
  }
  return { n, c };
}

function epsilonOf(kernel: string, attrs: NamedAttrMap | undefined): { lo: number; hi: number } {
  const eps = (attrs as Partial<SparseCrossentropyAttrs> | undefined)?.epsilon;
  if (typeof eps !== "number" || !(eps >= 0 && eps < 0.5)) throw new Error(`${kernel}: attribute 'epsilon' must be a number in [0, 0.5), got ${String(eps)}`);
  // the bounds as tfjs compares them: float32 scalars (the clip kernel's float attrs, the gradient's greaterEqual/lessEqual)
  return { lo: f(eps), hi: f(1 - eps) };
}

/** Reads one row's class (floored for float32 labels), or -1 when out of range or NaN. */
function labelReader(b: WasmHeapBackend, labels: TensorInfo, c: number): (i: number) => number {
  const offset = b.dataIdMap.get(labels.dataId)!.memoryOffset;
  const n = labels.shape[0]!;
  const view = labels.dtype === "int32" ? new Int32Array(b.wasm.HEAPF32.buffer, offset, n) : new Float32Array(b.wasm.HEAPF32.buffer, offset, n);
  return (i) => {
    const l = Math.floor(view[i]!);
    return l >= 0 && l < c ? l : -1; // NaN fails both comparisons
  };
}

/** Inputs probs float32 [N, C], labels int32/float32 [N]; attrs {epsilon}; output loss float32 [N]. */
export function wasmSparseCrossentropy({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { probs, labels } = inputs as { probs?: TensorInfo; labels?: TensorInfo };
  const { n, c } = checkInputs(SPARSE_CE, probs, labels);
  const { lo, hi } = epsilonOf(SPARSE_CE, attrs);
  const b = backend as unknown as WasmHeapBackend;
  const out = b.makeOutput([n], "float32");
  return disposeOnThrow(b, [out], () => {
    const heap = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
    const label = labelReader(b, labels!, c);
    const [p0, o0] = [b.dataIdMap.get(probs!.dataId)!.memoryOffset / 4, b.dataIdMap.get(out.dataId)!.memoryOffset / 4];
    for (let i = 0; i < n; i++) {
      const l = label(i);
      if (l < 0) {
        heap[o0 + i] = 0;
        continue;
      }
      const row = p0 + i * c;
      let s = 0;
      for (let j = 0; j < c; j++) s += heap[row + j]!;
      const q = f(heap[row + l]! / f(s));
      const clipped = q < lo ? lo : q > hi ? hi : q; // NaN stays NaN
      heap[o0 + i] = -Math.log(clipped);
    }
    return out;
  });
}

/** Inputs dy float32 [N], probs, labels (as the forward); attrs {epsilon}; output dprobs float32 [N, C]. */
export function wasmSparseCrossentropyGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, probs, labels } = inputs as { dy?: TensorInfo; probs?: TensorInfo; labels?: TensorInfo };
  const { n, c } = checkInputs(SPARSE_CE_GRAD, probs, labels);
  if (!dy || dy.dtype !== "float32" || dy.shape.length !== 1 || dy.shape[0] !== n) {
    throw new Error(`${SPARSE_CE_GRAD}: input 'dy' must be a float32 tensor of shape [${n}], got ${dy ? `${dy.dtype} [${dy.shape.join(",")}]` : "nothing"}`);
  }
  const { lo, hi } = epsilonOf(SPARSE_CE_GRAD, attrs);
  const b = backend as unknown as WasmHeapBackend;
  const out = b.makeOutput([n, c], "float32");
  return disposeOnThrow(b, [out], () => {
    const heap = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
    const label = labelReader(b, labels!, c);
    const p = (t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset / 4;
    const [d0, p0, o0] = [p(dy), p(probs!), p(out)];
    for (let i = 0; i < n; i++) {
      const row = p0 + i * c;
      const orow = o0 + i * c;
      const l = label(i);
      if (l < 0) {
        heap.fill(0, orow, orow + c);
        continue;
      }
      let s = 0;
      for (let j = 0; j < c; j++) s += heap[row + j]!;
      const s32 = f(s);
      const pl = heap[row + l]!;
      const q = f(pl / s32);
      // ClipByValue's gradient: dy where lo <= q <= hi (inclusive), else 0 (also for NaN q)
      const g = q >= lo && q <= hi ? -heap[d0 + i]! / q : 0;
      // RealDiv's gradient: g / S to the label's column; -g * p_il / S² to every column (through Sum)
      const shared = -(g * pl) / (s32 * s32);
      const own = 0 / s32; // +0, or NaN for S = 0 as in the composite
      for (let j = 0; j < c; j++) heap[orow + j] = own + shared;
      heap[orow + l] = g / s32 + shared;
    }
    return out;
  });
}

export const wasmSparseCrossentropyConfig: KernelConfig = { kernelName: SPARSE_CE, backendName: WASM, kernelFunc: asKernelFunc(wasmSparseCrossentropy) };
export const wasmSparseCrossentropyGradConfig: KernelConfig = { kernelName: SPARSE_CE_GRAD, backendName: WASM, kernelFunc: asKernelFunc(wasmSparseCrossentropyGrad) };

/** The gradient of the loss with respect to the probabilities (one kernel); labels get none (zeros). */
export const sparseCrossentropyGradConfig: GradConfig = {
  kernelName: SPARSE_CE,
  inputsToSave: ["probs", "labels"],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [probs, labels] = saved as [Tensor, Tensor];
    const epsilon = (attrs as unknown as SparseCrossentropyAttrs).epsilon;
    const sparseAttrs: SparseCrossentropyAttrs = { epsilon };
    return {
      probs: () => engine().runKernel(SPARSE_CE_GRAD, { dy: dy as Tensor, probs, labels }, sparseAttrs as unknown as NamedAttrMap) as Tensor,
      labels: () => zerosLike(labels),
    };
  },
};

/** Registers both kernels and the gradient, so core's sparse cross-entropy runs as one kernel on wasm. Idempotent. */
export function enableSparseCrossentropy(): void {
  if (!getKernel(SPARSE_CE, WASM)) registerKernel(wasmSparseCrossentropyConfig);
  if (!getKernel(SPARSE_CE_GRAD, WASM)) registerKernel(wasmSparseCrossentropyGradConfig);
  if (!getGradient(SPARSE_CE)) registerGradient(sparseCrossentropyGradConfig);
}

/**
 * Unregisters what `enableSparseCrossentropy` registered (only ours; enable puts it back): core,
 * finding no `FitloopSparseCrossentropy` kernel, computes the loss with tfjs ops again.
 */
export function disableSparseCrossentropy(): void {
  if (getKernel(SPARSE_CE, WASM)?.kernelFunc === wasmSparseCrossentropyConfig.kernelFunc) unregisterKernel(SPARSE_CE, WASM);
  if (getKernel(SPARSE_CE_GRAD, WASM)?.kernelFunc === wasmSparseCrossentropyGradConfig.kernelFunc) unregisterKernel(SPARSE_CE_GRAD, WASM);
  if (getGradient(SPARSE_CE)?.gradFunc === sparseCrossentropyGradConfig.gradFunc) unregisterGradient(SPARSE_CE);
}

export const isSparseCrossentropyEnabled = (): boolean => getKernel(SPARSE_CE, WASM)?.kernelFunc === wasmSparseCrossentropyConfig.kernelFunc;
