import {
  _FusedMatMul,
  BatchMatMul,
  engine,
  getGradient,
  getKernel,
  matMul,
  mul,
  registerGradient,
  registerKernel,
  step,
  sub,
  Sum,
  sum,
  tidy,
  type GradConfig,
  type KernelBackend,
  type KernelConfig,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type Tensor,
  type TensorInfo,
} from "@tensorflow/tfjs-core";
import { asKernelFunc, disposeOnThrow, type KernelArgs, layerPrototype, WASM, type WasmHeapBackend } from "./wasm-util.js";
import { RELU_GRAD, wasmReluGrad } from "./wasm-relu-grad.js";
import type { EmscriptenWasm } from "./simd/index.js";
import { ownGemm, splitGemms } from "./wasm-gemm-split.js";
import { simdMatMulEnabled } from "./wasm-matmul-simd.js";
import { withWasmThreads } from "./wasm-threadpool.js";

/**
 * A dense layer in training as one forward kernel and one backward kernel (+ the input's gradient).
 *
 * tfjs-core fuses matmul + bias + activation only outside a gradient tape (`shouldFuse`), and never
 * a softmax, so in training tfjs-layers' `Dense` runs BatchMatMul, a broadcast Add and the
 * activation forward, and backward Add's gradient (Sum + Reshapes), the activation's gradient and
 * two matmuls: ~12 engine ops per layer, each with a fixed cost (~6-7 us on wasm) that small layers
 * feel more than their FLOPs. Here:
 * - forward `FitloopDense(x, kernel, bias?)`: y = act(x·W + b), act linear, relu or softmax (rows),
 *   on fitloop's GEMM with bias and ReLU applied as C is written (the registered `_FusedMatMul`);
 * - backward `FitloopDenseGrad(dy, x, y)`: dz = act'(y)·dy (ReLU: dy where y > 0, NaN stays NaN, as
 *   tfjs's Step; softmax: tfjs's `dy·y - sum(dy·y)·y`), dW = xᵀ·dz, db = Σ dz over rows, as one
 *   engine op; the input's gradient dz·Wᵀ is one more, run only when something upstream needs it.
 * Every product and sum is one of the registered wasm kernels (fitloop's GEMM, the column Sum), so
 * the values are those of the unfused ops up to the order of float32 additions in the bias sum.
 *
 * Used through `Dense.call` of tfjs-layers (patched by `registerWasmKernels()`), on the wasm backend,
 * for float32 rank-2 inputs and activations linear, relu and softmax, at most one gradient tape deep
 * (a gradient of a gradient takes tfjs-layers' own ops, which have second derivatives; a backward
 * pass recorded by an outer tape runs the gradient as tfjs ops, `tapedGrads`); everything
 * else runs tfjs-layers' own code. Pinned to tfjs-layers 4.22 (layer fields).
 */
export const DENSE = "FitloopDense";
export const DENSE_GRAD = "FitloopDenseGrad";

export type DenseActivation = "linear" | "relu" | "softmax";
const ACTIVATIONS: readonly string[] = ["linear", "relu", "softmax"];

interface DenseAttrs {
  activation: DenseActivation;
}

/** Runs the kernel registered for wasm under `name` (fitloop's replacement where there is one). */
function runRegistered(name: string, backend: KernelBackend, inputs: NamedTensorInfoMap, attrs: NamedAttrMap): TensorInfo {
  const kernel = getKernel(name, WASM);
  if (!kernel) throw new Error(`fitloop wasm Dense needs the wasm kernel '${name}', which is not registered`);
  const out = kernel.kernelFunc({ inputs, backend, attrs });
  return Array.isArray(out) ? out[0]! : out;
}

function checkInputs(x: TensorInfo | undefined, kernel: TensorInfo | undefined, bias: TensorInfo | undefined, activation: unknown): asserts x is TensorInfo {
  const where = "fitloop wasm Dense";
  if (!x || !kernel) throw new Error(`${where}: inputs x and kernel are required`);
  if (x.dtype !== "float32" || kernel.dtype !== "float32" || (bias && bias.dtype !== "float32")) throw new Error(`${where}: x, kernel and bias must be float32 (got ${x.dtype}, ${kernel.dtype}${bias ? `, ${bias.dtype}` : ""})`);
  if (x.shape.length !== 2 || kernel.shape.length !== 2 || x.shape[1] !== kernel.shape[0]) throw new Error(`${where}: x [batch, in] and kernel [in, units] do not fit (x ${JSON.stringify(x.shape)}, kernel ${JSON.stringify(kernel.shape)})`);
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== kernel.shape[1])) throw new Error(`${where}: bias must be [${kernel.shape[1]}] (got ${JSON.stringify(bias.shape)})`);
  if (typeof activation !== "string" || !ACTIVATIONS.includes(activation)) throw new Error(`${where}: activation must be one of ${ACTIVATIONS.join(", ")} (got ${String(activation)})`);
}

/** Row-wise softmax in place, as tfjs's: exp(v - max) / sum (sum in float64). */
function softmaxRows(heap: Float32Array, offset: number, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = offset + r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) if (heap[o + j]! > max) max = heap[o + j]!;
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.fround(Math.exp(heap[o + j]! - max));
      heap[o + j] = e;
      sum += e;
    }
    for (let j = 0; j < cols; j++) heap[o + j] = heap[o + j]! / sum;
  }
}

/** Forward: y = act(x·W + b). */
export function wasmDense({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, kernel, bias } = inputs;
  const activation = (attrs as unknown as DenseAttrs | undefined)?.activation;
  checkInputs(x, kernel, bias, activation);
  const mmInputs: NamedTensorInfoMap = bias ? { a: x, b: kernel!, bias } : { a: x, b: kernel! };
  const mmAttrs = { transposeA: false, transposeB: false, activation: activation === "relu" ? "relu" : "linear", leakyreluAlpha: 0 } as unknown as NamedAttrMap;
  const y = runRegistered(_FusedMatMul, backend, mmInputs, mmAttrs);
  if (activation === "softmax") {
    const b = backend as unknown as WasmHeapBackend;
    disposeOnThrow(backend, [y], () => softmaxRows(b.wasm.HEAPF32, b.dataIdMap.get(y.dataId)!.memoryOffset / 4, y.shape[0]!, y.shape[1]!));
  }
  return y;
}

/** dz for a softmax: dy·y - (Σ_j dy·y)·y per row, as tfjs's Softmax gradient. */
function softmaxGrad(b: WasmHeapBackend, dy: TensorInfo, y: TensorInfo): TensorInfo {
  const [rows, cols] = [y.shape[0]!, y.shape[1]!];
  const dz = b.makeOutput([rows, cols], "float32");
  const heap = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
  const p = (t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset / 4;
  const [pd, py, pz] = [p(dy), p(y), p(dz)];
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.fround(heap[pd + o + j]! * heap[py + o + j]!);
    const sf = Math.fround(s);
    for (let j = 0; j < cols; j++) {
      const yj = heap[py + o + j]!;
      heap[pz + o + j] = Math.fround(heap[pd + o + j]! * yj) - Math.fround(sf * yj);
    }
  }
  return dz;
}

/**
 * dW = xᵀ·dz and dx = dz·Wᵀ on fitloop's GEMM as one kernel-thread job (`splitGemms`: one wake-up
 * of the workers for both), or undefined where fitloop's GEMM does not take them (then the
 * registered BatchMatMul runs each). Same bits as the two BatchMatMuls.
 */
function weightAndInputGrads(backend: KernelArgs["backend"], x: TensorInfo, dz: TensorInfo, kernel: TensorInfo): [TensorInfo, TensorInfo] | undefined {
  const b = backend as unknown as WasmHeapBackend & { wasm: EmscriptenWasm };
  const [batch, inDim] = [x.shape[0]!, x.shape[1]!];
  const units = dz.shape[1]!;
  const flops = 2 * batch * inDim * units;
  const gemm = simdMatMulEnabled() && batch > 0 && inDim > 0 && units > 0 ? ownGemm(b.wasm, flops) : undefined;
  if (!gemm) return undefined;
  const dW = b.makeOutput([inDim, units], "float32");
  const dx = b.makeOutput([batch, inDim], "float32");
  const p = (t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset;
  disposeOnThrow(backend, [dW, dx], () =>
    withWasmThreads(backend, 2 * flops, () =>
      splitGemms(gemm, [
        // dW [in, units] = xᵀ·dz: A = x read transposed, B = dz row-major
        { pa: p(x), ars: 4, aks: 4 * inDim, pb: p(dz), ldb: 4 * units, pc: p(dW), ldc: 4 * units, m: inDim, n: units, k: batch },
        // dx [batch, in] = dz·Wᵀ: B = W [in, units] read transposed
        { pa: p(dz), ars: 4 * units, aks: 4, pb: p(kernel), ldb: 4, bns: 4 * units, pc: p(dx), ldc: 4 * inDim, m: batch, n: inDim, k: units },
      ]),
    ),
  );
  return [dW, dx];
}

/**
 * Backward: outputs [dz, dW, db?, dx?] (db with attr `hasBias`, dx with input `kernel`). Inputs dy
 * and y [batch, units], x [batch, in], and the kernel [in, units] when the input's gradient is to
 * be computed here, with the weight's, as one job; without it dz is returned for the input's
 * gradient (dz·Wᵀ), which the gradient then runs only when needed.
 */
export function wasmDenseGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { dy, x, y, kernel } = inputs;
  const { activation, hasBias } = (attrs ?? {}) as unknown as DenseAttrs & { hasBias: boolean };
  if (!dy || !x || !y) throw new Error("fitloop wasm DenseGrad: inputs dy, x and y are required");
  const b = backend as unknown as WasmHeapBackend;
  let dz: TensorInfo;
  if (activation === "relu") dz = wasmReluGrad({ inputs: { dy, x: y }, backend });
  else if (activation === "softmax") dz = softmaxGrad(b, dy, y);
  else {
    b.incRef(dy.dataId); // linear: dz is dy (tensors are immutable; as tfjs-wasm's Reshape shares buffers)
    dz = { dataId: dy.dataId, shape: [...dy.shape], dtype: "float32" };
  }
  return disposeOnThrow(backend, [dz], () => {
    const both = kernel ? weightAndInputGrads(backend, x, dz, kernel) : undefined;
    const dW = both?.[0] ?? runRegistered(BatchMatMul, backend, { a: x, b: dz }, { transposeA: true, transposeB: false } as unknown as NamedAttrMap);
    return disposeOnThrow(backend, [dW], () => {
      const dx = kernel ? (both?.[1] ?? runRegistered(BatchMatMul, backend, { a: dz, b: kernel }, { transposeA: false, transposeB: true } as unknown as NamedAttrMap)) : undefined;
      return disposeOnThrow(backend, dx ? [dx] : [], () => {
        const db = hasBias ? runRegistered(Sum, backend, { x: dz }, { axis: [0], keepDims: false } as unknown as NamedAttrMap) : undefined;
        return [dz, dW, ...(db ? [db] : []), ...(dx ? [dx] : [])];
      });
    });
  });
}

export const wasmDenseConfig: KernelConfig = { kernelName: DENSE, backendName: WASM, kernelFunc: asKernelFunc(wasmDense) };
export const wasmDenseGradConfig: KernelConfig = { kernelName: DENSE_GRAD, backendName: WASM, kernelFunc: wasmDenseGrad as unknown as KernelConfig["kernelFunc"] };

/**
 * The same gradients as tfjs ops, which have gradients themselves: for a backward pass that an outer
 * tape records (a gradient of a gradient through a Dense whose forward ran one tape deep).
 */
function tapedGrads(dy: Tensor, x: Tensor, kernel: Tensor, y: Tensor, activation: DenseActivation): Record<string, () => Tensor> {
  let dz = dy;
  if (activation === "relu") dz = mul(dy, step(y));
  else if (activation === "softmax") {
    const dyTimesY = mul(dy, y);
    dz = sub(dyTimesY, mul(sum(dyTimesY, -1, true), y));
  }
  return { x: () => matMul(dz, kernel, false, true), kernel: () => matMul(x, dz, true, false), bias: () => sum(dz, 0) };
}

const runMulti = (name: string, inputs: Record<string, Tensor>, attrs: NamedAttrMap): Tensor[] => engine().runKernel(name, inputs as never, attrs) as unknown as Tensor[];

export const denseGradConfig: GradConfig = {
  kernelName: DENSE,
  inputsToSave: ["x", "kernel"],
  outputsToSave: [true],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x, kernel, y] = saved as [Tensor, Tensor, Tensor];
    const { activation } = attrs as unknown as DenseAttrs;
    const hasBias = (attrs as { hasBias?: boolean }).hasBias === true;
    if (engine().state.gradientDepth > 0) return tapedGrads(dy as Tensor, x, kernel, y, activation);
    // dW and db (and dx where the forward saw that the input takes a gradient) in one op, computed
    // here: the weights' gradients are wanted in every training step
    const inputGrad = (attrs as { inputGrad?: boolean }).inputGrad === true;
    const out = runMulti(DENSE_GRAD, inputGrad ? { dy: dy as Tensor, x, y, kernel } : { dy: dy as Tensor, x, y }, { activation, hasBias } as unknown as NamedAttrMap);
    const [dz, dW] = out as [Tensor, Tensor];
    const db = hasBias ? out[2] : undefined;
    const dx = inputGrad ? out[hasBias ? 3 : 2] : undefined;
    return {
      x: () => dx ?? (engine().runKernel(BatchMatMul, { a: dz, b: kernel } as never, { transposeA: false, transposeB: true } as never) as unknown as Tensor),
      kernel: () => dW,
      bias: () => db!,
    };
  },
};

/** The fields of tfjs-layers 4.22's Dense used here. */
interface DenseLayer {
  kernel: { read(): Tensor };
  bias: { read(): Tensor } | null;
  activation: { getClassName(): string };
  invokeCallHook(inputs: Tensor | Tensor[], kwargs: Record<string, unknown>): void;
}
type CallFn = (this: DenseLayer, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>) => Tensor | Tensor[];

const densePrototype = (): { call: CallFn } | undefined => layerPrototype<"call", CallFn>("Dense", "call");

/** The activation this call fuses, or undefined (then tfjs-layers' own code runs). */
function fusedActivation(layer: DenseLayer, input: Tensor | undefined): DenseActivation | undefined {
  if (!input || input.dtype !== "float32" || input.rank !== 2) return undefined;
  const name = layer.activation?.getClassName();
  if (name === undefined || !ACTIVATIONS.includes(name)) return undefined;
  const kernel = layer.kernel.read();
  if (kernel.dtype !== "float32" || kernel.rank !== 2 || kernel.shape[0] !== input.shape[1]) return undefined;
  const e = engine();
  // a gradient of a gradient needs second derivatives, which the fused gradient kernel does not have
  if (e.state.gradientDepth > 1 || e.backendName !== WASM || !getKernel(DENSE, WASM) || !getKernel(DENSE_GRAD, WASM) || !getKernel(RELU_GRAD, WASM)) return undefined;
  return name as DenseActivation;
}

/**
 * Whether the input will take a gradient in this tape: a trainable variable, or the output of an op
 * recorded on it (searched from the newest: a layer's input is usually the last op's output). Only
 * a hint: the input's gradient is then computed with the weight's in one job; otherwise it is left
 * to the gradient's own lazy matmul, which also covers inputs watched by `tf.grad` itself.
 */
function takesGradient(input: Tensor): boolean {
  const state = engine().state as unknown as { gradientDepth: number; activeTape?: { outputs: Tensor[] }[] };
  if (state.gradientDepth === 0) return false;
  if ((input as Tensor & { trainable?: boolean }).trainable === true) return true;
  const tape = state.activeTape ?? [];
  for (let i = tape.length - 1; i >= 0; i--) if (tape[i]!.outputs.some((o) => o.id === input.id)) return true;
  return false;
}

/** tfjs-layers' own Dense.call, kept while the patch is installed. */
let stockCall: CallFn | undefined;
function fusedCall(this: DenseLayer, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>): Tensor | Tensor[] {
  const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
  const activation = fusedActivation(this, input);
  if (!activation) return stockCall!.call(this, inputs, kwargs);
  return tidy(() => {
    this.invokeCallHook(inputs, kwargs);
    const bias = this.bias?.read();
    const ins: Record<string, Tensor> = bias ? { x: input!, kernel: this.kernel.read(), bias } : { x: input!, kernel: this.kernel.read() };
    return engine().runKernel(DENSE, ins as never, { activation, hasBias: !!bias, inputGrad: takesGradient(input!) } as never) as unknown as Tensor;
  });
}

/** Registers the kernels and the gradient, and routes tfjs-layers' Dense calls on wasm through them. Idempotent. */
export function enableFusedDense(): void {
  if (!getKernel(DENSE, WASM)) registerKernel(wasmDenseConfig);
  if (!getKernel(DENSE_GRAD, WASM)) registerKernel(wasmDenseGradConfig);
  if (!getGradient(DENSE)) registerGradient(denseGradConfig);
  const proto = densePrototype();
  if (!proto || proto.call === fusedCall) return;
  stockCall = proto.call;
  proto.call = fusedCall;
}

/** Puts back tfjs-layers' own Dense.call (the kernels stay registered, unused). */
export function disableFusedDense(): void {
  const proto = densePrototype();
  if (proto && stockCall && proto.call === fusedCall) proto.call = stockCall;
}

export const isFusedDenseEnabled = (): boolean => densePrototype()?.call === fusedCall;
