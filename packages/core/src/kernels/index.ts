import { getKernel, registerKernel } from "@tensorflow/tfjs-core";
import { wasmConv2DBackpropFilterConfig } from "./wasm-conv2d-backprop-filter.js";

export { planFilterGradConv, wasmConv2DBackpropFilter, wasmConv2DBackpropFilterConfig } from "./wasm-conv2d-backprop-filter.js";
export type { FilterGradPlan, WasmConv2DBackpropFilterAttrs, WasmKernelArgs } from "./wasm-conv2d-backprop-filter.js";

/**
 * Registers fitloop's kernels for the wasm backend: `Conv2DBackpropFilter`, which tfjs-wasm 4.22
 * lacks (so CNNs cannot train there otherwise). Idempotent, and safe before the wasm backend is
 * initialised (the registry is keyed by backend name only). A kernel already registered under the
 * same name, ours or one a later tfjs ships, is left in place: tfjs warns and overwrites otherwise.
 */
export function registerWasmKernels(): void {
  for (const config of [wasmConv2DBackpropFilterConfig]) {
    if (!getKernel(config.kernelName, config.backendName)) registerKernel(config);
  }
}
