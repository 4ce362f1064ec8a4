import { backend_util, type KernelBackend, type NamedAttrMap, type NamedTensorInfoMap } from "@tensorflow/tfjs-core";

/**
 * Threads per operation for tfjs-wasm's threaded-SIMD build (pinned to tfjs-wasm 4.22.0).
 *
 * tfjs-wasm runs every XNNPACK operation (matmuls, convolutions, but also every elementwise Add,
 * Multiply, Sqrt...) on one pthreadpool, the C++ global `tfjs::backend::threadpool`. After each
 * parallel operation the pool's workers spin for a while waiting for the next one. An MLP step is
 * ~200 small kernels, so with 2 threads the worker spins through the whole step (1.8 cores busy for
 * the same step time as one thread on an idle machine), and when another process holds the second
 * core, the spinning worker and the waiting main thread share one core: 20 vs 6.3 ms per MLP step.
 *
 * pthreadpool runs a job on the calling thread when the pool pointer is NULL (its documented
 * semantics). The gate keeps tfjs-wasm's pool pointer at 0 by default, so every kernel runs on the
 * calling thread and the workers sleep, and puts the pool back only for the duration of a matmul
 * or convolution of at least `minFlops` floating-point operations (`runWasm` in wasm-util.ts and
 * the Conv2D/FusedConv2D/_FusedMatMul/depthwise wrappers in wasm-threaded-kernels.ts).
 *
 * The pointer's address in linear memory (`THREADPOOL_ADDRESS`) is read off the binary
 * (`get_threads_count` loads it); before using it, the gate checks that the word there points to a
 * pool whose thread count (offset 132, `pthreadpool_get_threads_count`) equals what tfjs reports,
 * and that `_get_threads_count()` follows a write of 0 to it (it returns -1 for no pool). Anything
 * else (another tfjs build, the single-threaded builds, a pool of 1) leaves the backend untouched.
 */

/** Address of `tfjs::backend::threadpool` in tfjs-wasm 4.22.0's `tfjs-backend-wasm-threaded-simd.wasm`. */
export const THREADPOOL_ADDRESS = 23564;
/** Offset of `threads_count` in pthreadpool's struct (as `pthreadpool_get_threads_count` reads it). */
const THREADS_COUNT_OFFSET = 132;

/**
 * Default minimum work for threads: 2 * m * n * k (matmul) or 2 * output * filter window * input
 * channels (convolution). The MLP's matmuls (~4-26 MFLOP) run on one thread; the CNN's second
 * convolution and its gradients (~285 MFLOP) on all. See docs/journal.md (round 4).
 */
export const DEFAULT_THREAD_MIN_FLOPS = 100e6;

interface GateState {
  heap: () => Int32Array;
  pool: number;
  threads: number;
  /** Whether the gate has set the pointer to 0 (the gate's resting state) on this module. */
  resting: boolean;
}

interface ThreadedWasm {
  wasmMemory?: unknown;
  HEAP32?: Int32Array;
  _get_threads_count?: () => number;
}

let enabled = false;
let minFlops = DEFAULT_THREAD_MIN_FLOPS;
/** Gate state per tfjs-wasm module (null: not gateable). */
const states = new WeakMap<object, GateState | null>();
/** Modules whose pointer the gate changed, to put back when the gate is disabled. */
const touched = new Set<GateState>();

function discover(wasm: ThreadedWasm): GateState | null {
  if (!(wasm.wasmMemory instanceof WebAssembly.Memory) || typeof wasm._get_threads_count !== "function") return null;
  const memory = wasm.wasmMemory;
  const bytes = memory.buffer.byteLength;
  if (typeof SharedArrayBuffer === "undefined" || !(memory.buffer instanceof SharedArrayBuffer)) return null;
  const heap = (): Int32Array => (wasm.HEAP32 && wasm.HEAP32.buffer === memory.buffer ? wasm.HEAP32 : new Int32Array(memory.buffer));
  const slot = THREADPOOL_ADDRESS >> 2;
  const pool = heap()[slot]!;
  if (pool <= 0 || pool % 4 !== 0 || pool + THREADS_COUNT_OFFSET + 4 > bytes) return null;
  const threads = heap()[(pool + THREADS_COUNT_OFFSET) >> 2]!;
  if (threads < 2 || wasm._get_threads_count() !== threads) return null;
  heap()[slot] = 0;
  const follows = wasm._get_threads_count() === -1;
  heap()[slot] = pool;
  return follows ? { heap, pool, threads, resting: false } : null;
}

function stateOf(backend: KernelBackend): GateState | undefined {
  const wasm = (backend as unknown as { wasm?: ThreadedWasm }).wasm;
  if (!wasm || typeof wasm !== "object") return undefined;
  let state = states.get(wasm);
  if (state === undefined) {
    state = discover(wasm);
    states.set(wasm, state);
  }
  return state ?? undefined;
}

/**
 * Runs `body` (one kernel) with tfjs-wasm's thread pool when the gate is on and `flops` reaches the
 * threshold, and on the calling thread otherwise. Without a gateable threaded backend, or with the
 * gate off, it just runs `body` (tfjs-wasm's own behaviour).
 */
export function withWasmThreads<T>(backend: KernelBackend, flops: number, body: () => T): T {
  if (!enabled) return body();
  const s = stateOf(backend);
  if (!s) return body();
  const slot = THREADPOOL_ADDRESS >> 2;
  if (!s.resting) {
    s.heap()[slot] = 0; // from now on, everything not let through here runs on the calling thread
    s.resting = true;
    touched.add(s);
  }
  const wanted = flops >= minFlops ? s.pool : 0;
  const previous = s.heap()[slot]!;
  if (previous === wanted) return body();
  s.heap()[slot] = wanted;
  try {
    return body();
  } finally {
    s.heap()[slot] = previous; // the kernel may have grown the memory: heap() again
  }
}

/**
 * Turns threads-per-operation on (the default with `useBackend('wasm')`: matmuls and convolutions of
 * at least `minFlops` use the pool, everything else runs on the calling thread) or off (tfjs-wasm's
 * own behaviour: every XNNPACK operation uses the pool; the pool pointer is put back at once).
 */
export function setWasmThreadGate(on: boolean, options: { minFlops?: number } = {}): void {
  if (options.minFlops !== undefined) {
    if (!(options.minFlops >= 0)) throw new RangeError(`minFlops must be >= 0, got ${options.minFlops}`);
    minFlops = options.minFlops;
  }
  enabled = on;
  if (!on) {
    for (const s of touched) {
      s.heap()[THREADPOOL_ADDRESS >> 2] = s.pool;
      s.resting = false;
    }
    touched.clear();
  }
}

export const wasmThreadGateEnabled = (): boolean => enabled;
export const wasmThreadMinFlops = (): number => minFlops;

/**
 * The gate's view of the wasm backend: pool threads (1 when there is no gateable pool) and whether
 * small operations currently run on the calling thread.
 */
export function wasmThreadGateInfo(backend: KernelBackend): { poolThreads: number; gated: boolean } {
  const s = stateOf(backend);
  return { poolThreads: s?.threads ?? 1, gated: !!s && enabled };
}

const prod = (v: readonly number[]): number => v.reduce((p, q) => p * q, 1);

/** Floating-point operations of a kernel the gate may thread; 0 for kernels it never threads. */
export function kernelFlops(name: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap): number {
  switch (name) {
    case "BatchMatMul":
    case "_FusedMatMul": {
      const { a, b } = inputs;
      if (!a || !b || a.shape.length < 2 || b.shape.length < 2) return 0;
      const ta = !!attrs["transposeA"];
      const tb = !!attrs["transposeB"];
      const ra = a.shape.length;
      const rb = b.shape.length;
      const m = ta ? a.shape[ra - 1]! : a.shape[ra - 2]!;
      const k = ta ? a.shape[ra - 2]! : a.shape[ra - 1]!;
      const n = tb ? b.shape[rb - 2]! : b.shape[rb - 1]!;
      const batch = Math.max(prod(a.shape.slice(0, -2)), prod(b.shape.slice(0, -2)));
      return 2 * batch * m * n * k;
    }
    case "Conv2D":
    case "FusedConv2D":
    case "DepthwiseConv2dNative":
    case "FusedDepthwiseConv2D": {
      const { x, filter } = inputs;
      if (!x || !filter || x.shape.length !== 4 || filter.shape.length !== 4) return 0;
      const depthwise = name.includes("Depthwise");
      try {
        const info = backend_util.computeConv2DInfo(
          x.shape as [number, number, number, number],
          filter.shape as [number, number, number, number],
          attrs["strides"] as [number, number],
          (attrs["dilations"] as [number, number] | number | undefined) ?? 1,
          attrs["pad"] as "valid",
          attrs["dimRoundingMode"] as "floor" | undefined,
          depthwise,
          attrs["dataFormat"] === "NCHW" ? "channelsFirst" : "channelsLast",
        );
        const window = info.filterHeight * info.filterWidth * (depthwise ? 1 : info.inChannels);
        return 2 * prod(info.outShape) * window;
      } catch {
        return 0;
      }
    }
    default:
      return 0;
  }
}
