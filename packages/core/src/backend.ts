import * as tf from "@tensorflow/tfjs-core";
import { BackendError } from "./errors.js";
import { consoleLogger, type Logger } from "./logger.js";

export type BackendName = "tensorflow" | "wasm" | "cpu";

export interface UseBackendOptions {
  /**
   * With `@fitloop/wasm` installed: register its kernels for the wasm backend (the
   * `Conv2DBackpropFilter` tfjs-wasm lacks, so CNNs can train, and faster replacements of stock
   * kernels). Default true; `false` puts back the stock kernels it replaced.
   */
  wasmKernels?: boolean;
  /**
   * With `@fitloop/wasm` installed, in Node: XNNPACK threads (tfjs-wasm's threaded-SIMD build).
   * `true` (default): the machine's available parallelism (at most 8); a number; `false` or 1:
   * single-threaded. Ignored for other backends.
   */
  threads?: boolean | number;
  /** With `@fitloop/wasm` installed, in Node: worker threads for its SIMD kernels. Default true. */
  kernelThreads?: boolean;
  /**
   * With `@fitloop/wasm` installed: relaxed-SIMD FMA in its GEMM where the engine validates it
   * (default true; the last bits then differ from the cpu backend). `false`: the mul + add path,
   * whose bits do not depend on the engine or CPU (a checkpoint resumed on another machine continues
   * bit for bit).
   */
  fma?: boolean;
  /** Where fail-safe reasons (e.g. falling back to one thread) are reported. Default: console. */
  logger?: Logger;
}

/** fitloop's wasm training kernels; optional, found by a computed specifier so bundlers do not require it. */
const WASM_PACKAGE = "@fitloop/wasm";

const isNode = (): boolean => {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === "string";
};

interface WasmPackage {
  useWasm(options: { kernels?: boolean; threads?: boolean | number; kernelThreads?: boolean; fma?: boolean; logger?: { warn(m: string): void } }): Promise<string>;
}

/** `@fitloop/wasm` when it is installed, else undefined (stock tfjs-wasm then). */
async function wasmPackage(): Promise<WasmPackage | undefined> {
  try {
    return (await import(/* @vite-ignore */ /* webpackIgnore: true */ WASM_PACKAGE)) as WasmPackage;
  } catch (e) {
    if (isModuleNotFound(e)) return undefined;
    throw new BackendError(`loading ${WASM_PACKAGE} failed: ${(e as Error).message}`, { cause: e });
  }
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
 * For `'wasm'` it uses `@fitloop/wasm` when installed (its kernels, and threads in Node: `useWasm`),
 * and stock tfjs-wasm otherwise.
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
  const logger = options.logger ?? consoleLogger;
  const wasm = name === "wasm" ? await wasmPackage() : undefined;
  if (name === "wasm" && !wasm && (options.threads !== undefined || options.kernelThreads !== undefined || options.wasmKernels === true || options.fma === true)) {
    logger.warn(`fitloop: ${WASM_PACKAGE} is not installed: stock tfjs-wasm runs (single-threaded, without fitloop's kernels: CNNs cannot train); npm install ${WASM_PACKAGE}`);
  }
  let ok: boolean;
  try {
    if (wasm) {
      await wasm.useWasm({ ...(options.wasmKernels !== undefined ? { kernels: options.wasmKernels } : {}), ...(options.threads !== undefined ? { threads: options.threads } : {}), ...(options.kernelThreads !== undefined ? { kernelThreads: options.kernelThreads } : {}), ...(options.fma !== undefined ? { fma: options.fma } : {}), logger: { warn: (m) => logger.warn(m) } });
      ok = true;
    } else {
      ok = await tf.setBackend(tfName);
    }
    await tf.ready();
  } catch (e) {
    throw new BackendError(`the ${name} backend (${wasm ? WASM_PACKAGE : loaded}) failed to initialise: ${(e as Error).message}`, { cause: e });
  }
  if (!ok || tf.getBackend() !== tfName) throw new BackendError(`the ${name} backend (${loaded}) failed to initialise; active backend is ${tf.getBackend()}`);
  return tf.getBackend();
}

/** Kernels stock tfjs-wasm lacks for training that `@fitloop/wasm` adds. */
const ADDED_BY_WASM_PACKAGE = new Set(["Conv2DBackpropFilter"]);

/**
 * tfjs's "Kernel 'X' not registered for backend 'wasm'" for a kernel `@fitloop/wasm` adds, as a
 * `BackendError` that names the fix; any other error is returned as it is.
 */
export function explainMissingKernel(e: unknown): unknown {
  const m = e instanceof Error ? /Kernel '(\w+)' not registered for backend 'wasm'/.exec(e.message) : null;
  if (!m || !ADDED_BY_WASM_PACKAGE.has(m[1]!)) return e;
  return new BackendError(`the wasm backend has no ${m[1]} kernel: stock tfjs-wasm cannot train this model (convolutions need it). npm install ${WASM_PACKAGE}, which adds it; useBackend("wasm") then uses it (or call its useWasm() with plain tfjs)`, { cause: e });
}
