/**
 * `@fitloop/wasm`: training on TensorFlow.js's wasm backend. Browser-safe: the kernels and
 * `useWasm` (single-threaded outside Node); the threaded build and kernel threads are in
 * `@fitloop/wasm/node`, which `useWasm` loads by itself in Node.
 */
export { useWasm, WasmBackendError, type UseWasmOptions, type WasmLogger } from "./use-wasm.js";
export * from "./kernels/index.js";
