/**
 * Worker threads for fitloop's own WebAssembly SIMD kernels (Node only; see
 * `kernels/kernel-threads.ts` for how kernels use them).
 *
 * Each worker instantiates the embedded modules (`simd/*.wasm.ts`, `shared` variant, compiled once
 * here and posted) on tfjs-wasm's shared `WebAssembly.Memory`, so it reads and writes tensors in
 * place. Calls go through a SharedArrayBuffer control block per worker: the caller writes the
 * function and arguments, bumps a sequence number and notifies; the worker, after a job, polls for
 * the next one for `idleSpinUs` (200 us: a training step's jobs come that close, and a blocked
 * worker wakes ~10 us late, on a busy VM sometimes too late to take its share) and then blocks in
 * `Atomics.wait` (so an idle process does not hold a core), runs the call and publishes its
 * sequence number (and an error message if it threw). The caller
 * runs its own part meanwhile, then spins briefly and `Atomics.wait`s with a timeout: a worker error
 * is rethrown, a worker that does not answer breaks the pool (later calls run single-threaded) and
 * throws. Workers are unref'd: they never keep the process alive.
 */
import { Worker } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs-core";
import { EMBEDDED_SIMD_MODULES, fmaModules, moduleImports, wasmMemoryOf, type EmscriptenWasm } from "../kernels/simd/index.js";
import { setKernelThreadPool, type BackgroundJob, type BackgroundOptions, type KernelCall, type KernelThreadPool } from "../kernels/kernel-threads.js";
import { workerExecArgv } from "./worker-argv.js";
import { ARGS_BYTE, BG_AFTER_BYTE, BG_ARGS_BYTE, BG_CLAIM, BG_DONE, BG_FNS_BYTE, BG_MSG_BYTE, BG_MSG_LEN, BG_NARGS_BYTE, BG_STATUS, BG_WORKER_TASKS, BLOCK_BYTES, CLAIM, COMPLETED, CTRL_INTS, FNS_BYTE, IDLE_SPIN, MAX_ARGS, MAX_TASKS, MAX_WORKERS, MSG_BYTE, MSG_LEN, MSG_MAX, NARGS_BYTE, NTASKS, READY, SEQ, STATUS, WORKER_SOURCE, WORKER_TASKS } from "./pool-protocol.js";

export interface KernelThreadsOptions {
  /** Threads including the caller: an integer, >= 2 to start workers (more than 9 count as 9). */
  threads: number;
  /** How long the caller waits for a worker's claimed task before giving up (ms). Default 10000. */
  timeoutMs?: number;
  /**
   * How long an idle worker keeps polling for the next job before it blocks in `Atomics.wait`
   * (microseconds; default `DEFAULT_IDLE_SPIN_US`, 0: block at once). Waking a blocked worker costs
   * ~10 us and, on a busy VM, sometimes far more (the caller then runs the worker's share itself);
   * a training step's jobs come tens to hundreds of microseconds apart.
   */
  idleSpinUs?: number;
  /** Spin iterations before `Atomics.wait` when waiting for a worker. Default 20000 (~20-50 us). */
  spin?: number;
  /** Source run in each worker before its own (tests: make the worker misbehave). */
  testWorkerPrefix?: string;
}

/** Default `idleSpinUs` (docs/journal.md, round 10). */
export const DEFAULT_IDLE_SPIN_US = 200;

function decode(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

class NodeBackgroundJob implements BackgroundJob {
  constructor(
    private readonly pool: NodeKernelThreadPool,
    readonly tasks: readonly KernelCall[],
    readonly n: number,
  ) {}
  done(): boolean {
    return this.pool.backgroundDone(this);
  }
  join(): void {
    this.pool.joinBackground(this);
  }
  /** Set by a join that gave up on a task a worker had started (the pool broke): it may still run. */
  unfinished = false;
  running(): boolean {
    return this.unfinished;
  }
}

class NodeKernelThreadPool implements KernelThreadPool {
  readonly threads: number;
  private broken: string | undefined;
  private readonly fnIds = new Map<string, number>();
  private readonly local: ((...a: number[]) => unknown)[] = [];
  private readonly workers: Worker[] = [];
  private readonly ctrl: Int32Array;
  private readonly fnOf: Int32Array;
  private readonly args: Float64Array;
  private readonly nargs: Int32Array;
  private readonly msg: Uint8Array;
  private readonly bg: { fnOf: Int32Array; args: Float64Array; nargs: Int32Array; after: Int32Array; msg: Uint8Array };
  /** The posted background job not joined yet. */
  private pending: NodeBackgroundJob | undefined;
  private bgSeq = 0;
  private seq = 0;
  private readonly timeoutMs: number;
  private readonly spin: number;

  constructor(
    readonly memory: WebAssembly.Memory,
    modules: Record<string, WebAssembly.Module>,
    options: KernelThreadsOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.spin = options.spin ?? 20_000;
    const idleSpinUs = options.idleSpinUs ?? DEFAULT_IDLE_SPIN_US;
    const names: string[] = [];
    for (const [name, mod] of Object.entries(modules)) {
      const exports = new WebAssembly.Instance(mod, moduleImports(memory)).exports;
      for (const e of WebAssembly.Module.exports(mod)) {
        if (e.kind !== "function") continue;
        this.fnIds.set(`${name}.${e.name}`, names.length);
        names.push(`${name}.${e.name}`);
        this.local.push(exports[e.name] as (...a: number[]) => unknown);
      }
    }
    const block = new SharedArrayBuffer(BLOCK_BYTES);
    this.ctrl = new Int32Array(block, 0, CTRL_INTS);
    Atomics.store(this.ctrl, IDLE_SPIN, Math.round(idleSpinUs));
    this.fnOf = new Int32Array(block, FNS_BYTE, MAX_TASKS);
    this.args = new Float64Array(block, ARGS_BYTE, MAX_TASKS * MAX_ARGS);
    this.nargs = new Int32Array(block, NARGS_BYTE, MAX_TASKS);
    this.msg = new Uint8Array(block, MSG_BYTE, MSG_MAX);
    this.bg = { fnOf: new Int32Array(block, BG_FNS_BYTE, MAX_TASKS), args: new Float64Array(block, BG_ARGS_BYTE, MAX_TASKS * MAX_ARGS), nargs: new Int32Array(block, BG_NARGS_BYTE, MAX_TASKS), after: new Int32Array(block, BG_AFTER_BYTE, MAX_TASKS), msg: new Uint8Array(block, BG_MSG_BYTE, MSG_MAX) };
    const n = Math.min(MAX_WORKERS, options.threads - 1);
    for (let index = 0; index < n; index++) {
      const worker = new Worker((options.testWorkerPrefix ?? "") + WORKER_SOURCE, { eval: true, workerData: { memory, modules, names, block, index }, stdout: true, stderr: true, execArgv: workerExecArgv() });
      // stdout/stderr: true: the worker never prints, and piping its streams into the parent's would add listeners to process.stdout/stderr per worker (MaxListenersExceededWarning for the user's own)
      worker.unref();
      worker.on("error", (e) => (this.broken ??= `a kernel worker failed: ${e.message}`));
      worker.on("exit", () => (this.broken ??= "a kernel worker exited"));
      this.workers.push(worker);
    }
    this.threads = n + 1;
  }

  /** How long idle workers poll for the next job before they block (microseconds, 0: block at once). */
  setIdleSpin(us: number): void {
    Atomics.store(this.ctrl, IDLE_SPIN, Math.max(0, Math.round(us)));
  }

  /** Tasks run so far, and how many of them ran on a worker; the same for background tasks. */
  stats(): { tasks: number; workerTasks: number; backgroundTasks: number; backgroundWorkerTasks: number } {
    return { tasks: this.tasks, workerTasks: Atomics.load(this.ctrl, WORKER_TASKS), backgroundTasks: this.bgTasks, backgroundWorkerTasks: Atomics.load(this.ctrl, BG_WORKER_TASKS) };
  }
  private bgTasks = 0;
  private tasks = 0;

  /** Whether the workers have `module.fn` (e.g. "gemm-fma.gemmPacked": only while FMA was on at the start). */
  has(fn: string): boolean {
    return this.fnIds.has(fn);
  }

  /** The modules the workers instantiated. */
  get modules(): string[] {
    return [...new Set([...this.fnIds.keys()].map((n) => n.slice(0, n.indexOf("."))))];
  }

  ready(): boolean {
    return this.broken === undefined && this.workers.every((_, i) => Atomics.load(this.ctrl, READY + i) === 1);
  }

  /** Resolves when every worker has instantiated the modules (or rejects with the reason it could not). */
  async started(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < this.workers.length; i++) {
      for (;;) {
        const r = Atomics.load(this.ctrl, READY + i);
        if (r === 1) break;
        if (r === -1) throw new Error(`a kernel worker could not start: ${this.message()}`);
        if (this.broken) throw new Error(this.broken);
        if (Date.now() > deadline) throw new Error(`kernel workers did not start within ${timeoutMs} ms`);
        await new Promise((res) => setTimeout(res, 2)); // start-up takes ~20-50 ms: no quicker polling needed
      }
    }
  }

  private message(): string {
    return new TextDecoder().decode(this.msg.slice(0, Atomics.load(this.ctrl, MSG_LEN)));
  }

  private fnId(c: KernelCall): number {
    const id = this.fnIds.get(`${c.module}.${c.fn}`);
    if (id === undefined) throw new Error(`fitloop kernel threads: no export ${c.module}.${c.fn}`);
    if (c.args.length > MAX_ARGS) throw new Error(`fitloop kernel threads: more than ${MAX_ARGS} arguments`);
    return id;
  }

  run(tasks: readonly KernelCall[]): void {
    if (tasks.length > MAX_TASKS) throw new Error(`fitloop kernel threads: more than ${MAX_TASKS} tasks`);
    if (!this.ready()) throw new Error(`fitloop kernel threads are not usable: ${this.broken ?? "workers not started"}`);
    const n = tasks.length;
    this.tasks += n;
    tasks.forEach((t, i) => {
      this.fnOf[i] = this.fnId(t);
      this.nargs[i] = t.args.length;
      this.args.set(t.args, i * MAX_ARGS);
    });
    const c = this.ctrl;
    this.seq = (this.seq + 1) & 0x3fffffff;
    const tag = ((this.seq & 0xffff) << 16) | (n << 8);
    Atomics.store(c, STATUS, 0);
    Atomics.store(c, COMPLETED, 0);
    Atomics.store(c, NTASKS, n);
    // task 0 is the caller's before any worker can claim it: with one part per thread the caller
    // always runs the first rows and a worker the next, pass after pass (each core finds its rows
    // of the previous pass in its own cache; kernel-threads.ts, `memoryBound`)
    Atomics.store(c, CLAIM, n > 0 ? tag + 1 : tag);
    Atomics.store(c, SEQ, this.seq);
    Atomics.notify(c, SEQ);
    let error: unknown;
    const runTask = (i: number): void => {
      try {
        this.local[this.fnOf[i]!]!(...tasks[i]!.args);
      } catch (e) {
        error ??= e;
      }
      Atomics.add(c, COMPLETED, 1);
    };
    if (n > 0) runTask(0);
    // then the caller claims tasks too (all the rest when no worker wakes in time)
    for (;;) {
      const w = Atomics.load(c, CLAIM);
      const i = w & 255;
      if (i >= n) break;
      if (Atomics.compareExchange(c, CLAIM, w, w + 1) !== w) continue;
      runTask(i);
    }
    // always wait for tasks a worker claimed, also when a task of the caller threw: they write into
    // tensors the caller owns, and their completions must not count towards the next job
    const waitError = this.waitCompleted(n);
    error ??= waitError;
    if (error === undefined && Atomics.load(c, STATUS) === 1) error = new Error(`fitloop kernel thread: ${this.message()}`);
    if (error !== undefined) throw error;
  }

  private waitCompleted(n: number): Error | undefined {
    return this.waitFor(COMPLETED, (v) => v === n, "task");
  }

  /** Waits until `ready(ctrl[slot])`; a worker that takes longer than `timeoutMs` breaks the pool. */
  private waitFor(slot: number, ready: (value: number) => boolean, what: string): Error | undefined {
    const c = this.ctrl;
    for (let i = 0; i < this.spin && !ready(Atomics.load(c, slot)); i++);
    const deadline = performance.now() + this.timeoutMs;
    for (let done = Atomics.load(c, slot); !ready(done); done = Atomics.load(c, slot)) {
      const left = deadline - performance.now();
      if (left <= 0) {
        // The worker may still write into buffers the caller frees after this throws: the wasm
        // heap cannot be trusted afterwards (said in the message); later calls run single-threaded.
        this.broken = `a kernel worker did not finish a ${what} within ${this.timeoutMs} ms (the wasm memory may be inconsistent: recreate the backend)`;
        this.shutdown();
        return new Error(`fitloop kernel threads: ${this.broken}`);
      }
      Atomics.wait(c, slot, done, left);
    }
    return undefined;
  }

  /**
   * Posts `tasks` as the background job and returns at once: idle workers run its tasks between
   * jobs (a job that comes meanwhile goes first: a worker looks for one after each background task,
   * so keep them a few microseconds long), and `join()` runs what no worker has claimed yet on the
   * caller. Tasks start in order; task i only once `after[i]` tasks have finished, whichever they are
   * (0 by default: at once; `serial`: i, each after the one before; a phase boundary: every task of
   * the next phase with `after` = the number of tasks before it). One background job at a time: join
   * it before posting the next.
   */
  post(tasks: readonly KernelCall[], options: BackgroundOptions = {}): BackgroundJob {
    if (this.pending) throw new Error("fitloop kernel threads: a background job is still running: join() it before posting another");
    if (tasks.length > MAX_TASKS) throw new Error(`fitloop kernel threads: more than ${MAX_TASKS} background tasks`);
    const after = tasks.map((_, i) => (options.serial ? i : (options.after?.[i] ?? 0)));
    after.forEach((a, i) => {
      if (!(Number.isInteger(a) && a >= 0 && a <= i)) throw new Error(`fitloop kernel threads: after[${i}] must be an integer in [0, ${i}], got ${a}`);
    });
    if (!this.ready()) throw new Error(`fitloop kernel threads are not usable: ${this.broken ?? "workers not started"}`);
    const n = tasks.length;
    const ids = tasks.map((t) => this.fnId(t));
    tasks.forEach((t, i) => {
      this.bg.fnOf[i] = ids[i]!;
      this.bg.nargs[i] = t.args.length;
      this.bg.args.set(t.args, i * MAX_ARGS);
      this.bg.after[i] = after[i]!;
    });
    this.bgTasks += n;
    const c = this.ctrl;
    Atomics.store(c, BG_DONE, 0);
    Atomics.store(c, BG_STATUS, 0);
    Atomics.store(c, BG_MSG_LEN, 0);
    this.bgSeq = (this.bgSeq + 1) & 0xffff;
    Atomics.store(c, BG_CLAIM, (this.bgSeq << 16) | (n << 8));
    // wake a waiting worker: a new job number with no tasks of its own, so it looks at the background job
    this.seq = (this.seq + 1) & 0x3fffffff;
    Atomics.store(c, SEQ, this.seq);
    Atomics.notify(c, SEQ);
    const job = new NodeBackgroundJob(this, tasks, n);
    this.pending = job;
    return job;
  }

  /** `BackgroundJob.join` of the pending job (see `post`). */
  joinBackground(job: NodeBackgroundJob): void {
    if (this.pending !== job) return;
    const c = this.ctrl;
    const n = job.n;
    let error: unknown;
    let started = n;
    let timedOut = false;
    for (;;) {
      const w = Atomics.load(c, BG_CLAIM);
      const i = w & 255;
      if (i >= n) break;
      if (timedOut) {
        // a worker did not finish a task in time: claim the rest so that none starts; they do not run
        if (Atomics.compareExchange(c, BG_CLAIM, w, (w & ~255) | n) !== w) continue;
        started = i;
        break;
      }
      // (a pool shut down cleanly still runs the rest here: the caller's instances use the same memory)
      // task i waits for the tasks it depends on, which a worker may still be running
      const after = this.bg.after[i]!;
      if (Atomics.load(c, BG_DONE) < after) {
        const e = this.waitFor(BG_DONE, (v) => v >= after, "background task");
        timedOut ||= e !== undefined;
        error ??= e;
        continue;
      }
      if (Atomics.compareExchange(c, BG_CLAIM, w, w + 1) !== w) continue;
      try {
        this.local[this.bg.fnOf[i]!]!(...job.tasks[i]!.args);
      } catch (e) {
        error ??= e;
      }
      this.backgroundTaskDone();
    }
    // every task that started writes into memory the caller owns: wait for them, also when the pool
    // broke meanwhile; one that does not finish in time leaves the job `running()` (its memory must not be freed)
    if (!timedOut) {
      const e = this.waitFor(BG_DONE, (v) => v === started, "background task");
      timedOut = e !== undefined;
      error ??= e;
    }
    job.unfinished = Atomics.load(c, BG_DONE) !== started;
    this.pending = undefined;
    if (error === undefined && started < n) error = new Error(`fitloop kernel threads: ${this.broken ?? "a background task did not run"}`);
    if (error === undefined && Atomics.load(c, BG_STATUS) === 1) error = new Error(`fitloop kernel thread (background task): ${new TextDecoder().decode(this.bg.msg.slice(0, Atomics.load(c, BG_MSG_LEN)))}`);
    if (error !== undefined) throw error;
  }

  /** Counts a finished background task; wakes the workers when it lets the next task start (its `after`). */
  private backgroundTaskDone(): void {
    const c = this.ctrl;
    const done = Atomics.add(c, BG_DONE, 1) + 1;
    const w = Atomics.load(c, BG_CLAIM);
    const i = w & 255;
    if (i < ((w >>> 8) & 255) && this.bg.after[i] === done) Atomics.notify(c, SEQ);
  }

  /** Whether every task of the pending background job has finished. */
  backgroundDone(job: NodeBackgroundJob): boolean {
    return this.pending !== job || Atomics.load(this.ctrl, BG_DONE) === job.n;
  }

  /** Stops the workers (the pool is unusable afterwards). */
  shutdown(): void {
    this.broken ??= "shut down";
    Atomics.store(this.ctrl, SEQ, -1);
    Atomics.notify(this.ctrl, SEQ);
    for (const w of this.workers) void w.terminate();
  }
}

export type { NodeKernelThreadPool };
/** Test access: the pool's workers. */
export const poolWorkers = (pool: NodeKernelThreadPool): Worker[] => (pool as unknown as { workers: Worker[] }).workers;

/**
 * Compiles the embedded modules' `shared` variant; undefined where WebAssembly SIMD is unavailable.
 * The relaxed-SIMD modules (`fmaModules()`: only while FMA is requested and validated) are added
 * where they validate and skipped where they do not: they never stop the pool.
 */
function sharedModules(): Record<string, WebAssembly.Module> | undefined {
  const out: Record<string, WebAssembly.Module> = {};
  for (const [name, variants] of Object.entries(EMBEDDED_SIMD_MODULES)) {
    const bytes = decode(variants.shared);
    if (!WebAssembly.validate(bytes)) return undefined;
    out[name] = new WebAssembly.Module(bytes);
  }
  for (const [name, variants] of Object.entries(fmaModules())) {
    const bytes = decode(variants.shared);
    try {
      if (relaxedValidates(name, bytes)) out[name] = new WebAssembly.Module(bytes);
    } catch {
      // not usable here: the kernels run the plain module's functions
    }
  }
  return out;
}

/** Relaxed-SIMD modules found valid (a V8 flag can turn validation on, never off). */
const validRelaxed = new Set<string>();
function relaxedValidates(name: string, bytes: Uint8Array<ArrayBuffer>): boolean {
  if (!validRelaxed.has(name) && WebAssembly.validate(bytes)) validRelaxed.add(name);
  return validRelaxed.has(name);
}

/** The modules a pool started now would have (FMA's only while it is on and validates). */
const wantedModules = (): string[] => [...Object.keys(EMBEDDED_SIMD_MODULES), ...Object.entries(fmaModules()).filter(([name, v]) => relaxedValidates(name, decode(v.shared))).map(([name]) => name)];

/**
 * Starts `threads - 1` kernel workers on `memory` (tfjs-wasm's shared memory) and installs them for
 * fitloop's kernels (`setKernelThreadPool`); a running pool is shut down first. Returns the pool, or
 * the reason there is none (then the kernels run single-threaded, as before).
 */
export function startKernelThreads(memory: WebAssembly.Memory, options: KernelThreadsOptions): Promise<{ pool?: NodeKernelThreadPool; reason?: string }> {
  // one start at a time: two overlapping starts would each install a pool and orphan the first
  const run = starting.then(async () => {
    stopKernelThreads();
    const r = await createKernelThreadPool(memory, options);
    if (r.pool) {
      current = r.pool;
      setKernelThreadPool(r.pool);
    }
    return r;
  });
  starting = run.catch(() => undefined);
  return run;
}
let starting: Promise<unknown> = Promise.resolve();

/** A started pool on `memory` that is not installed for the kernels (tests, benches), or the reason there is none. */
export async function createKernelThreadPool(memory: WebAssembly.Memory, options: KernelThreadsOptions): Promise<{ pool?: NodeKernelThreadPool; reason?: string }> {
  if (!Number.isInteger(options.threads)) throw new RangeError(`kernel threads: threads must be an integer, got ${options.threads}`);
  const spin = options.idleSpinUs;
  if (spin !== undefined && !(Number.isFinite(spin) && spin >= 0 && spin <= 1e6)) throw new RangeError(`kernel threads: idleSpinUs must be a number of microseconds in [0, 1e6], got ${spin}`);
  if (options.threads < 2) return { reason: "one thread" };
  if (typeof SharedArrayBuffer === "undefined" || !(memory.buffer instanceof SharedArrayBuffer)) return { reason: "tfjs-wasm's memory is not shared (single-threaded build)" };
  let pool: NodeKernelThreadPool | undefined;
  try {
    const modules = sharedModules();
    if (!modules) return { reason: "WebAssembly SIMD is not available" };
    pool = new NodeKernelThreadPool(memory, modules, options);
    await pool.started();
  } catch (e) {
    pool?.shutdown();
    return { reason: (e as Error).message };
  }
  return { pool };
}

let current: NodeKernelThreadPool | undefined;

/** Whether a pool with modules `has` serves `wanted` (extra modules, e.g. FMA's after it was turned off, do no harm). */
const servesModules = (has: string[], wanted: string[]): boolean => wanted.every((m) => has.includes(m));

/** Shuts the installed pool down; the kernels run single-threaded. */
export function stopKernelThreads(): void {
  if (!current) return;
  setKernelThreadPool(undefined);
  current.shutdown();
  current = undefined;
}

/**
 * Kernel threads for the active wasm backend (`useBackend` calls it after starting the threaded
 * build): keeps a running pool on the same memory with the same modules (FMA's, once turned on,
 * need a new pool), else starts one with `threads` threads in all.
 */
export async function ensureKernelThreads(threads: number, options: Omit<KernelThreadsOptions, "threads"> = {}): Promise<{ pool?: NodeKernelThreadPool; reason?: string }> {
  const backend = tf.engine().registry["wasm"] as unknown as { wasm?: EmscriptenWasm } | undefined;
  const memory = backend?.wasm ? wasmMemoryOf(backend.wasm) : undefined;
  if (!memory) return { reason: "the wasm backend's memory was not found" };
  if (current && current.memory === memory && current.ready() && current.threads === Math.min(MAX_WORKERS + 1, Math.max(2, threads)) && servesModules(current.modules, wantedModules())) return { pool: current };
  return startKernelThreads(memory, { ...options, threads });
}
