import * as tf from "@tensorflow/tfjs-core";
import { BackendError } from "./errors.js";
import { consoleLogger, type Logger } from "./logger.js";

export type BackendName = "tensorflow" | "wasm" | "cpu";

export interface UseBackendOptions {
  /**
   * Register fitloop's kernels for the wasm backend: a `Conv2DBackpropFilter`, which tfjs-wasm lacks
   * (so CNNs can train there), and faster replacements of stock kernels (docs/performance.md).
   * Default true. `false` puts back the stock kernels fitloop replaced (an added kernel that tfjs-wasm
   * lacks stays registered once added).
   */
  wasmKernels?: boolean;
  /**
   * XNNPACK threads for the wasm backend in Node (tfjs-wasm's threaded-SIMD build, which tfjs itself
   * never starts in Node; see `@fitloop/core/node`). `true` (default): the machine's available
   * parallelism (at most 8); a number; `false` or 1: single-threaded. Takes effect only on the first
   * initialisation of the wasm backend in a process; falls back to single-threaded with a logged
   * reason when the threaded build cannot start. Ignored outside Node and for other backends.
   */
  threads?: boolean | number;
  /**
   * Worker threads for fitloop's own WebAssembly SIMD kernels (`@fitloop/core/node`'s kernel
   * threads): in Node with the threaded build, kernels that use them split their rows between the
   * calling thread and `threads - 1` workers on the same shared memory (docs/performance.md, round 8).
   * Results are the same as on one thread within float tolerance (most bit for bit). Default true;
   * `false` runs them on the calling thread only. Ignored outside Node and single-threaded.
   */
  kernelThreads?: boolean;
  /** Where fail-safe reasons (e.g. falling back to one thread) are reported. Default: console. */
  logger?: Logger;
}

/** The Node-only entry; a computed specifier keeps browser bundlers from following it. */
const NODE_ENTRY = "@fitloop/core/node";

const isNode = (): boolean => {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === "string";
};

/** `tf.setBackend('wasm')`, threaded through the Node entry when in Node and not opted out. */
async function setWasmBackend(options: UseBackendOptions): Promise<boolean> {
  if (options.threads === false || options.threads === 1 || !isNode()) return tf.setBackend("wasm");
  let node: typeof import("./node/index.js");
  try {
    node = (await import(/* @vite-ignore */ /* webpackIgnore: true */ NODE_ENTRY)) as typeof import("./node/index.js");
  } catch (e) {
    (options.logger ?? consoleLogger).warn(`fitloop: tfjs-wasm runs single-threaded: loading ${NODE_ENTRY} failed: ${(e as Error).message}`);
    return tf.setBackend("wasm");
  }
  const logger = options.logger ?? consoleLogger;
  const result = await node.setWasmBackendThreaded({ threads: options.threads ?? true, warn: (m) => logger.warn(m) });
  if (result.ok && options.kernelThreads !== false && result.threads > 1) {
    const started = await node.ensureKernelThreads(result.threads);
    if (started.reason) logger.warn(`fitloop: kernel threads not started: ${started.reason}`);
  }
  return result.ok;
}

const PACKAGES: Record<BackendName, readonly string[]> = {
  tensorflow: ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"],
  wasm: ["@tensorflow/tfjs-backend-wasm"],
  cpu: ["@tensorflow/tfjs-backend-cpu"],
};

async function importFirst(names: readonly string[]): Promise<string | undefined> {
  for (const name of names) {
    try {
      await import(/* @vite-ignore */ name);
      return name;
    } catch (e) {
      if (!isModuleNotFound(e)) throw new BackendError(`loading ${name} failed: ${(e as Error).message}`, { cause: e });
    }
  }
  return undefined;
}

function isModuleNotFound(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND" || /Cannot find (module|package)|Failed to resolve/.test(String((e as Error)?.message));
}

/**
 * Loads and activates a backend: `'tensorflow'` (tfjs-node-gpu, then tfjs-node), `'wasm'` or `'cpu'`.
 * Throws a `BackendError` naming the package to install when it is missing, or when tfjs fails
 * to initialise it (tfjs can report the failed backend as active until `tf.ready()`, so the
 * result of `setBackend` is checked). Returns the active backend's name.
 */
export async function useBackend(name: BackendName, options: UseBackendOptions = {}): Promise<string> {
  const candidates = PACKAGES[name];
  if (!candidates) throw new BackendError(`unknown backend "${String(name)}"; use one of ${Object.keys(PACKAGES).join(", ")}`);
  const loaded = await importFirst(candidates);
  if (!loaded) {
    const install = candidates.map((c) => `npm install ${c}`).join(" or ");
    throw new BackendError(`the ${name} backend is not installed: ${install}`);
  }
  const tfName = name === "tensorflow" ? "tensorflow" : name;
  if (name === "wasm") {
    const { registerWasmKernels, restoreWasmKernels, setKernelThreadsEnabled } = await import("./kernels/index.js");
    setKernelThreadsEnabled(options.kernelThreads !== false && options.threads !== false && options.threads !== 1);
    if (options.wasmKernels === false) restoreWasmKernels();
    else {
      const wasmModule = (await import(/* @vite-ignore */ "@tensorflow/tfjs-backend-wasm")) as { version_wasm?: string };
      registerWasmKernels(wasmModule.version_wasm !== undefined ? { tfjsWasmVersion: wasmModule.version_wasm } : {});
    }
  }
  let ok: boolean;
  try {
    ok = name === "wasm" ? await setWasmBackend(options) : await tf.setBackend(tfName);
    await tf.ready();
  } catch (e) {
    throw new BackendError(`the ${name} backend (${loaded}) failed to initialise: ${(e as Error).message}`, { cause: e });
  }
  if (!ok || tf.getBackend() !== tfName) throw new BackendError(`the ${name} backend (${loaded}) failed to initialise; active backend is ${tf.getBackend()}`);
  return tf.getBackend();
}
