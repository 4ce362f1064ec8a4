import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { ADAM, BN_TRAIN, BN_TRAIN_GRAD_SUMS, BN_TRAIN_GRAD_X, RELU_GRAD } from "../kernels/index.js";
import { CHUNKS_PER_THREAD, DEFAULT_MIN_SPLIT_BYTES, kernelThreadPool, memoryBoundSplitEnabled, planParts, poolFor, setKernelThreadsEnabled, setMemoryBoundSplit, type KernelThreadPool } from "../kernels/kernel-threads.js";
import { wasmMemoryOf, type EmscriptenWasm } from "../kernels/simd/index.js";
import { values } from "../kernels/values.fixture.js";
import { createKernelThreadPool, ensureKernelThreads, poolWorkers, startKernelThreads } from "./kernel-threads.js";
import { expectNoLeaks, useTestBackend } from "../testing.fixture.js";

const FIXTURE = fileURLToPath(new URL("./kernel-threads.fixture.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

const wasmOf = (): EmscriptenWasm & { _malloc(n: number): number } => (tf.engine().registry["wasm"] as unknown as { wasm: EmscriptenWasm }).wasm;

/** Calls the pool ran while `fn` ran. */
function countRuns<T>(pool: KernelThreadPool, fn: () => T): { value: T; runs: number } {
  const run = pool.run;
  let runs = 0;
  pool.run = (calls) => {
    runs++;
    run.call(pool, calls);
  };
  try {
    return { value: fn(), runs };
  } finally {
    pool.run = run;
  }
}

const inputs = new Map<string, tf.Tensor[]>();

/** Inputs per shape, made once (values() is slow for large shapes): x (offset per channel), dy, gamma, beta. */
function inputsFor(shape: number[]): tf.Tensor[] {
  const key = shape.join("x");
  let t = inputs.get(key);
  if (!t) {
    const c = shape[shape.length - 1]!;
    const n = shape.reduce((a, b) => a * b, 1);
    const x = values(n, 3, 2).map((v, i) => v + (i % c) * 0.25);
    t = tf.tidy(() => [tf.tensor(x, shape), tf.tensor(values(n, 5, 1), shape), tf.tensor(values(c, 7, 0.5).map((v) => 1 + v), [c]), tf.tensor(values(c, 9, 0.5), [c])]);
    t.forEach((k) => tf.keep(k));
    inputs.set(key, t);
  }
  return t;
}

/** The fused BatchNorm forward + both backward kernels and the ReLU gradient on wasm, as float32 arrays. */
function kernels(shape: number[]): Float32Array[] {
  const [x, dy, gamma, beta] = inputsFor(shape) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
  return tf.tidy(() => {
    const [y, mean, variance] = tf.engine().runKernel(BN_TRAIN, { x, gamma, beta }, { epsilon: 1e-3 }) as unknown as tf.Tensor[];
    const [dbeta, dgamma] = tf.engine().runKernel(BN_TRAIN_GRAD_SUMS, { dy, x, mean: mean!, variance: variance! }, { epsilon: 1e-3 }) as unknown as tf.Tensor[];
    const dx = tf.engine().runKernel(BN_TRAIN_GRAD_X, { dy, x, mean: mean!, variance: variance!, gamma, dbeta: dbeta!, dgamma: dgamma! }, { epsilon: 1e-3 }) as unknown as tf.Tensor;
    const rg = tf.engine().runKernel(RELU_GRAD, { dy, x }, {}) as unknown as tf.Tensor;
    return [y!, mean!, variance!, dbeta!, dgamma!, dx, rg].map((t) => t.dataSync() as Float32Array);
  });
}

/** Pool calls expected for one kernels(shape): each pass splits from DEFAULT_MIN_SPLIT_BYTES (stats 4n, normalize 8n, gradSums 8n, gradX 12n, ReLU gradient 12n bytes). */
const expectedRuns = (shape: number[]): number => [4, 8, 8, 12, 12].filter((k) => k * shape.reduce((a, b) => a * b, 1) >= DEFAULT_MIN_SPLIT_BYTES).length;

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1e-3, Math.abs(b[i]!)));
  return worst;
}

function child(...args: string[]): Promise<{ threads: number; runs: number; sum: number }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--import", "tsx", "--conditions=@fitloop/source", FIXTURE, ...args], { cwd: ROOT, timeout: 60_000, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`fixture failed (${err.killed ? "did not exit within 60 s" : `exit ${String(err.code)}`}): ${stderr.slice(-2000)}`));
      resolve(JSON.parse(stdout.trim().split("\n").pop()!) as { threads: number; runs: number; sum: number });
    });
  });
}

describe("kernel threads for fitloop's SIMD kernels (@fitloop/wasm/node)", () => {
  let pool: KernelThreadPool;
  beforeAll(async () => {
    await useTestBackend("wasm");
    const r = await ensureKernelThreads(2);
    if (!r.pool) throw new Error(`no kernel threads: ${r.reason}`);
    pool = r.pool;
    expect(memoryBoundSplitEnabled(), "memory-bound passes are split by default").toBe(true);
  });
  afterAll(() => {
    setKernelThreadsEnabled(true);
    setMemoryBoundSplit(true);
  });

  it("are started by useBackend on tfjs-wasm's shared memory", () => {
    const memory = wasmMemoryOf(wasmOf())!;
    expect(memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(kernelThreadPool()).toBe(pool);
    expect(poolFor(memory)).toBe(pool);
    expect(pool.threads).toBe(2);
    // parts at multiples of the alignment, covering every row once; small work is not split
    const parts = planParts(memory, 1003, { bytes: 1 << 20, align: 4, chunksPerThread: CHUNKS_PER_THREAD });
    expect(parts).toHaveLength(2 * CHUNKS_PER_THREAD);
    parts.forEach(([start, count], i) => {
      expect(start).toBe(i === 0 ? 0 : parts[i - 1]![0] + parts[i - 1]![1]);
      expect(start % 4).toBe(0);
      expect(count).toBeGreaterThan(100);
    });
    expect(parts.at(-1)![0] + parts.at(-1)![1]).toBe(1003);
    // default: one part per thread (callers with per-part scratch size it by threads)
    expect(planParts(memory, 1003, { bytes: 1 << 20, align: 4 })).toEqual([[0, 500], [500, 503]]);
    expect(planParts(memory, 1003, { bytes: 1 << 20, align: 4, chunksPerThread: 4, maxParts: 3 })).toHaveLength(3);
    expect(planParts(memory, 1003, { bytes: 1000 })).toEqual([[0, 1003]]);
    expect(planParts(memory, 4, { bytes: 1 << 20, align: 4 })).toEqual([[0, 4]]);
    // a fractional maxParts never yields a part past the rows
    expect(planParts(memory, 100, { bytes: 1 << 20, align: 4, chunksPerThread: 4, maxParts: 2.5 })).toEqual([[0, 52], [52, 48]]);
    // memory-bound passes are not split when switched off
    setMemoryBoundSplit(false);
    expect(planParts(memory, 1003, { bytes: 1 << 20, memoryBound: true })).toEqual([[0, 1003]]);
    expect(countRuns(pool, () => kernels([8, 26, 26, 32])).runs).toBe(0);
    setMemoryBoundSplit(true);
    expect(memoryBoundSplitEnabled()).toBe(true);
  });

  it("split BatchNorm and ReLU-gradient kernels give the single-threaded results, and match cpu", async () => {
    for (const shape of [[8, 26, 26, 32], [5, 37, 41, 12], [3, 11, 11, 64], [9, 32]]) {
      setKernelThreadsEnabled(false);
      const single = countRuns(pool, () => kernels(shape));
      setKernelThreadsEnabled(true);
      const split = countRuns(pool, () => kernels(shape));
      expect(single.runs).toBe(0);
      // forward: stats + normalize; backward: gradSums + gradX; ReLU gradient: one
      expect(split.runs).toBe(expectedRuns(shape));
      // per-channel sums differ only in float64 addition order (then rounded to float32)
      split.value.forEach((a, i) => expect(maxRelDiff(a, single.value[i]!)).toBeLessThanOrEqual(1e-6));
      // the ReLU gradient is elementwise: bit for bit
      expect(Buffer.from(split.value[6]!.buffer).equals(Buffer.from(single.value[6]!.buffer))).toBe(true);
      // the statistics against tf.moments on cpu
      const c = shape[shape.length - 1]!;
      const n = shape.reduce((a, b) => a * b, 1);
      await tf.setBackend("cpu");
      const { mean, variance } = tf.moments(tf.tensor(values(n, 3, 2).map((v, i) => v + (i % c) * 0.25), shape), [0, 1, 2].slice(0, shape.length - 1));
      const [m, v] = [mean.dataSync() as Float32Array, variance.dataSync() as Float32Array];
      tf.dispose([mean, variance]);
      await tf.setBackend("wasm");
      expect(maxRelDiff(split.value[1]!, m)).toBeLessThanOrEqual(1e-4);
      expect(maxRelDiff(split.value[2]!, v)).toBeLessThanOrEqual(1e-4);
    }
  });

  it("split Adam gives the single-threaded results bit for bit (elementwise), with a gradient scale", () => {
    // 28 bytes per element: 9,001 elements stay whole (< 256 KiB), 100,003 split; a length that is not a multiple of 4 tests the tails
    for (const [n, wantRuns] of [[9_001, 0], [100_003, 1]] as const) {
      const [x, m, v, g] = [1, 2, 3, 4].map((seed) => tf.tensor1d(values(n, seed, seed === 3 ? 0.01 : 1).map((e) => (seed === 3 ? Math.abs(e) : e))));
      const attrs = { beta1: 0.9, beta2: 0.999, oneMinusAccBeta1: Math.fround(1 - 0.9 ** 3), oneMinusAccBeta2: Math.fround(1 - 0.999 ** 3), epsilon: 1e-7, learningRate: 1e-3, gradScale: 0.37 };
      const adam = (): Float32Array[] => tf.tidy(() => (tf.engine().runKernel(ADAM, { x: x!, m: m!, v: v!, g: g! }, attrs as never) as unknown as tf.Tensor[]).map((t) => t.dataSync() as Float32Array));
      setKernelThreadsEnabled(false);
      const single = countRuns(pool, adam);
      setKernelThreadsEnabled(true);
      const split = countRuns(pool, adam);
      expect(single.runs).toBe(0);
      expect(split.runs).toBe(wantRuns);
      split.value.forEach((a, i) => expect(Buffer.from(a.buffer).equals(Buffer.from(single.value[i]!.buffer)), `output ${i} of ${n}`).toBe(true));
      tf.dispose([x!, m!, v!, g!]);
    }
  });

  it("leaks no tensors, wasm buffers or heap when split", async () => {
    const wasm = wasmOf() as EmscriptenWasm & { HEAPU8: Uint8Array };
    const ids = () => (tf.engine().registry["wasm"] as unknown as { dataIdMap: { numDataIds(): number } }).dataIdMap.numDataIds();
    kernels([8, 26, 26, 32]);
    const [ids0, heap0] = [ids(), wasm.HEAPU8.length];
    await expectNoLeaks(() => void kernels([8, 26, 26, 32]), { warmup: 1, iterations: 3 });
    expect([ids(), wasm.HEAPU8.length]).toEqual([ids0, heap0]);
  });

  it("rethrows a task's error on the calling thread, and stays usable", () => {
    // out-of-bounds pointers trap (on whichever thread claims the task)
    expect(() => pool.run([{ module: "relu-grad", fn: "reluGrad", args: [-64, -64, -64, 16] }, { module: "relu-grad", fn: "reluGrad", args: [-64, -64, -64, 16] }])).toThrow(/out of bounds/);
    expect(() => pool.run([{ module: "relu-grad", fn: "nope", args: [] }])).toThrow(/no export relu-grad.nope/);
    expect(pool.ready()).toBe(true);
    expect(countRuns(pool, () => kernels([8, 26, 26, 32])).runs).toBe(expectedRuns([8, 26, 26, 32]));
  });

  /** 64 tasks of ~16 K elements on a fresh 4 MiB shared memory: long enough that the worker claims some. */
  const manyTasks = (): { module: string; fn: string; args: number[] }[] => Array.from({ length: 64 }, (_, i) => ({ module: "relu-grad", fn: "reluGrad", args: [0, 1 << 20, (2 << 20) + 16384 * (i % 8), 16384] }));
  const freshMemory = () => new WebAssembly.Memory({ initial: 64, maximum: 64, shared: true });

  it("rethrows a worker's error as an Error on the calling thread", async () => {
    // in the worker every task throws; the caller's own tasks succeed
    const prefix = "Function.prototype.apply = function () { throw new Error('worker boom'); };\n";
    const { pool: bad } = await createKernelThreadPool(freshMemory(), { threads: 2, testWorkerPrefix: prefix });
    let error: unknown;
    for (let i = 0; i < 50 && error === undefined; i++) {
      try {
        bad!.run(manyTasks());
      } catch (e) {
        error = e;
      }
    }
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^fitloop kernel thread: Error: worker boom/);
    expect(bad!.ready()).toBe(true);
    bad!.shutdown();
  });

  it("keeps back-to-back jobs of different sizes apart (a worker still in the last job never takes the next one's task)", async () => {
    // The job and its task count share one claim word: with the count in a separate word, a worker
    // finishing job j could (in a window of a few instructions) claim index n(j) of job j+1 with stale
    // arguments and miscount completions. 20,000 tiny jobs of 1-8 tasks, each checked.
    const memory = freshMemory();
    const { pool: p } = await createKernelThreadPool(memory, { threads: 2, timeoutMs: 2000 });
    const f32 = new Float32Array(memory.buffer);
    const [X, DY, DX, W] = [0, 4096, 8192, 16]; // byte offsets; W floats per task
    f32.fill(1, X / 4, X / 4 + 8 * W); // x > 0: dx = dy
    try {
      for (let job = 1; job <= 20000; job++) {
        const n = 1 + (job % 8);
        f32.fill(job, DY / 4, DY / 4 + 8 * W);
        f32.fill(-1, DX / 4, DX / 4 + 8 * W);
        p!.run(Array.from({ length: n }, (_, i) => ({ module: "relu-grad", fn: "reluGrad", args: [DY + 4 * W * i, X, DX + 4 * W * i, W] })));
        for (let i = 0; i < 8; i++) {
          const v = f32[DX / 4 + W * i]!;
          if (v !== (i < n ? job : -1)) throw new Error(`job ${job} (${n} tasks): task ${i} wrote ${v}`);
        }
      }
    } finally {
      p!.shutdown();
    }
  });

  it("waits for the workers' tasks also when one of the caller's tasks threw", async () => {
    // Regression: the caller returned (threw) as soon as its own task failed, while a worker was still
    // running a task of that job; the worker's completion then counted towards the next job, which
    // returned before its own tasks were done (or waited until the timeout).
    const memory = new WebAssembly.Memory({ initial: 1024, maximum: 1024, shared: true }); // 64 MiB
    const { pool: p } = await createKernelThreadPool(memory, { threads: 2, timeoutMs: 1000 });
    const f32 = new Float32Array(memory.buffer);
    const MB = 1 << 20;
    const [X, DY, DX, DY2, DX2] = [0, 8 * MB, 16 * MB, 24 * MB, 32 * MB]; // byte offsets
    const N = MB / 4; // floats per slow task (~0.1-0.3 ms each)
    f32.fill(1, X / 4, X / 4 + 8 * N);
    const task = (dy: number, dx: number, i: number) => ({ module: "relu-grad", fn: "reluGrad", args: [dy + 4 * N * i, X, dx + 4 * N * i, N] });
    const trap = { module: "relu-grad", fn: "reluGrad", args: [-64, -64, -64, 16] };
    try {
      for (let round = 1; round <= 30; round++) {
        f32.fill(round, DY2 / 4, DY2 / 4 + 8 * N);
        f32.fill(-1, DX2 / 4, DX2 / 4 + 8 * N);
        expect(() => p!.run([trap, ...Array.from({ length: 8 }, (_, i) => task(DY, DX, i))])).toThrow(/out of bounds/);
        p!.run(Array.from({ length: 8 }, (_, i) => task(DY2, DX2, i))); // right after: no gap for a late worker
        for (let i = 0; i < 8; i++) expect(f32[DX2 / 4 + N * i + N - 1], `round ${round}, task ${i}`).toBe(round);
      }
      expect(p!.stats().workerTasks, "the worker took part (else this proves nothing)").toBeGreaterThan(0);
    } finally {
      p!.shutdown();
    }
  });

  it("times out with a clear error when a worker does not finish, and is unusable afterwards", async () => {
    // the worker blocks forever after its first task instead of reporting it complete
    const prefix = "{ const add = Atomics.add; Atomics.add = (a, i, v) => (i === 2 ? Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0) : add(a, i, v)); }\n";
    const { pool: stuck } = await createKernelThreadPool(freshMemory(), { threads: 2, timeoutMs: 300, testWorkerPrefix: prefix });
    const t0 = performance.now();
    let error: unknown;
    for (let i = 0; i < 50 && error === undefined; i++) {
      try {
        stuck!.run(manyTasks());
      } catch (e) {
        error = e;
      }
    }
    expect((error as Error).message).toMatch(/did not finish a task within 300 ms/);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(stuck!.ready()).toBe(false);
    expect(() => stuck!.run(manyTasks())).toThrow(/not usable/);
  });

  it("leaves no wasm buffers behind when a split kernel fails (a kernel thread's error or timeout)", () => {
    const backend = tf.backend();
    const run = pool.run.bind(pool);
    const t = (shape: number[]): tf.Tensor => tf.ones(shape);
    const conv = { strides: [1, 1], pad: "valid", dataFormat: "NHWC", dimRoundingMode: undefined } as unknown as tf.NamedAttrMap;
    const pool2 = { filterSize: [2, 2], strides: [2, 2], pad: "valid", dimRoundingMode: undefined } as unknown as tf.NamedAttrMap;
    // each kernel called directly (a failing tf.grad leaves the tape's saved tensors to the caller)
    const cases: [string, string, Record<string, tf.Tensor>, tf.NamedAttrMap][] = [
      ["ReluGrad", RELU_GRAD, { dy: t([64, 26, 26, 32]), x: t([64, 26, 26, 32]) }, {}],
      ["MaxPool", "MaxPool", { x: t([8, 26, 26, 32]) }, pool2],
      ["MaxPoolGrad", "MaxPoolGrad", { dy: t([8, 13, 13, 32]), input: t([8, 26, 26, 32]), output: t([8, 13, 13, 32]) }, pool2],
      ["BatchNorm (training)", BN_TRAIN, { x: t([64, 26, 26, 32]), gamma: t([32]), beta: t([32]) }, { epsilon: 1e-3 }],
      ["BatchMatMul", "BatchMatMul", { a: t([64, 784]), b: t([784, 256]) }, { transposeA: false, transposeB: false }],
      ["Conv2D (im2col)", "Conv2D", { x: t([64, 28, 28, 1]), filter: t([3, 3, 1, 32]) }, conv],
      ["Conv2DBackpropFilter", "Conv2DBackpropFilter", { x: t([16, 13, 13, 32]), dy: t([16, 11, 11, 64]) }, { ...conv, filterShape: [3, 3, 32, 64] }],
      ["Conv2DBackpropInput", "Conv2DBackpropInput", { dy: t([16, 11, 11, 64]), filter: t([3, 3, 32, 64]) }, { ...conv, inputShape: [16, 13, 13, 32] }],
    ];
    try {
      pool.run = () => {
        throw new Error("kernel thread boom");
      };
      for (const [name, kernel, inputs, attrs] of cases) {
        const ids = backend.numDataIds();
        const bytes = tf.memory().numBytes;
        expect(() => tf.engine().runKernel(kernel, inputs as unknown as tf.NamedTensorMap, attrs), name).toThrow(/kernel thread boom/);
        expect(backend.numDataIds(), `${name}: wasm buffers`).toBe(ids);
        expect(tf.memory().numBytes, `${name}: tensor bytes`).toBe(bytes);
      }
    } finally {
      pool.run = run;
      for (const [, , inputs] of cases) tf.dispose(Object.values(inputs));
    }
  });

  it("rejects a thread count that is not an integer", async () => {
    await expect(createKernelThreadPool(freshMemory(), { threads: 2.5 })).rejects.toThrow(/threads must be an integer, got 2.5/);
    await expect(createKernelThreadPool(freshMemory(), { threads: Number.NaN })).rejects.toThrow(/threads must be an integer/);
    for (const idleSpinUs of [-1, Number.NaN, Infinity, 2e6]) await expect(createKernelThreadPool(freshMemory(), { threads: 2, idleSpinUs })).rejects.toThrow(/idleSpinUs must be a number of microseconds in \[0, 1e6\]/);
  });

  it("workers that poll between jobs (idleSpinUs) and workers that block at once run the same jobs to the same results", async () => {
    for (const idleSpinUs of [0, 5000]) {
      const r = await createKernelThreadPool(wasmMemoryOf(wasmOf())!, { threads: 2, idleSpinUs });
      const p = r.pool!;
      try {
        const wasm = wasmOf();
        const buf = wasm._malloc(3 * 4 * 1024);
        const heap = new Float32Array(wasmMemoryOf(wasm)!.buffer, buf, 3 * 1024);
        heap.set(values(2048, 12, 1));
        for (let job = 0; job < 20; job++) {
          // ReLU gradient of 1024 elements in 4 parts, jobs back to back and 1 ms apart
          p.run([0, 1, 2, 3].map((i) => ({ module: "relu-grad", fn: "reluGrad", args: [buf + 1024 * i, buf + 4096 + 1024 * i, buf + 8192 + 1024 * i, 256] })));
          if (job % 2) await new Promise((res) => setTimeout(res, 1));
        }
        const out = heap.subarray(2048);
        out.forEach((v, i) => expect(v).toBe(heap[i]! * (heap[1024 + i]! > 0 ? 1 : 0)));
        wasm._free(buf);
      } finally {
        p.shutdown();
      }
    }
  });

  it("reports why there is no pool: a plain memory, a worker that cannot start, one thread", async () => {
    expect((await startKernelThreads(new WebAssembly.Memory({ initial: 1 }), { threads: 2 })).reason).toMatch(/not shared/);
    expect(kernelThreadPool()).toBeUndefined(); // starting stops the installed pool first
    const shared = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
    expect((await createKernelThreadPool(shared, { threads: 2, testWorkerPrefix: "WebAssembly.Instance = function () { throw new Error('no instance'); };\n" })).reason).toMatch(/could not start: .*no instance/);
    expect((await createKernelThreadPool(shared, { threads: 1 })).reason).toMatch(/one thread/);
    // kernels run single-threaded without a pool; useBackend starts it again
    const r = countRuns(pool, () => kernels([8, 26, 26, 32]));
    expect(r.runs).toBe(0);
    await useTestBackend("wasm");
    pool = kernelThreadPool()!;
    expect(pool).toBeDefined();
    expect(countRuns(pool, () => kernels([8, 26, 26, 32])).runs).toBe(expectedRuns([8, 26, 26, 32]));
    const w = poolWorkers(pool as never);
    expect(w).toHaveLength(1);
  });

  it("runs in a fresh process that exits on its own; the opt-out kernelThreads: false keeps one thread", async () => {
    const [on, off] = await Promise.all([child(), child("off")]);
    expect(on.threads).toBe(2);
    expect(on.runs).toBeGreaterThanOrEqual(4);
    expect(off.runs).toBe(0);
    expect(Math.abs(on.sum - off.sum) / off.sum).toBeLessThan(1e-5);
  });
});
