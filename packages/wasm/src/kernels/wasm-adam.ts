import { AdamOptimizer, engine, getKernel, mul, registerKernel, tidy, util, zerosLike, type KernelConfig, type NamedTensorMap, type Tensor, type TensorInfo, type Variable } from "@tensorflow/tfjs-core";
import { adamSimd, type EmscriptenWasm } from "./simd/index.js";
import { registerScaledApply, type ScaledApply } from "./scaled-apply.js";
import { asKernelFunc, disposeOnThrow, type KernelArgs, WASM, type WasmHeapBackend } from "./wasm-util.js";
import { CHUNKS_PER_THREAD, planParts, poolFor, runPoolTasks, type KernelCall } from "./kernel-threads.js";

/**
 * Adam's update on wasm as one kernel for all variables. tfjs-core's `AdamOptimizer.applyGradients` runs
 * ~15 small kernels per variable (mul, add, square, div, sqrt, ...: most of an MLP step's ~200 kernel
 * calls, each paying tfjs's dispatch); `FitloopAdam` computes the new variable and both moments in
 * one WebAssembly SIMD pass (`simd/adam.wat`) with the same float32 operations in the same order,
 * so the results are bit for bit those of the stock optimizer on wasm.
 *
 * `enableFusedAdam()` patches `AdamOptimizer.prototype.applyGradients`; the patched method keeps the
 * optimizer's fields and slots exactly as tfjs does (`accumulatedFirstMoment`/`SecondMoment` as
 * `{originalName, variable}` created on first use, `accBeta1`/`accBeta2` variables, `iterations`),
 * reads `learningRate`, `beta1`, `beta2` and `epsilon` at every step (fitloop's hyperparameter adapter
 * writes them) and `assign`s new tensors to the variable and its moments, as tfjs does (a weight gets
 * a new buffer each step: tfjs-wasm caches XNNPACK's packed weights by tensor id, so updating a
 * weight in place would leave a stale packed copy). It runs tfjs's own method on other backends,
 * without WebAssembly SIMD, for non-float32 variables or gradients, and after `disableFusedAdam()`.
 */
export const ADAM = "FitloopAdam";

export interface FitloopAdamAttrs {
  beta1: number;
  beta2: number;
  /** 1 - beta1^t as float32 (tfjs's `sub(1, accBeta1)`). */
  oneMinusAccBeta1: number;
  oneMinusAccBeta2: number;
  epsilon: number;
  learningRate: number;
  /** The gradient is multiplied by this first (float32; 1 when no scale is pending). */
  gradScale?: number;
}

/**
 * Inputs x, m, v, g (float32, same size), or with `attrs.count` = k: x0, m0, v0, g0, ..., x{k-1},
 * ...: every variable of an update in one kernel (one engine op, one kernel-thread job). Outputs
 * [x', m', v'] per variable, in order (new buffers).
 */
export function wasmAdam({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const a = attrs as unknown as FitloopAdamAttrs & { count?: number };
  const b = backend as unknown as WasmHeapBackend;
  const count = a.count ?? 1;
  if (!Number.isInteger(count) || count < 1) throw new Error(`fitloop wasm Adam: count must be a positive integer, got ${String(a.count)}`);
  const key = (name: string, i: number): string => (a.count === undefined ? name : `${name}${i}`);
  const vars = Array.from({ length: count }, (_, i) => {
    const [x, m, v, g] = ["x", "m", "v", "g"].map((name) => inputs[key(name, i)]);
    if (!x || !m || !v || !g) throw new Error(`fitloop wasm Adam: inputs ${["x", "m", "v", "g"].map((name) => key(name, i)).join(", ")} are required`);
    const n = util.sizeFromShape(x.shape);
    for (const t of [m, v, g]) if (util.sizeFromShape(t.shape) !== n) throw new Error(`fitloop wasm Adam: shapes differ: [${x.shape.join(",")}] vs [${t.shape.join(",")}]`);
    return { x, m, v, g, n };
  });
  const f = Math.fround;
  const hyper = [f(a.beta1), f(1 - a.beta1), f(a.beta2), f(1 - a.beta2), f(a.oneMinusAccBeta1), f(a.oneMinusAccBeta2), f(a.epsilon), f(-a.learningRate), f(a.gradScale ?? 1)] as const;
  const outs: TensorInfo[] = [];
  for (const { x } of vars) for (let j = 0; j < 3; j++) outs.push(b.makeOutput([...x.shape], "float32"));
  const p = (t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const simd = adamSimd(b.wasm);
  disposeOnThrow(b, outs, () => {
    if (simd) {
      const calls: KernelCall[] = [];
      let split = false;
      vars.forEach(({ x, m, v, g, n }, i) => {
        const ptrs = [p(x), p(m), p(v), p(g), p(outs[3 * i]!), p(outs[3 * i + 1]!), p(outs[3 * i + 2]!)];
        // elementwise, and bound by its three divisions and a square root as much as by memory:
        // large variables split over the kernel threads (element ranges, multiples of 4)
        const parts = planParts(simd.memory, n, { bytes: 28 * n, chunksPerThread: CHUNKS_PER_THREAD });
        split ||= parts.length > 1;
        for (const [start, len] of parts) calls.push({ module: "adam", fn: "adam", args: [...ptrs.map((q) => q + 4 * start), len, ...hyper] });
      });
      const pool = split ? poolFor(simd.memory) : undefined;
      if (!pool) {
        const adam = simd.exports.adam as unknown as (...args: number[]) => void;
        for (const c of calls) adam(...c.args);
        return;
      }
      runPoolTasks(pool, calls);
      return;
    }
    const h = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
    const [b1, omb1, b2, omb2, c1, c2, eps, neglr, gscale] = hyper;
    vars.forEach(({ x, m, v, g, n }, k) => {
      const [x0, m0, v0, g0, ox, om, ov] = [x, m, v, g, outs[3 * k]!, outs[3 * k + 1]!, outs[3 * k + 2]!].map((t) => p(t) / 4) as [number, number, number, number, number, number, number];
      for (let i = 0; i < n; i++) {
        const gi = f(h[g0 + i]! * gscale);
        const mi = f(f(h[m0 + i]! * b1) + f(gi * omb1));
        const vi = f(f(h[v0 + i]! * b2) + f(f(gi * gi) * omb2));
        h[ox + i] = f(f(f(f(mi / c1) / f(f(Math.sqrt(f(vi / c2))) + eps)) * neglr) + h[x0 + i]!);
        h[om + i] = mi;
        h[ov + i] = vi;
      }
    });
  });
  return outs;
}

export const wasmAdamConfig: KernelConfig = { kernelName: ADAM, backendName: WASM, kernelFunc: asKernelFunc(wasmAdam as never) };

type NamedTensor = { name: string; tensor: Tensor };

interface SlotVariable {
  originalName: string;
  variable: Variable;
}

/** AdamOptimizer's fields as tfjs-core 4.22 declares them (protected/private there). */
interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: Variable;
  accBeta2: Variable;
  accumulatedFirstMoment: SlotVariable[];
  accumulatedSecondMoment: SlotVariable[];
  incrementIterations(): void;
}

type ApplyGradients = (this: AdamOptimizer, variableGradients: NamedTensorMap | NamedTensor[]) => void;

let stockApplyGradients: ApplyGradients | undefined;

/** A gradient scale (a float32 scalar on the device) for the applyGradients call running now; see `applyScaledAdam`. */
let pendingScale: Tensor | undefined;

const fusedUsable = (): boolean =>
  engine().backendName === WASM && getKernel(ADAM, WASM) !== undefined && adamSimd((engine().backend as unknown as WasmHeapBackend).wasm) !== undefined;

function fusedApplyGradients(this: AdamOptimizer, variableGradients: NamedTensorMap | NamedTensor[]): void {
  const list = Array.isArray(variableGradients);
  const varNames = list ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
  const gradientOf = (name: string, i: number): Tensor | undefined => (list ? variableGradients[i]?.tensor : variableGradients[name]) ?? undefined;
  const registered = engine().registeredVariables;
  const eligible =
    fusedUsable() &&
    varNames.every((name, i) => {
      const value = registered[name];
      const g = gradientOf(name, i);
      return value !== undefined && value.dtype === "float32" && (g === undefined || (g.dtype === "float32" && g.size === value.size));
    });
  if (!eligible) return stockApplyGradients!.call(this, variableGradients);
  const o = this as unknown as AdamInternals;
  // read on the wasm heap (the backend's own memory), as accBeta is below
  const gradScale = pendingScale ? pendingScale.dataSync()[0]! : 1;
  tidy(() => {
    const f = Math.fround;
    // tfjs: oneMinusAccBeta = sub(1, accBeta), a float32 subtraction of float32 values
    const oneMinusAccBeta1 = f(1 - o.accBeta1.dataSync()[0]!);
    const oneMinusAccBeta2 = f(1 - o.accBeta2.dataSync()[0]!);
    const inputs: Record<string, Tensor> = {};
    const updated: { value: Variable; m: Variable; v: Variable }[] = [];
    varNames.forEach((name, i) => {
      const value = registered[name]!;
      const trainable = false;
      if (o.accumulatedFirstMoment[i] == null) o.accumulatedFirstMoment[i] = { originalName: `${name}/m`, variable: tidy(() => zerosLike(value).variable(trainable)) };
      if (o.accumulatedSecondMoment[i] == null) o.accumulatedSecondMoment[i] = { originalName: `${name}/v`, variable: tidy(() => zerosLike(value).variable(trainable)) };
      const gradient = gradientOf(name, i);
      if (gradient == null) return;
      const k = updated.length;
      updated.push({ value, m: o.accumulatedFirstMoment[i].variable, v: o.accumulatedSecondMoment[i].variable });
      Object.assign(inputs, { [`x${k}`]: value, [`m${k}`]: updated[k]!.m, [`v${k}`]: updated[k]!.v, [`g${k}`]: gradient });
    });
    if (updated.length > 0) {
      // every variable in one kernel: one engine op and one kernel-thread job per step
      const attrs: FitloopAdamAttrs & { count: number } = { beta1: o.beta1, beta2: o.beta2, oneMinusAccBeta1, oneMinusAccBeta2, epsilon: o.epsilon, learningRate: o.learningRate, gradScale, count: updated.length };
      const out = engine().runKernel(ADAM, inputs as never, attrs as never) as unknown as Tensor[];
      updated.forEach(({ value, m, v }, k) => {
        m.assign(out[3 * k + 1]!);
        v.assign(out[3 * k + 2]!);
        value.assign(out[3 * k]!);
      });
    }
    o.accBeta1.assign(mul(o.accBeta1, o.beta1));
    o.accBeta2.assign(mul(o.accBeta2, o.beta2));
  });
  o.incrementIterations();
}

/**
 * Applies `grads * scale` with Adam's fused kernel, the scale multiplied in while the gradient is
 * read (no scaled copy of every gradient is made: clipping costs its norm only). Returns false when
 * the fused path does not apply (another optimizer or backend, SIMD off, other dtypes): then the
 * caller scales the gradients itself. Registered in the scaled-apply registry that `@fitloop/core`'s
 * `applyGradientsScaled` reads (`scaled-apply.ts`).
 */
export function applyScaledAdam(optimizer: { applyGradients(g: NamedTensorMap): void }, grads: NamedTensorMap, scale: Tensor): boolean {
  const isAdam = Function.prototype[Symbol.hasInstance].call(AdamOptimizer, optimizer);
  if (!isAdam || (optimizer as unknown as { applyGradients: unknown }).applyGradients !== fusedApplyGradients || !fusedUsable() || scale.dtype !== "float32") return false;
  const registered = engine().registeredVariables;
  const eligible = Object.entries(grads).every(([name, g]) => registered[name]?.dtype === "float32" && g.dtype === "float32" && g.size === registered[name]!.size);
  if (!eligible) return false;
  pendingScale = scale;
  try {
    optimizer.applyGradients(grads);
  } finally {
    pendingScale = undefined;
  }
  return true;
}

let unregisterScaled: (() => void) | undefined;

/** Registers the kernel and patches `AdamOptimizer.prototype.applyGradients` (idempotent). */
export function enableFusedAdam(): void {
  if (!getKernel(ADAM, WASM)) registerKernel(wasmAdamConfig);
  unregisterScaled ??= registerScaledApply(applyScaledAdam as ScaledApply);
  const proto = AdamOptimizer.prototype as unknown as { applyGradients: ApplyGradients };
  if (proto.applyGradients === fusedApplyGradients) return;
  stockApplyGradients = proto.applyGradients;
  proto.applyGradients = fusedApplyGradients;
}

/** Puts back tfjs-core's own `AdamOptimizer.prototype.applyGradients`. */
export function disableFusedAdam(): void {
  unregisterScaled?.();
  unregisterScaled = undefined;
  const proto = AdamOptimizer.prototype as unknown as { applyGradients: ApplyGradients };
  if (stockApplyGradients && proto.applyGradients === fusedApplyGradients) proto.applyGradients = stockApplyGradients;
}

export const isFusedAdamEnabled = (): boolean => (AdamOptimizer.prototype as unknown as { applyGradients: ApplyGradients }).applyGradients === fusedApplyGradients;
