/**
 * The machine's 128-bit WebAssembly SIMD peak, measured here (used by bench/gemm.ts; runs on its own
 * too: `npx tsx --conditions=@fitloop/source bench/peak-simd.ts`).
 *
 * Two ops, each a multiply and an add per lane (8 FLOP per f32x4 step):
 *   muladd  `f32x4.add(f32x4.mul(..), ..)`: what fitloop's SIMD kernels (and wasm SIMD without flags) emit
 *   fma     `f32x4.relaxed_madd`: relaxed SIMD, a fused multiply-add on x86 with FMA; Node 20 needs
 *           `--experimental-wasm-relaxed-simd`, set here with `v8.setFlagsFromString` before compiling
 * in two loop forms (WebAssembly text generated below, compiled with wabt):
 *   chain   CHAINS independent chains `a = a * x + y` (the chain cannot be hoisted out of the loop;
 *           enough chains hide the latency): 10 or 12 chains, unrolled x1 or x2
 *   tile    a GEMM microkernel on L1-resident data: per step 2 vector loads of "B", R splat loads of
 *           "A", 2R multiply-adds into R x 2 accumulators (R = 4, 5: the 4x8 and 5x8 tiles); the
 *           multiply is off the accumulator's chain, as in a GEMM. On Zen 5 this form reaches ~13 %
 *           more with mul + add than the chain form (65 vs 57 GFLOP/s per core)
 * The peak of an op is its fastest variant. Each run lasts ~trialMs in a worker thread; 1 thread = one
 * worker, 2 threads = two workers started together behind a barrier, FLOPs of both / wall time from
 * the first start to the last end. The peak of a trial set is its best trial (a peak is what the
 * machine can do).
 *
 * wabt is a devDependency of @fitloop/wasm, not of the root: it is loaded from that package's
 * node_modules (createRequire from packages/wasm/package.json).
 */
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import v8 from "node:v8";
import { Worker } from "node:worker_threads";
import { wat2wasm, type Wabt } from "../scripts/wat.js";

export type PeakOp = "muladd" | "fma";
/** FLOPs per chain step: 4 lanes, one multiply and one add each. */
const FLOPS_PER_STEP = 8;

/** The chain loop: `run(n, x, y)` does n iterations of `unroll` steps of each of `chains` chains. */
export function chainWat(op: PeakOp, chains: number, unroll: number): string {
  const step = (i: number) =>
    op === "fma"
      ? `(local.set $a${i} (f32x4.relaxed_madd (local.get $a${i}) (local.get $vx) (local.get $vy)))`
      : `(local.set $a${i} (f32x4.add (f32x4.mul (local.get $a${i}) (local.get $vx)) (local.get $vy)))`;
  const ids = Array.from({ length: chains }, (_, i) => i);
  const sum = ids.slice(1).reduce((s, i) => `(f32x4.add ${s} (local.get $a${i}))`, "(local.get $a0)");
  return [
    "(module",
    '  (func (export "run") (param $n i32) (param $x f32) (param $y f32) (result f32)',
    `    (local $vx v128) (local $vy v128) ${ids.map((i) => `(local $a${i} v128)`).join(" ")}`,
    "    (local.set $vx (f32x4.splat (local.get $x)))",
    "    (local.set $vy (f32x4.splat (local.get $y)))",
    ...ids.map((i) => `    (local.set $a${i} (f32x4.splat (f32.const ${((i + 1) / 100).toFixed(2)})))`),
    "    (block $done (loop $l",
    "      (br_if $done (i32.eqz (local.get $n)))",
    ...Array.from({ length: unroll }, () => ids.map((i) => `      ${step(i)}`)).flat(),
    "      (local.set $n (i32.sub (local.get $n) (i32.const 1)))",
    "      (br $l)))",
    `    (f32x4.extract_lane 0 ${sum})))`,
  ].join("\n");
}

/**
 * The tile loop: `run(n, x, y)` does n steps of an R x 8 GEMM microkernel (2 loads of B, R splat
 * loads of A, 2R multiply-adds) walking a 2 KiB region of its own memory (zeros: no denormals).
 */
export function tileWat(op: PeakOp, rows: number): string {
  const acc = Array.from({ length: rows }, (_, r) => [`$c${r}_0`, `$c${r}_1`]).flat();
  const madd = (c: string, b: string) =>
    op === "fma" ? `(local.set ${c} (f32x4.relaxed_madd (local.get $s) (local.get ${b}) (local.get ${c})))` : `(local.set ${c} (f32x4.add (local.get ${c}) (f32x4.mul (local.get $s) (local.get ${b}))))`;
  const sum = acc.slice(1).reduce((s, c) => `(f32x4.add ${s} (local.get ${c}))`, `(local.get ${acc[0]})`);
  return [
    "(module",
    "  (memory 1)",
    '  (func (export "run") (param $n i32) (param $x f32) (param $y f32) (result f32)',
    `    (local $p i32) (local $b0 v128) (local $b1 v128) (local $s v128) ${acc.map((c) => `(local ${c} v128)`).join(" ")}`,
    "    (block $done (loop $l",
    "      (br_if $done (i32.eqz (local.get $n)))",
    "      (local.set $b0 (v128.load offset=0 (local.get $p)))",
    "      (local.set $b1 (v128.load offset=16 (local.get $p)))",
    ...Array.from({ length: rows }, (_, r) => [`      (local.set $s (v128.load32_splat offset=${2048 + 4 * r} (local.get $p)))`, `      ${madd(`$c${r}_0`, "$b0")}`, `      ${madd(`$c${r}_1`, "$b1")}`]).flat(),
    "      (local.set $p (i32.and (i32.add (local.get $p) (i32.const 32)) (i32.const 2047)))",
    "      (local.set $n (i32.sub (local.get $n) (i32.const 1)))",
    "      (br $l)))",
    `    (f32x4.extract_lane 0 ${sum})))`,
  ].join("\n");
}

/** wabt's init function, from @fitloop/wasm's devDependencies. */
async function loadWabt(): Promise<Wabt> {
  const req = createRequire(fileURLToPath(new URL("../packages/wasm/package.json", import.meta.url)));
  let file: string;
  try {
    file = req.resolve("wabt");
  } catch (e) {
    throw new Error(`wabt is not installed under packages/wasm (a devDependency of @fitloop/wasm; run the workspace install): ${(e as Error).message}`);
  }
  const mod = (await import(pathToFileURL(file).href)) as { default: () => Promise<Wabt> };
  return mod.default();
}

/** wat2wasm into a plain ArrayBuffer-backed array (what WebAssembly's typings take). */
const compile = (wabt: Wabt, filename: string, source: string, features: Record<string, boolean>): Uint8Array<ArrayBuffer> => new Uint8Array(wat2wasm(wabt, filename, source, features));

const RELAXED_PROBE = '(module (func (export "f") (param v128 v128 v128) (result v128) (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2))))';

/**
 * Turns relaxed SIMD on in this process's V8 (Node 20: behind a flag; Node 22: on by default) and
 * says whether a module using `f32x4.relaxed_madd` validates. Call before compiling such a module.
 */
export function enableRelaxedSimd(wabt: Wabt): boolean {
  v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
  return WebAssembly.validate(compile(wabt, "probe.wat", RELAXED_PROBE, { simd: true, relaxed_simd: true }));
}

/** A worker that instantiates `module` and runs `run(n, x, y)` when told, after a shared-memory barrier. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const run = new WebAssembly.Instance(workerData.module).exports.run;
const gate = new Int32Array(workerData.gate);
parentPort.on("message", ({ n, parties, round }) => {
  // barrier: every party increments, then waits until all of this round arrived
  Atomics.add(gate, 0, 1);
  while (Atomics.load(gate, 0) < parties * round) {}
  const t0 = performance.now();
  const r = run(n, 0.999, 0.001);
  const t1 = performance.now();
  parentPort.postMessage({ start: performance.timeOrigin + t0, end: performance.timeOrigin + t1, r });
});
`;

interface PeakWorker {
  worker: Worker;
  next(): Promise<{ start: number; end: number; r: number }>;
}

function startWorker(module: WebAssembly.Module, gate: SharedArrayBuffer): PeakWorker {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, gate } });
  worker.unref();
  const queue: ((m: { start: number; end: number; r: number }) => void)[] = [];
  let failure: Error | undefined;
  worker.on("message", (m: { start: number; end: number; r: number }) => queue.shift()?.(m));
  worker.on("error", (e) => (failure = e));
  return {
    worker,
    next: () => (failure ? Promise.reject(failure) : new Promise((resolve) => queue.push(resolve))),
  };
}

/** A compiled variant of the loop, with its FLOPs per iteration. */
export interface PeakKernel {
  op: PeakOp;
  /** e.g. "12 chains x1", "tile 4x8". */
  variant: string;
  module: WebAssembly.Module;
  flopsPerIter: number;
}

/**
 * Runs `kernel` on `threads` workers at once, `trials` times, each ~trialMs; returns GFLOP/s per trial
 * (both workers' FLOPs / wall time from the first start to the last end).
 */
export async function runPeak(kernel: PeakKernel, threads: number, trials: number, trialMs: number): Promise<number[]> {
  const gate = new SharedArrayBuffer(4);
  const workers = Array.from({ length: threads }, () => startWorker(kernel.module, gate));
  let round = 0;
  const once = async (n: number): Promise<number> => {
    round++;
    const replies = workers.map((w) => w.next());
    for (const w of workers) w.worker.postMessage({ n, parties: threads, round });
    const rs = await Promise.all(replies);
    const wall = Math.max(...rs.map((r) => r.end)) - Math.min(...rs.map((r) => r.start));
    return (threads * n * kernel.flopsPerIter) / (wall / 1000) / 1e9;
  };
  try {
    // warm-up (tier-up from Liftoff to TurboFan happens between calls) and calibration
    let n = 20_000;
    for (let i = 0; i < 4; i++) await once(n);
    const gflops = await once(n);
    n = Math.max(1000, Math.round((gflops * 1e9 * (trialMs / 1000)) / kernel.flopsPerIter));
    const out: number[] = [];
    for (let t = 0; t < trials; t++) out.push(await once(n));
    return out;
  } finally {
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }
}

export interface PeakSetup {
  kernels: PeakKernel[];
  /** Whether relaxed SIMD (FMA) validated; without it there are no `fma` kernels. */
  relaxed: boolean;
}

/** Compiles the loop variants (chains x unroll; tile rows) of both ops; relaxed SIMD is switched on first. */
export async function compilePeakKernels(chains: readonly (readonly [number, number])[] = [[10, 1], [12, 1], [12, 2]], tiles: readonly number[] = [4, 5]): Promise<PeakSetup> {
  const wabt = await loadWabt();
  const relaxed = enableRelaxedSimd(wabt);
  const kernels: PeakKernel[] = [];
  for (const op of relaxed ? (["muladd", "fma"] as const) : (["muladd"] as const)) {
    const features = { simd: true, relaxed_simd: op === "fma" };
    for (const [c, unroll] of chains) {
      const module = new WebAssembly.Module(compile(wabt, `peak-${op}.wat`, chainWat(op, c, unroll), features));
      kernels.push({ op, variant: `${c} chains x${unroll}`, module, flopsPerIter: c * unroll * FLOPS_PER_STEP });
    }
    for (const rows of tiles) {
      const module = new WebAssembly.Module(compile(wabt, `peak-${op}.wat`, tileWat(op, rows), features));
      kernels.push({ op, variant: `tile ${rows}x8`, module, flopsPerIter: 2 * rows * FLOPS_PER_STEP });
    }
  }
  return { kernels, relaxed };
}

export interface Peak {
  op: PeakOp;
  /** Best over the variants on 1 thread (GFLOP/s). */
  one: number;
  /** The fastest variant on 2 threads at once (GFLOP/s, both threads). */
  two: number;
  /** The fastest variant, e.g. "tile 4x8". */
  variant: string;
  /** 1-thread GFLOP/s of every variant. */
  byVariant: Record<string, number>;
}

/**
 * Peak GFLOP/s of `op`: the best trial of every variant on 1 thread picks the variant, which then
 * runs on 2 threads at once (best trial).
 */
export async function measurePeak(setup: PeakSetup, op: PeakOp, trials = 3, trialMs = 60): Promise<Peak | undefined> {
  const kernels = setup.kernels.filter((k) => k.op === op);
  if (!kernels.length) return undefined;
  const byVariant: Record<string, number> = {};
  let best = { gflops: 0, kernel: kernels[0]! };
  for (const k of kernels) {
    const g = Math.max(...(await runPeak(k, 1, trials, trialMs)));
    byVariant[k.variant] = g;
    if (g > best.gflops) best = { gflops: g, kernel: k };
  }
  const two = Math.max(...(await runPeak(best.kernel, 2, trials, trialMs)));
  return { op, one: best.gflops, two, variant: best.kernel.variant, byVariant };
}

async function main(): Promise<void> {
  const setup = await compilePeakKernels();
  console.log(`relaxed SIMD (f32x4.relaxed_madd) ${setup.relaxed ? "validates after --experimental-wasm-relaxed-simd" : "is not available in this Node"}`);
  for (const op of ["muladd", "fma"] as const) {
    const p = await measurePeak(setup, op);
    if (!p) continue;
    const variants = Object.entries(p.byVariant).map(([v, g]) => `${v} ${g.toFixed(1)}`).join(", ");
    console.log(`${op}: 1 thread ${p.one.toFixed(1)}, 2 threads ${p.two.toFixed(1)} GFLOP/s (${p.variant}; 1 thread by variant: ${variants})`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
