/**
 * tfjs-wasm's binaries as assets of this build: Vite copies each into the output (hashed name) and
 * gives its URL, so the page never fetches them from a CDN and a built copy works offline.
 */
/// <reference types="vite/client" />
import plainWasm from "@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm.wasm?url";
import simdWasm from "@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-simd.wasm?url";
import threadedSimdWasm from "@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.wasm?url";

/** The map `setWasmPaths` takes: tfjs picks one by what the browser supports (SIMD, threads). */
export const wasmFiles = {
  "tfjs-backend-wasm.wasm": plainWasm,
  "tfjs-backend-wasm-simd.wasm": simdWasm,
  "tfjs-backend-wasm-threaded-simd.wasm": threadedSimdWasm,
};
