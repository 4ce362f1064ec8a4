import { Add, backend_util, util, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { elementwiseSimd, type EmscriptenWasm } from "./simd/index.js";
import { asKernelFunc, type KernelArgs, runWasm, WASM, type WasmHeapBackend } from "./wasm-util.js";

/** Which input is the full tensor and which the per-channel bias, for x [..., C] + bias [C] (or [1, ..., 1, C]) in either order. */
export interface BiasAddPlan {
  x: "a" | "b";
  shape: number[];
  rows: number;
  c: number;
}

/** Channel counts below this stay on XNNPACK: the SIMD row loop would be mostly scalar tail. */
const MIN_CHANNELS = 4;

/**
 * The plan for a float32 bias add, or undefined (then the stock kernel runs): one input has the
 * broadcast output's size, the other C elements that broadcast along its last axis only.
 */
export function planBiasAdd(a: TensorInfo, b: TensorInfo): BiasAddPlan | undefined {
  if (a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length === 0 || b.shape.length === 0) return undefined;
  const shape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const c = shape[shape.length - 1]!;
  const total = util.sizeFromShape(shape);
  if (c < MIN_CHANNELS || total === 0) return undefined;
  const isBias = (t: TensorInfo) => t.shape[t.shape.length - 1] === c && util.sizeFromShape(t.shape) === c;
  for (const [big, small, x] of [[a, b, "a"], [b, a, "b"]] as const) {
    if (util.sizeFromShape(big.shape) === total && big.shape[big.shape.length - 1] === c && isBias(small)) return { x, shape, rows: total / c, c };
  }
  return undefined;
}

/**
 * `Add` of an activation and a per-channel bias (tfjs-layers' conv/dense bias add in training, where
 * the fused ops are not used under a gradient tape) as one WebAssembly SIMD pass
 * (`simd/elementwise.wat`); stock tfjs-wasm runs XNNPACK's broadcasting add, ~2x slower on a
 * [64,26,26,32] activation. Each element is one float32 add, so the result is bit for bit the cpu
 * backend's. Anything else (other broadcasts, dtypes, no SIMD) runs the stock kernel.
 */
export function wasmAdd({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { a, b } = inputs;
  if (!a || !b) throw new Error("fitloop wasm Add: inputs a and b are required");
  const plan = planBiasAdd(a, b);
  const wb = backend as unknown as WasmHeapBackend;
  const simd = plan ? elementwiseSimd(wb.wasm) : undefined;
  if (!plan || !simd) return runWasm(Add, backend, inputs, attrs);
  const [x, bias] = plan.x === "a" ? [a, b] : [b, a];
  const out = wb.makeOutput(plan.shape, "float32");
  const p = (t: TensorInfo): number => wb.dataIdMap.get(t.dataId)!.memoryOffset;
  simd.exports.addBias(p(x), p(bias), p(out), plan.rows, plan.c);
  return out;
}

export const wasmAddConfig: KernelConfig = { kernelName: Add, backendName: WASM, kernelFunc: asKernelFunc(wasmAdd) };
