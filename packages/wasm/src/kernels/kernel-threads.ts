/**
 * Threads for fitloop's own WebAssembly SIMD kernels (`simd/*.wat`), browser-safe side.
 *
 * tfjs-wasm's XNNPACK pool only runs XNNPACK operations (and fitloop lends it only to large
 * matmuls/convolutions, `wasm-threadpool.ts`); fitloop's own kernels ran on the calling thread. In
 * Node the threaded-SIMD build's memory is a shared `WebAssembly.Memory`, so `@fitloop/wasm/node`
 * (`node/kernel-threads.ts`) starts worker threads that instantiate the same embedded modules on
 * that memory and installs them here with `setKernelThreadPool`. Kernels then call `splitRows`: the
 * rows are cut into a few chunks per thread, which the caller and the workers claim one at a time
 * and run through the same export (per-element arithmetic is unchanged; per-chunk outputs such as
 * partial sums are the caller's to combine in chunk order, so results do not depend on scheduling). Without a pool (browsers, single-threaded builds, opted out with
 * `useBackend('wasm', {kernelThreads: false})` or `setKernelThreadsEnabled(false)`), or for small
 * work, `splitRows` makes one call over all rows on the calling thread.
 */

/** One call of an embedded module's export: `module` is the `.wat` name (`"batch-norm"`), args are numbers. */
export interface KernelCall {
  module: string;
  fn: string;
  args: readonly number[];
}

/** A pool of workers sharing one `WebAssembly.Memory` (see `node/kernel-threads.ts`). */
export interface KernelThreadPool {
  /** The memory the workers' instances import. */
  readonly memory: WebAssembly.Memory;
  /** Threads that can run parts at once: the caller + workers (>= 2). */
  readonly threads: number;
  /** Whether it can take work now (workers started, not shut down or broken). */
  ready(): boolean;
  /**
   * Runs every task (at most 64), returning when all are done. The caller and the workers claim
   * tasks one at a time, so which thread runs a task is not fixed (a worker that is not scheduled
   * in time leaves its share to the caller); tasks must write disjoint outputs. Throws when a task
   * throws (on any thread) or a worker does not finish a claimed task in time.
   */
  run(tasks: readonly KernelCall[]): void;
  /**
   * Posts tasks to run in the background (where the pool can: `@fitloop/wasm/node`'s can): idle
   * workers run them between jobs, `join()` runs the rest on the caller. See `runInBackground`.
   */
  post?(tasks: readonly KernelCall[], options?: BackgroundOptions): BackgroundJob;
}

/** The order of a background job's tasks: they start in order, task i once `after[i]` tasks have finished (whichever they are). */
export interface BackgroundOptions {
  /** Per task, how many tasks must have finished before it starts (<= its index; default 0). */
  after?: readonly number[];
  /** Each task after the one before (`after[i] = i`). */
  serial?: boolean;
}

/** Work posted with `KernelThreadPool.post` or `runInBackground`. */
export interface BackgroundJob {
  /** Whether every task has finished (then `join()` only reports errors). */
  done(): boolean;
  /**
   * Runs the tasks no worker has claimed yet on the calling thread, waits for the claimed ones and
   * rethrows the first error of any task. Call it before reading what the tasks write, and before
   * freeing any memory they use. Idempotent.
   */
  join(): void;
  /**
   * Whether a task may still be running after `join()` threw (a worker that did not finish in time):
   * the memory the job uses must then not be freed.
   */
  running(): boolean;
}

let pool: KernelThreadPool | undefined;
let enabled = true;

/** Installs (or, with undefined, removes) the pool; done by `@fitloop/wasm/node`. */
export function setKernelThreadPool(p: KernelThreadPool | undefined): void {
  pool = p;
}
export const kernelThreadPool = (): KernelThreadPool | undefined => pool;

/** Turns splitting off (everything on the calling thread) or back on; default on. For opt-outs, benches and tests. */
export function setKernelThreadsEnabled(on: boolean): void {
  enabled = on;
}
export const kernelThreadsEnabled = (): boolean => enabled;

/**
 * Rows below which a split does not pay: a dispatch costs ~10-30 us (wake-up of the worker), a
 * memory-bound pass ~0.3 ns per byte. Measured in docs/journal.md, round 8c.
 */
export const DEFAULT_MIN_SPLIT_BYTES = 256 * 1024;

let memoryBound = true;
/**
 * Whether memory-bound passes (`SplitRowsOptions.memoryBound`: the fused BatchNorm passes, the ReLU
 * gradient) are split too. Default on: on a quiet 2-core machine the CNN step ran 1.039-1.061x
 * faster with them split (under load from other processes they measured 0.85-0.95x;
 * docs/journal.md, round 8); compute-bound work is split regardless.
 */
export function setMemoryBoundSplit(on: boolean): void {
  memoryBound = on;
}
export const memoryBoundSplitEnabled = (): boolean => memoryBound;

/** Chunks per thread for `chunksPerThread`: a worker that wakes late (~15-80 us) still takes its share of the rest. */
export const CHUNKS_PER_THREAD = 4;

/** The most tasks one `KernelThreadPool.run` takes. */
export const MAX_POOL_TASKS = 64;

/** Runs `calls` on the pool in jobs of at most `MAX_POOL_TASKS` tasks each. */
export function runPoolTasks(pool: KernelThreadPool, calls: readonly KernelCall[]): void {
  for (let i = 0; i < calls.length; i += MAX_POOL_TASKS) pool.run(calls.slice(i, i + MAX_POOL_TASKS));
}

/** The pool for kernels on `memory`, when splitting is on and it is usable. */
export function poolFor(memory: WebAssembly.Memory): KernelThreadPool | undefined {
  const p = pool;
  return enabled && p !== undefined && p.memory === memory && p.ready() ? p : undefined;
}

/**
 * Runs `calls` (ordered by `options`) in the background on the pool's idle workers when the
 * pool for `memory` can (see `KernelThreadPool.post`), else on the calling thread at `join()`
 * through `local` (the caller's own instance of each call's export). Work that is not needed
 * at once (the next batch of a data loader) thus fills the gaps between a training step's jobs.
 */
export function runInBackground(memory: WebAssembly.Memory, calls: readonly KernelCall[], local: (call: KernelCall) => void, options: BackgroundOptions = {}): BackgroundJob {
  const p = poolFor(memory);
  if (p?.post && calls.length <= MAX_POOL_TASKS) return p.post(calls, options);
  let left: readonly KernelCall[] | undefined = calls;
  return {
    done: () => left === undefined,
    running: () => false,
    join() {
      const todo = left;
      left = undefined;
      for (const c of todo ?? []) local(c);
    },
  };
}

export interface SplitRowsOptions {
  /** Part boundaries are multiples of this many rows (e.g. 4 where the kernel sums rows in groups of 4). Default 4. */
  align?: number;
  /** Bytes the whole call touches; below `minBytes` it is not split. */
  bytes: number;
  /** Default `DEFAULT_MIN_SPLIT_BYTES`. */
  minBytes?: number;
  /** At most this many parts (default: `chunksPerThread` per thread). */
  maxParts?: number;
  /**
   * Parts per thread (default 1: at most `threads` parts, which callers that keep per-part scratch
   * rely on). More (e.g. `CHUNKS_PER_THREAD`) balance better when a worker wakes late.
   */
  chunksPerThread?: number;
  /**
   * A memory-bound pass: split only when `setMemoryBoundSplit(true)`. Give such passes one part per
   * thread (the default `chunksPerThread`): the caller then always runs the first rows (the pool
   * gives it task 0 before a worker can claim it) and the worker the rest, pass after pass, so each
   * finds the rows the previous pass left in its own L2; in 4 parts per thread they were claimed in
   * any order. The MNIST CNN's step ran 1.003-1.047x
   * faster (median 1.016, seven interleaved A/B runs) with its BatchNorm and ReLU-gradient passes in
   * one part per thread instead of four (docs/journal.md, round 12).
   * A worker that has not claimed its part yet loses it to the caller, as with more parts.
   */
  memoryBound?: boolean;
}

/**
 * Runs `module.fn(...args(start, count, part))` over rows [0, rows), split into equal parts (at
 * multiples of `align`) that the caller and the pool's workers claim and run at once; or, when not
 * split, `whole()` (the caller's own call over all rows, e.g. through `simd/index.ts`'s instance).
 * Returns the number of parts used (callers that keep per-part outputs combine parts 0..n-1 in that order).
 */
export function splitRows(
  memory: WebAssembly.Memory,
  module: string,
  fn: string,
  rows: number,
  args: (start: number, count: number, part: number) => readonly number[],
  whole: () => void,
  options: SplitRowsOptions,
): number {
  const parts = planParts(memory, rows, options);
  if (parts.length <= 1) {
    whole();
    return 1;
  }
  pool!.run(parts.map(([start, count], i) => ({ module, fn, args: args(start, count, i) })));
  return parts.length;
}

/** [start, count] of each part; one part when the pool is not usable or the work is small. */
export function planParts(memory: WebAssembly.Memory, rows: number, options: SplitRowsOptions): [number, number][] {
  const p = poolFor(memory);
  const align = Math.max(1, options.align ?? 4);
  const wanted = Math.floor(Math.min((p?.threads ?? 1) * Math.max(1, Math.floor(options.chunksPerThread ?? 1)), options.maxParts ?? Infinity, Math.floor(rows / align)));
  if (!p || wanted < 2 || options.bytes < (options.minBytes ?? DEFAULT_MIN_SPLIT_BYTES) || (options.memoryBound && !memoryBound)) return [[0, rows]];
  const parts: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < wanted; i++) {
    const end = i === wanted - 1 ? rows : Math.round((rows * (i + 1)) / wanted / align) * align;
    parts.push([start, end - start]);
    start = end;
  }
  return parts;
}
