import { Identity, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { asKernelFunc, runWasm, WASM, type KernelArgs } from "./wasm-util.js";

/**
 * Identity without a copy: the output shares the input's buffer and bumps its reference count, as
 * tfjs-wasm's own Reshape and the cpu backend's Identity do (tensors are immutable). The stock wasm
 * Identity copies the whole buffer, and the engine runs Identity for every tensor it saves for the
 * backward pass (`clone` in saveTensorsForBackwardMode): ~90 full copies per step of a small CNN.
 */
export function wasmIdentity({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x } = inputs;
  if (!x) throw new Error("fitloop wasm Identity: input x is required");
  if (x.dtype === "string") return runWasm(Identity, backend, inputs, attrs);
  (backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

export const wasmIdentityConfig: KernelConfig = { kernelName: Identity, backendName: WASM, kernelFunc: asKernelFunc(wasmIdentity) };
