/**
 * Multi-threaded tfjs-wasm in Node (pinned to @tensorflow/tfjs-backend-wasm 4.22.0).
 *
 * tfjs-wasm ships a threaded-SIMD build, but never uses it in Node: `WASM_HAS_MULTITHREAD_SUPPORT`
 * is hard-coded false there, because Emscripten's pthread workers are created from a `blob:` URL
 * (which Node's `Worker` refuses) and the workers then import the main script from a `Blob`. This
 * module makes that build start in Node without editing the package:
 *
 * - the worker source (the package's `wasm-out/tfjs-backend-wasm-threaded-simd.worker.js`, newlines
 *   escaped as tfjs does for its blob) is written to a real file in the OS temp directory, with a
 *   wrapper that points each worker's `load` message at the package's own
 *   `wasm-out/tfjs-backend-wasm-threaded-simd.js`; while the backend initialises, `URL.createObjectURL`
 *   returns that file for tfjs's worker blob;
 * - tfjs caps XNNPACK's thread pool at `os.cpus().length / 2` (its C++ `num_cores`, computed once
 *   at start-up), so `os.cpus()` reports twice the requested thread count during initialisation;
 * - the pool's worker threads are unref'd once started, so they do not keep the process alive;
 * - the workers start with no Node flags (`worker-argv.ts`), and the pre-created
 *   workers XNNPACK does not take are terminated.
 *
 * Everything is restored after initialisation. Any failure falls back to the single-threaded SIMD
 * build with a logged reason.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import * as workerThreads from "node:worker_threads";
import * as tf from "@tensorflow/tfjs-core";
import { workerExecArgv } from "./worker-argv.js";

/** The tfjs-wasm version whose internals this module relies on. */
export const PINNED_TFJS_WASM_VERSION = "4.22.0";

/** XNNPACK's thread pool is capped at 8 in tfjs-wasm (8 pre-created workers). */
const MAX_THREADS = 8;

export interface WasmThreadsOptions {
  /** Threads for XNNPACK: `true` (default) = the machine's available parallelism, a number, or `false`/1 = single-threaded. */
  threads?: boolean | number;
  /** Where fail-safe reasons go. Default `console.warn`. */
  warn?: (message: string) => void;
}

export interface WasmThreadsResult {
  /** Whether `tf.setBackend('wasm')` succeeded (threaded or, after a fall-back, single-threaded). */
  ok: boolean;
  /** XNNPACK threads in use (1 = single-threaded). */
  threads: number;
  /** Why the threaded build is not in use, when it is not (also passed to `warn` unless it was asked for). */
  reason?: string;
}

interface ThreadedPaths {
  workerFile: string;
  mainScript: string;
}

/** Requested thread count, clamped to tfjs-wasm's pool; 1 means single-threaded. */
export function requestedThreads(threads: boolean | number | undefined): number {
  if (threads === false) return 1;
  const n = threads === undefined || threads === true ? (os.availableParallelism?.() ?? os.cpus().length) : Math.floor(threads);
  if (!Number.isFinite(n) || n < 1) throw new RangeError(`threads must be a positive integer, true or false; got ${String(threads)}`);
  return Math.min(n, MAX_THREADS);
}

/** Checks the installed tfjs-wasm is the pinned version with the internals we patch; writes the worker file. */
function prepareThreadedFiles(): ThreadedPaths {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve("@tensorflow/tfjs-backend-wasm/package.json");
  const version = (JSON.parse(readFileSync(pkgJson, "utf8")) as { version?: string }).version;
  if (version !== PINNED_TFJS_WASM_VERSION) {
    throw new Error(`@tensorflow/tfjs-backend-wasm is ${String(version)}; fitloop's thread support is pinned to ${PINNED_TFJS_WASM_VERSION}`);
  }
  const dir = path.join(path.dirname(pkgJson), "wasm-out");
  const mainScript = path.join(dir, "tfjs-backend-wasm-threaded-simd.js");
  const workerSource = (require(path.join(dir, "tfjs-backend-wasm-threaded-simd.worker.js")) as { wasmWorkerContents?: unknown }).wasmWorkerContents;
  if (typeof workerSource !== "string") throw new Error("tfjs-wasm's worker source (wasmWorkerContents) was not found");
  for (const needle of ['e.data.cmd==="load"', "importScripts(e.data.urlOrBlob)", "WasmBackendModuleThreadedSimd(Module)", "self.onmessage="]) {
    if (!workerSource.includes(needle)) throw new Error(`tfjs-wasm's worker source does not contain ${needle}`);
  }
  if (!readFileSync(mainScript, "utf8").includes("var WasmBackendModuleThreadedSimd")) throw new Error(`${mainScript} does not define WasmBackendModuleThreadedSimd`);
  // tfjs escapes newlines before it puts the source in a Blob; the worker source relies on it.
  const source =
    workerSource.replace(/\n/g, "\\n") +
    `\n;(function(){var load=self.onmessage;self.onmessage=function(e){if(e&&e.data&&e.data.cmd==="load")e.data.urlOrBlob=${JSON.stringify(mainScript)};return load(e)}})();\n`;
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const workerFile = path.join(os.tmpdir(), `fitloop-tfjs-wasm-${PINNED_TFJS_WASM_VERSION}-${hash}.worker.cjs`);
  if (!existsSync(workerFile) || readFileSync(workerFile, "utf8") !== source) {
    const tmp = `${workerFile}.${process.pid}.tmp`;
    writeFileSync(tmp, source);
    renameSync(tmp, workerFile); // atomic: concurrent processes never see a partial file
  }
  return { workerFile, mainScript };
}

interface PThreadModule {
  PThread?: { runningWorkers: { unref(): void }[]; unusedWorkers: { terminate(): unknown }[] };
}

/**
 * Emscripten's pthread workers are `new Worker(script)` through `require("node:worker_threads").Worker`,
 * read while the module initialises: a subclass there starts them with no Node flags
 * (`workerExecArgv`).
 */
function withPthreadWorkerFlags(): () => void {
  const mod = createRequire(import.meta.url)("node:worker_threads") as typeof workerThreads;
  const Real = mod.Worker;
  const execArgv = workerExecArgv();
  class PthreadWorker extends Real {
    constructor(filename: string | URL, options?: workerThreads.WorkerOptions) {
      super(filename, { ...options, execArgv });
    }
  }
  try {
    mod.Worker = PthreadWorker;
  } catch {
    return () => undefined; // a read-only export: the workers keep the parent's flags
  }
  return () => {
    mod.Worker = Real;
  };
}

/**
 * Emscripten's pthread workers pipe their stdio into the parent's, each adding listeners to
 * process.stdout/stderr: with a few threads Node then warns (MaxListenersExceededWarning) when the
 * user adds one of their own. Raise the streams' limit by what the workers added.
 */
async function withStdioListenerBudget<T>(fn: () => Promise<T>): Promise<T> {
  const streams = [process.stdout, process.stderr];
  const before = streams.map((s) => s.eventNames().reduce((n, e) => Math.max(n, s.listenerCount(e)), 0));
  try {
    return await fn();
  } finally {
    streams.forEach((s, i) => {
      const added = s.eventNames().reduce((n, e) => Math.max(n, s.listenerCount(e)), 0) - before[i]!;
      if (added > 0) s.setMaxListeners(Math.max(s.getMaxListeners(), 10) + added);
    });
  }
}

/**
 * Initialises the wasm backend (`tf.setBackend('wasm')`) with `threads` XNNPACK threads, falling
 * back to the single-threaded SIMD build with a logged reason. `@tensorflow/tfjs-backend-wasm` must
 * be imported already. When the wasm backend was initialised before, it is used as it is.
 */
export async function setWasmBackendThreaded(options: WasmThreadsOptions = {}): Promise<WasmThreadsResult> {
  const warn = options.warn ?? ((m: string) => console.warn(m));
  const wanted = requestedThreads(options.threads);
  const wasmModule = (await import("@tensorflow/tfjs-backend-wasm")) as unknown as { getThreadsCount(): number };
  const threadsNow = (): number => {
    try {
      return wasmModule.getThreadsCount();
    } catch {
      return 1;
    }
  };
  const single = async (reason?: string): Promise<WasmThreadsResult> => {
    if (reason && wanted > 1) warn(`fitloop: tfjs-wasm runs single-threaded: ${reason}`);
    const ok = await tf.setBackend("wasm");
    return { ok, threads: ok ? threadsNow() : 0, ...(reason ? { reason } : {}) };
  };
  if (wanted <= 1) return single();
  if ("wasm" in tf.engine().registry) {
    const n = threadsNow();
    return n >= wanted ? single() : single(`the wasm backend was initialised before fitloop could enable threads (it uses ${n})`);
  }
  if (typeof SharedArrayBuffer === "undefined") return single("SharedArrayBuffer is not available");
  let paths: ThreadedPaths;
  try {
    paths = prepareThreadedFiles();
  } catch (e) {
    return single((e as Error).message);
  }
  const env = tf.env();
  const createObjectURL = URL.createObjectURL;
  const cpus = os.cpus;
  let ok = false;
  let error: unknown;
  let restoreWorker = (): void => undefined;
  try {
    restoreWorker = withPthreadWorkerFlags();
    env.set("WASM_HAS_MULTITHREAD_SUPPORT", true);
    URL.createObjectURL = (obj: Blob) => (obj instanceof Blob && obj.type === "application/javascript" ? paths.workerFile : createObjectURL.call(URL, obj));
    os.cpus = () => {
      const real = cpus.call(os);
      return Array.from({ length: 2 * wanted }, (_, i) => real[i % real.length]!);
    };
    ok = await withStdioListenerBudget(() => tf.setBackend("wasm"));
  } catch (e) {
    error = e;
  } finally {
    restoreWorker();
    URL.createObjectURL = createObjectURL;
    os.cpus = cpus;
    env.set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  }
  if (!ok) return single(error ? `the threaded build failed to initialise: ${(error as Error).message ?? String(error)}` : "the threaded build failed to initialise");
  const backend = tf.engine().registry["wasm"] as unknown as { wasm?: PThreadModule } | undefined;
  // pthreadpool's workers wait for work for the life of the backend; they must not keep Node alive
  for (const w of backend?.wasm?.PThread?.runningWorkers ?? []) w.unref();
  // Emscripten pre-creates 8 workers and XNNPACK's pool takes threads - 1 of them once, at start-up:
  // the rest idle for the life of the process (~7-12 MiB resident each). Should a thread be wanted
  // later, Emscripten makes a new worker (PThread.getNewWorker).
  for (const w of backend?.wasm?.PThread?.unusedWorkers.splice(0) ?? []) void w.terminate();
  const n = threadsNow();
  if (n < wanted) warn(`fitloop: tfjs-wasm runs ${n} threads instead of ${wanted}`);
  return { ok, threads: n };
}
