import { kernelFlops, withWasmThreads } from "./wasm-threadpool.js";
import type { EmscriptenWasm } from "./simd/index.js";
import { getKernel, registerKernel, serialization, unregisterKernel, type KernelBackend, type KernelConfig, type KernelFunc, type NamedAttrMap, type NamedTensorInfoMap, type TensorInfo } from "@tensorflow/tfjs-core";

export const WASM = "wasm";

/**
 * The parts of tfjs-wasm's BackendWasm the kernels use (pinned to tfjs 4.22): tensor buffers by
 * dataId in its heap, outputs, and its Emscripten module with the heap views.
 */
export interface WasmHeapBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number; refCount?: number } | undefined };
  makeOutput(shape: number[], dtype: string): TensorInfo;
  /** False while other references to the buffer remain. */
  disposeData(dataId: object): boolean;
  incRef(dataId: object): void;
  wasm: EmscriptenWasm & { HEAPF32: Float32Array; HEAP32: Int32Array; HEAPU8: Uint8Array };
}

/** The kernels fitloop replaced on wasm, with the stock config each replaced (to call or restore). */
const originals = new Map<string, KernelConfig>();

/** The stock tfjs-wasm kernel `name`, also after fitloop replaced it. */
export function stockWasmKernel(name: string): KernelConfig | undefined {
  return originals.get(name) ?? getKernel(name, WASM);
}

/**
 * Runs a wasm kernel directly (no engine, no tape, no tensor tracking): the stock one by default,
 * so a replacement can fall back to, or compose, the kernel it replaced. The caller owns the output
 * and disposes intermediates with `backend.disposeData`. Matmuls and convolutions go through the
 * thread gate (`wasm-threadpool.ts`): tfjs-wasm's thread pool only when they are large enough.
 */
export function runWasm(name: string, backend: KernelBackend, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
  const kernel = stockWasmKernel(name);
  if (!kernel) throw new Error(`fitloop wasm kernels need the wasm kernel '${name}', which is not registered`);
  const flops = kernelFlops(name, inputs, attrs);
  const out = flops > 0 ? withWasmThreads(backend, flops, () => kernel.kernelFunc({ inputs, backend, attrs })) : kernel.kernelFunc({ inputs, backend, attrs });
  const info = Array.isArray(out) ? out[0] : out;
  if (!info) throw new Error(`fitloop wasm kernels: kernel '${name}' returned no output`);
  return info;
}

/**
 * Replaces the stock wasm kernel of the same name with `config`, keeping the stock `setupFunc`
 * (tfjs-wasm binds its C++ entry point there, and the fallback calls the stock kernel function).
 * Idempotent; a no-op when the stock kernel is not registered (tfjs-wasm not loaded).
 */
export function replaceWasmKernel(config: KernelConfig): void {
  const current = getKernel(config.kernelName, WASM);
  if (!current || current.kernelFunc === config.kernelFunc) return;
  if (!originals.has(config.kernelName)) originals.set(config.kernelName, current);
  const stock = originals.get(config.kernelName)!;
  unregisterKernel(config.kernelName, WASM);
  const replacement: KernelConfig = { ...config, backendName: WASM };
  if (stock.setupFunc) replacement.setupFunc = stock.setupFunc;
  if (stock.disposeFunc) replacement.disposeFunc = stock.disposeFunc;
  registerKernel(replacement);
}

/** Puts back every stock wasm kernel fitloop replaced. */
export function restoreWasmKernels(): void {
  for (const [name, stock] of originals) {
    if (getKernel(name, WASM)) unregisterKernel(name, WASM);
    registerKernel(stock);
  }
  originals.clear();
}

/** Arguments tfjs passes to a kernel function, with the backend typed (tfjs types it as `{}`). */
export interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}

export const asKernelFunc = (f: (args: KernelArgs) => TensorInfo | TensorInfo[]): KernelFunc => f as unknown as KernelFunc;

/**
 * Runs `body`; when it throws (a trap, a kernel thread's error or timeout), disposes `outputs`, made
 * for it and not yet owned by the engine, and rethrows: a kernel that fails leaves no buffers behind.
 */
export function disposeOnThrow<T>(backend: object, outputs: readonly TensorInfo[], body: () => T): T {
  try {
    return body();
  } catch (e) {
    for (const t of outputs) (backend as KernelBackend).disposeData(t.dataId);
    throw e;
  }
}

/** Runs `body` with a list to collect intermediates; disposes them all afterwards (also on error). */
export function withTemps<T>(backend: KernelBackend, body: (keep: (t: TensorInfo) => TensorInfo) => T): T {
  const temps: TensorInfo[] = [];
  try {
    return body((t) => (temps.push(t), t));
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/**
 * The prototype of tfjs-layers' registered layer class `className` (`"Conv2D"`, `"Dense"`, ...),
 * when it has a function `method`: what the fused training paths patch (pinned to tfjs-layers 4.22).
 */
export function layerPrototype<M extends string, F>(className: string, method: M): Record<M, F> | undefined {
  const entry = (serialization.SerializationMap.getMap().classNameMap as Record<string, [unknown, unknown] | undefined>)[className];
  const proto = (entry?.[0] as { prototype?: Record<string, unknown> } | undefined)?.prototype;
  return typeof proto?.[method] === "function" ? (proto as Record<M, F>) : undefined;
}
