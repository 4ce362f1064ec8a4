import { Relu, util, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { elementwiseSimd, type EmscriptenWasm } from "./simd/index.js";
import { asKernelFunc, runWasm, WASM, type KernelArgs } from "./wasm-util.js";

/** The parts of tfjs-wasm's BackendWasm used here (pinned to tfjs 4.22). */
interface WasmHeapBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: string): TensorInfo;
  wasm: EmscriptenWasm;
}

/**
 * `Relu` of a float32 tensor as one WebAssembly SIMD pass (`simd/elementwise.wat`: f32x4.max(x, 0),
 * so NaN stays NaN and -0 gives +0, as the cpu backend's Math.max(0, x)). Other dtypes, empty tensors
 * and no SIMD run the stock kernel.
 * Not registered by `registerWasmKernels()`: memory-bound, it runs no faster than stock XNNPACK in a
 * training step (round 8b in docs/performance.md); `elementwise.wat`'s `relu` takes any element range,
 * so a threaded row split can use it.
 */
export function wasmRelu({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x } = inputs;
  if (!x) throw new Error("fitloop wasm Relu: input x is required");
  const n = util.sizeFromShape(x.shape);
  const wb = backend as unknown as WasmHeapBackend;
  const simd = x.dtype === "float32" && n > 0 ? elementwiseSimd(wb.wasm) : undefined;
  if (!simd) return runWasm(Relu, backend, inputs, attrs);
  const out = wb.makeOutput([...x.shape], "float32");
  const p = (t: TensorInfo): number => wb.dataIdMap.get(t.dataId)!.memoryOffset;
  simd.exports.relu(p(x), p(out), n);
  return out;
}

export const wasmReluConfig: KernelConfig = { kernelName: Relu, backendName: WASM, kernelFunc: asKernelFunc(wasmRelu) };
