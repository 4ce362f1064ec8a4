/**
 * `@fitloop/wasm/node`: Node-only parts of fitloop (they import `node:` modules, so they stay out of
 * the main entry, which also runs in browsers). `useBackend('wasm')` loads this entry dynamically
 * when it runs in Node.
 */
export { PINNED_TFJS_WASM_VERSION, requestedThreads, setWasmBackendThreaded, type WasmThreadsOptions, type WasmThreadsResult } from "./wasm-threads.js";
export { createKernelThreadPool, ensureKernelThreads, startKernelThreads, stopKernelThreads, type KernelThreadsOptions } from "./kernel-threads.js";
