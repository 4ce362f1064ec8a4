import * as tf from "@tensorflow/tfjs-core";
import { fmaActive, registerWasmKernels, restoreWasmKernels, setFmaEnabled, setKernelThreadsEnabled } from "./kernels/index.js";

/** How `useWasm` reports what it could not do (falling back to one thread, kernel threads not started). */
export interface WasmLogger {
  warn(message: string): void;
}

export interface UseWasmOptions {
  /**
   * Register fitloop's kernels: `Conv2DBackpropFilter`, which tfjs-wasm lacks (so CNNs can train),
   * and faster replacements of stock kernels (docs/journal.md). Default true. `false` puts back the
   * stock kernels that were replaced (an added kernel that tfjs-wasm lacks stays registered once added).
   */
  kernels?: boolean;
  /**
   * XNNPACK threads in Node (tfjs-wasm's threaded-SIMD build, which tfjs itself never starts in
   * Node): `true` (default) the machine's available parallelism (at most 8); a number; `false` or 1
   * single-threaded. Takes effect on the first initialisation of the wasm backend in a process;
   * falls back to single-threaded with a logged reason when the threaded build cannot start.
   * Ignored outside Node.
   */
  threads?: boolean | number;
  /**
   * Worker threads for fitloop's own SIMD kernels (Node, threaded build): kernels that use them split
   * their rows between the calling thread and `threads - 1` workers on the same shared memory. Same
   * results as one thread within float tolerance (most bit for bit). Default true.
   */
  kernelThreads?: boolean;
  /**
   * Relaxed-SIMD FMA (`f32x4.relaxed_madd`, vfmadd231ps on x86) in fitloop's packed GEMM, where the
   * engine validates relaxed SIMD: Node 22+, Chrome; Node 20 after fitloop sets the V8 flag
   * `--experimental-wasm-relaxed-simd` (process-wide, before the module is compiled). Results of
   * matmuls, dense layers and convolutions then differ from the cpu backend (and from FMA off) in the
   * last bits. Default true: used where relaxed SIMD validates, else the plain SIMD GEMM, silently
   * (with `fma: true` the fallback is logged as a warning); `fmaActive()` tells which runs. `false`:
   * the mul + add GEMM, whose bits do not depend on the engine or CPU (a run resumed elsewhere
   * continues bit for bit; with FMA that holds on the same engine and CPU); it also turns off FMA
   * turned on earlier.
   */
  fma?: boolean;
  /** Where fail-safe reasons are reported. Default: console. */
  logger?: WasmLogger;
}

/** The wasm backend could not be loaded or initialised; `cause` is tfjs's error. */
export class WasmBackendError extends Error {
  readonly code = "BACKEND_UNAVAILABLE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WasmBackendError";
  }
}

/** The Node-only entry; a computed specifier keeps browser bundlers from following it. */
const NODE_ENTRY = "@fitloop/wasm/node";
const WASM_PACKAGE = "@tensorflow/tfjs-backend-wasm";

const isNode = (): boolean => typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string";

/**
 * Loads tfjs-wasm, registers fitloop's kernels, and makes wasm the active backend: threaded in Node
 * (with kernel threads), single-threaded elsewhere. Plain tfjs works with it (`model.fit` of a CNN on
 * wasm needs it); `@fitloop/core`'s `useBackend('wasm')` calls it when this package is installed.
 * Returns the active backend's name ("wasm").
 *
 * ```ts
 * import { useWasm } from "@fitloop/wasm";
 * await useWasm(); // or useWasm({ threads: false, kernels: true })
 * ```
 */
export async function useWasm(options: UseWasmOptions = {}): Promise<string> {
  const logger = options.logger ?? { warn: (m: string) => console.warn(m) };
  let wasmModule: { version_wasm?: string };
  try {
    wasmModule = (await import(/* @vite-ignore */ WASM_PACKAGE)) as { version_wasm?: string };
  } catch (e) {
    throw new WasmBackendError(`loading ${WASM_PACKAGE} failed (npm install ${WASM_PACKAGE}): ${(e as Error).message}`, { cause: e });
  }
  // before the kernel threads start: their workers compile the FMA module only while it is on
  const fma = await setFmaEnabled(options.fma !== false);
  if (options.fma === true && fma.reason) logger.warn(`fitloop: FMA not used, the plain SIMD GEMM runs: ${fma.reason}`);
  const singleThreaded = options.threads === false || options.threads === 1;
  setKernelThreadsEnabled(options.kernelThreads !== false && !singleThreaded);
  if (options.kernels === false) restoreWasmKernels();
  else registerWasmKernels(wasmModule.version_wasm !== undefined ? { tfjsWasmVersion: wasmModule.version_wasm } : {});
  let ok: boolean;
  try {
    ok = singleThreaded || !isNode() ? await tf.setBackend("wasm") : await setThreaded(options, logger);
    await tf.ready();
  } catch (e) {
    throw new WasmBackendError(`the wasm backend failed to initialise: ${(e as Error).message}`, { cause: e });
  }
  if (!ok || tf.getBackend() !== "wasm") throw new WasmBackendError(`the wasm backend failed to initialise; active backend is ${tf.getBackend()}`);
  if (options.fma === true && !fma.reason && !fmaActive()) logger.warn("fitloop: FMA not used, the plain SIMD GEMM runs: the FMA module could not be instantiated on the wasm backend's memory");
  return tf.getBackend();
}

/** `tf.setBackend('wasm')` through the Node entry: the threaded build, then kernel threads. */
async function setThreaded(options: UseWasmOptions, logger: WasmLogger): Promise<boolean> {
  let node: typeof import("./node/index.js");
  try {
    node = (await import(/* @vite-ignore */ /* webpackIgnore: true */ NODE_ENTRY)) as typeof import("./node/index.js");
  } catch (e) {
    logger.warn(`fitloop: tfjs-wasm runs single-threaded: loading ${NODE_ENTRY} failed: ${(e as Error).message}`);
    return tf.setBackend("wasm");
  }
  const result = await node.setWasmBackendThreaded({ threads: options.threads ?? true, warn: (m) => logger.warn(m) });
  if (result.ok && options.kernelThreads !== false && result.threads > 1) {
    const started = await node.ensureKernelThreads(result.threads);
    if (started.reason) logger.warn(`fitloop: kernel threads not started: ${started.reason}`);
  }
  return result.ok;
}
