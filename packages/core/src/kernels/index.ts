/** Kernels fitloop registers for the wasm backend. Filled in by wasm-conv2d-backprop-filter.ts. */
export function registerWasmKernels(): void {}
