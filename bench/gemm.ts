/**
 * GFLOP/s of the matrix products a training step of bench/models.ts runs on the wasm backend, through
 * fitloop's kernels as training calls them, beside the machine's 128-bit WebAssembly SIMD peak
 * measured in the same run (bench/peak-simd.ts).
 *
 *   products  the MLP 784-256-128-10 at batch 64: forward x·W, weight gradients xᵀ·dY, input
 *             gradients dY·Wᵀ (not for the first layer: training never computes it); the CNN's
 *             im2col products (conv1 forward patches·W and filter gradient patchesᵀ·dY, conv2 filter
 *             gradient patchesᵀ·dY and input gradient dY·Wᵀ before col2im) and its dense 1600-128 layer.
 *             conv2's filter gradient has two rows: the kernel stores the patches as [rows, taps] and
 *             reads them transposed when fitloop's GEMM runs (2 threads), as patchesᵀ [taps, rows]
 *             for XNNPACK otherwise (1 thread); "in training" says which step runs which row.
 *             (conv2's forward pass is an XNNPACK convolution, not a matmul: not here.)
 *             Each as `tf.matMul(a, b, transposeA, transposeB)` with the operand layout the kernels
 *             use (wasm-conv2d-im2col.ts, wasm-conv2d-backprop-*.ts), on the wasm backend after
 *             `useWasm()` (fitloop's kernels on), on fresh input tensors every call (as in training:
 *             XNNPACK caches packed weights per tensor). FLOPs = 2·M·N·K.
 *   op        ms per `tf.matMul` call (engine + kernel), median of many calls after warm-up; the
 *             GFLOP/s columns and the JSON use this
 *   kernel    ms per call of the registered BatchMatMul kernel function itself (no engine, no tape):
 *             transposes/scratch and the thread split included
 *   fixed     op and kernel for a 1x1·1x1 product: op - kernel is the tfjs engine's share of every
 *             tf.matMul (the tape, the output tensor), which no kernel can avoid
 *   handoff   pool.run of two 1x1x1 GEMM tasks minus one (2-thread child): the least it costs to hand
 *             half of a product to the kernel worker and wait for it
 *   alloc     the wasm backend's makeOutput of a [64, 10] float32 output (2-thread child): what any
 *             BatchMatMul kernel pays at least (it must return a new tensor)
 *   ceiling   the GFLOP/s a product could reach through tf.matMul on this machine, with a kernel that
 *             cost nothing but its output: FLOPs / (the engine's share + alloc + the arithmetic at the
 *             peak, the higher of mul+add and FMA, on 1 thread or on 2 plus the handoff, whichever is
 *             less), the arithmetic on f32x4 lanes along N (N = 10 fills 10 of 12 lanes)
 *   threads   1 thread (`useWasm({threads: 1})`: single-threaded build, no kernel threads) and 2
 *             threads (threaded build + fitloop's kernel threads), each in its own long-lived child
 *             process; rounds alternate between them (order rotates), the peak loops run between
 *             rounds, so every figure comes from the same run and the same machine state
 *   path      which kernel the product takes, predicted from the switches fitloop exports (fitloop's
 *             SIMD GEMM below the thread gate, or from it with kernel threads; else XNNPACK)
 *   peak      f32x4.mul + f32x4.add (what fitloop's SIMD emits) and, when Node accepts relaxed SIMD,
 *             f32x4.relaxed_madd (FMA), on 1 and 2 threads, each the fastest of independent chains
 *             and a GEMM-tile loop on L1 data (bench/peak-simd.ts); the best trial per measurement,
 *             median over the measurements (before, between and after the rounds)
 *
 * Prints a table and, last, {"bench":"gemm","min_gflops":G,"peak_fraction":F,"peak":"muladd_2t",...}:
 * G = the lowest 2-thread GFLOP/s over the products a 2-thread training step runs, F = G / the
 * 2-thread mul+add peak (min_gflops_ge_4mflop: the same without the three 0.16-MFLOP products of the
 * 10-unit layer, whose ~7 us per call is call overhead, not multiply-adds; engine_us, alloc_us,
 * handoff_us: the fixed costs above; ceiling_gflops: the lowest ceiling over those products, an upper bound
 * on min_gflops for a kernel with fitloop's handoff and lane layout here; kernel_ceiling_gflops: the same
 * for the GEMM alone, without the engine's share and the output's allocation, an upper bound on
 * min_gflops_kernel). A handoff that measures 0 (the worker won the 1-task run) loosens both bounds.
 * The machine is shared: a busy round lowers both sides of a ratio only when they ran close together;
 * read the min..max columns and the load line (CPU time of other processes, from /proc/stat minus
 * this bench's processes).
 *
 *   pnpm run bench:gemm    # env: ROUNDS (3), MIN_MS (per product, child and round: 200), MIN_CALLS (15),
 *                          # ONLY (substring of the product names to keep, e.g. `conv2`),
 *                          # WASM_SIMD / WASM_SIMD_MATMUL / WASM_KERNELS / THREAD_MIN_MFLOPS (bench/kernel-choice.ts;
 *                          # e.g. THREAD_MIN_MFLOPS=1000000: the 1-thread child runs every product on fitloop's GEMM)
 */
import "reflect-metadata";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { kernelThreadPool, kernelThreadsEnabled, simdKernelsEnabled, simdMatMulEnabled, useWasm, wasmThreadMinFlops } from "../packages/wasm/src/index.js";
import { ownGemmTakes } from "../packages/wasm/src/kernels/wasm-gemm-split.js";
import { applyKernelChoice } from "./kernel-choice.js";
import { cpuSnapshot, intEnv, loadText, median, otherLoad, printTable, wasmThreadCount } from "./models.js";
import { compilePeakKernels, measurePeak, type PeakOp } from "./peak-simd.js";
import { fixedCosts, kernelCeiling, measureHandoff, opCeiling, type HandoffSample } from "./gemm-ceiling.js";

const ROUNDS = intEnv("ROUNDS", 3);
const MIN_MS = intEnv("MIN_MS", 200);
const MIN_CALLS = intEnv("MIN_CALLS", 15);
const TARGET_GFLOPS = 60;
/** A round during which other processes used this many cores or more counts as contended. */
const CONTENDED_CORES = 0.25;

/** One product: C[M, N] = op(A)·op(B) with K the inner size; a and b as stored. */
interface Product {
  name: string;
  what: string;
  a: [number, number];
  b: [number, number];
  ta: boolean;
  tb: boolean;
  /** The thread settings whose training step runs this product in this layout (default both). */
  used?: "1t" | "2t";
}

const B = 64;
const CONV1_ROWS = B * 26 * 26; // 43264 output pixels of conv1 (28x28x1 -> 26x26x32, valid)
const CONV2_ROWS = B * 11 * 11; // 7744 output pixels of conv2 (13x13x32 -> 11x11x64)

export const PRODUCTS: Product[] = [
  { name: "mlp.fwd1", what: "MLP dense1 forward x·W1", a: [B, 784], b: [784, 256], ta: false, tb: false },
  { name: "mlp.fwd2", what: "MLP dense2 forward", a: [B, 256], b: [256, 128], ta: false, tb: false },
  { name: "mlp.fwd3", what: "MLP dense3 forward", a: [B, 128], b: [128, 10], ta: false, tb: false },
  { name: "mlp.dW1", what: "MLP dense1 weight grad xᵀ·dY", a: [B, 784], b: [B, 256], ta: true, tb: false },
  { name: "mlp.dW2", what: "MLP dense2 weight grad", a: [B, 256], b: [B, 128], ta: true, tb: false },
  { name: "mlp.dW3", what: "MLP dense3 weight grad", a: [B, 128], b: [B, 10], ta: true, tb: false },
  { name: "mlp.dX2", what: "MLP dense2 input grad dY·W2ᵀ", a: [B, 128], b: [256, 128], ta: false, tb: true },
  { name: "mlp.dX3", what: "MLP dense3 input grad dY·W3ᵀ", a: [B, 10], b: [128, 10], ta: false, tb: true },
  { name: "conv1.fwd", what: "CNN conv1 forward, im2col patches·W (patchesᵀ read transposed)", a: [9, CONV1_ROWS], b: [9, 32], ta: true, tb: false },
  { name: "conv1.dW", what: "CNN conv1 filter grad patchesᵀ·dY", a: [9, CONV1_ROWS], b: [CONV1_ROWS, 32], ta: false, tb: false },
  { name: "conv2.dW", what: "CNN conv2 filter grad patchesᵀ·dY (NHWC patches, read transposed: with fitloop's GEMM)", a: [CONV2_ROWS, 288], b: [CONV2_ROWS, 64], ta: true, tb: false, used: "2t" },
  { name: "conv2.dWt", what: "the same with patchesᵀ stored (the kernel's layout when fitloop's GEMM declines: XNNPACK)", a: [288, CONV2_ROWS], b: [CONV2_ROWS, 64], ta: false, tb: false, used: "1t" },
  { name: "conv2.dX", what: "CNN conv2 input grad dY·Wᵀ (then col2im)", a: [CONV2_ROWS, 64], b: [288, 64], ta: false, tb: true },
  { name: "cnn.fwd1", what: "CNN dense 1600-128 forward", a: [B, 1600], b: [1600, 128], ta: false, tb: false },
  { name: "cnn.dW1", what: "CNN dense 1600-128 weight grad", a: [B, 1600], b: [B, 128], ta: true, tb: false },
  { name: "cnn.dX1", what: "CNN dense 1600-128 input grad", a: [B, 128], b: [1600, 128], ta: false, tb: true },
];

/** A 1x1·1x1 product: the fixed cost of a tf.matMul call (not one of the step's products). */
const FIXED: Product = { name: "fixed", what: "1x1·1x1: a tf.matMul's fixed cost", a: [1, 1], b: [1, 1], ta: false, tb: false };

const dims = (p: Product): { m: number; n: number; k: number } => ({
  m: p.ta ? p.a[1] : p.a[0],
  k: p.ta ? p.a[0] : p.a[1],
  n: p.tb ? p.b[0] : p.b[1],
});
const flopsOf = (p: Product): number => {
  const { m, n, k } = dims(p);
  return 2 * m * n * k;
};
const shapeText = (p: Product): string => {
  const { m, n, k } = dims(p);
  return `${m}x${k}·${k}x${n}`;
};

// ---------------------------------------------------------------- child: one thread setting

interface ChildSample {
  op: number[];
  kernel: number[];
}

/** Filled once per product: JS copies of the operands, uploaded as fresh tensors for every call. */
const operandData = new Map<string, [Float32Array, Float32Array]>();
function operands(p: Product): [Float32Array, Float32Array] {
  let d = operandData.get(p.name);
  if (!d) {
    let s = 12345;
    const fill = (n: number) => Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) >>> 0), s / 2 ** 32 - 0.5));
    d = [fill(p.a[0] * p.a[1]), fill(p.b[0] * p.b[1])];
    operandData.set(p.name, d);
  }
  return d;
}

/** ms per call, `calls` calls on distinct fresh operands, through tf.matMul (op) or the kernel function. */
function timeCalls(p: Product, calls: number, how: "op" | "kernel"): number {
  const [ad, bd] = operands(p);
  const pairs = Array.from({ length: calls }, () => [tf.tensor2d(ad, p.a), tf.tensor2d(bd, p.b)] as const);
  const backend = tf.backend();
  const kernelFunc = tf.getKernel("BatchMatMul", "wasm")!.kernelFunc;
  const attrs = { transposeA: p.ta, transposeB: p.tb };
  const outs: tf.Tensor[] = [];
  const infos: tf.TensorInfo[] = [];
  const t0 = performance.now();
  if (how === "op") for (const [a, b] of pairs) outs.push(tf.matMul(a, b, p.ta, p.tb));
  else for (const [a, b] of pairs) infos.push(kernelFunc({ inputs: { a, b }, backend, attrs }) as tf.TensorInfo);
  const ms = (performance.now() - t0) / calls;
  tf.dispose(outs);
  for (const i of infos) backend.disposeData(i.dataId);
  for (const [a, b] of pairs) tf.dispose([a, b]);
  return ms;
}

/** Samples of one product: alternating op and kernel samples for at least minMs and minCalls each. */
function measureProduct(p: Product, minMs: number, minCalls: number, warm: boolean): ChildSample {
  // calls per sample: ~2 MFLOP at least, so a sample of a tiny product is not one timer tick
  const calls = Math.max(1, Math.min(64, Math.ceil(2e6 / flopsOf(p))));
  if (warm) for (let i = 0; i < 3; i++) (timeCalls(p, calls, "op"), timeCalls(p, calls, "kernel"));
  const out: ChildSample = { op: [], kernel: [] };
  const t0 = performance.now();
  while (out.op.length * calls < minCalls || performance.now() - t0 < minMs) {
    out.op.push(timeCalls(p, calls, "op"));
    out.kernel.push(timeCalls(p, calls, "kernel"));
  }
  return out;
}

/** The kernel a product takes, from the switches fitloop exports (mirrors wasm-matmul-simd.ts / wasm-gemm-split.ts). */
function predictedPath(p: Product, replaced: readonly string[], xnnpackThreads: number): string {
  const flops = flopsOf(p);
  const pool = kernelThreadPool();
  const threadsOn = !!pool?.ready() && kernelThreadsEnabled();
  if (simdKernelsEnabled() && simdMatMulEnabled() && replaced.includes("BatchMatMul") && ownGemmTakes(flops, wasmThreadMinFlops(), threadsOn, xnnpackThreads)) {
    return threadsOn && flops >= 4e6 ? "fitloop GEMM, split" : "fitloop GEMM";
  }
  return flops >= wasmThreadMinFlops() ? "XNNPACK (threads from the gate)" : "XNNPACK";
}

async function child(): Promise<void> {
  const v = process.env["THREADS"];
  const threads = v === "false" ? false : Number(v);
  await useWasm({ threads });
  const replaced = applyKernelChoice();
  const send = (o: unknown) => process.stdout.write(`@@${JSON.stringify(o)}\n`);
  const xnnpack = await wasmThreadCount(); // tfjs-wasm's (XNNPACK's) threads
  send({ ready: true, threads: xnnpack, kernelThreads: kernelThreadPool()?.ready() ? kernelThreadPool()!.threads : 1, replaced, paths: PRODUCTS.map((p) => predictedPath(p, replaced, xnnpack)) });
  const warmed = new Set<number>();
  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd, idx] = line.trim().split(/\s+/);
    if (cmd === "quit") break;
    if (cmd === "handoff") {
      send(measureHandoff());
      continue;
    }
    if (cmd !== "run") continue;
    const i = Number(idx);
    const sample = measureProduct(i < 0 ? FIXED : PRODUCTS[i]!, MIN_MS, MIN_CALLS, !warmed.has(i));
    warmed.add(i);
    send(sample);
  }
  process.exit(0);
}

// ---------------------------------------------------------------- parent

interface Child {
  label: string;
  pid: number;
  info: { threads: number; kernelThreads: number; replaced: string[]; paths: string[] };
  run(i: number): Promise<ChildSample>;
  handoff(): Promise<HandoffSample>;
  close(): void;
}

async function startChild(threads: number): Promise<Child> {
  const proc: ChildProcessWithoutNullStreams = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    env: { ...process.env, GEMM_CHILD: "1", THREADS: String(threads) },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    process.stderr.write(`[${threads}t] ${d.toString()}`);
  });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    for (;;) {
      const r = await lines.next();
      if (r.done) throw new Error(`the ${threads}-thread child exited: ${stderr.trim().slice(-800)}`);
      if (r.value.startsWith("@@")) return JSON.parse(r.value.slice(2)) as Record<string, unknown>;
    }
  };
  const info = (await next()) as unknown as Child["info"];
  return {
    label: `${threads}t`,
    pid: proc.pid ?? 0,
    info,
    async run(i) {
      proc.stdin.write(`run ${i}\n`);
      return (await next()) as unknown as ChildSample;
    },
    async handoff() {
      proc.stdin.write("handoff\n");
      return (await next()) as unknown as HandoffSample;
    },
    close() {
      proc.stdin.end("quit\n");
    },
  };
}

/** Which GEMM module the children load: sha256 (12 hex) and mtime of the embedded gemm.wasm.ts. */
function gemmModuleVersion(): { sha: string; mtime: string } {
  const file = fileURLToPath(new URL("../packages/wasm/src/kernels/simd/gemm.wasm.ts", import.meta.url));
  return { sha: createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 12), mtime: statSync(file).mtime.toISOString() };
}

const f1 = (x: number): string => x.toFixed(1);
const range = (v: number[], d = 1): string => `${Math.min(...v).toFixed(d)}..${Math.max(...v).toFixed(d)}`;

async function main(): Promise<void> {
  const only = process.env["ONLY"];
  const chosen = PRODUCTS.map((p, i) => [p, i] as const).filter(([p]) => !only || p.name.includes(only));
  if (!chosen.length) throw new Error(`ONLY=${only} matches none of ${PRODUCTS.map((p) => p.name).join(", ")}`);
  const setup = await compilePeakKernels();
  const gemmVersion = gemmModuleVersion();
  const [one, two] = [await startChild(1), await startChild(2)];
  const started = performance.now();
  console.log(`tfjs ${tf.version_core} wasm backend via useWasm(); children: 1 thread (${one.info.threads} XNNPACK thread, ${one.info.kernelThreads} kernel thread) and 2 threads (${two.info.threads} XNNPACK threads, ${two.info.kernelThreads} kernel threads)`);
  console.log(`fitloop kernels (2-thread child): ${two.info.replaced.join(", ")}; simd/gemm.wasm.ts sha256 ${gemmVersion.sha}, modified ${gemmVersion.mtime}`);
  console.log(`relaxed SIMD: ${setup.relaxed ? "f32x4.relaxed_madd validates (--experimental-wasm-relaxed-simd set in this process only; the GEMM children run without it)" : "not available: no FMA peak"}`);
  console.log(`${ROUNDS} rounds; per round and product each child times >= ${MIN_MS} ms and >= ${MIN_CALLS} calls (fresh operands per call); peaks between rounds. The machine is shared: it may have been busy.`);

  const ops: PeakOp[] = setup.relaxed ? ["muladd", "fma"] : ["muladd"];
  const peaks = new Map<string, number[]>(); // `${op}_${threads}t` -> best trial per measurement
  const peakVariants = new Map<PeakOp, Map<string, number[]>>(); // op -> variant -> 1-thread GFLOP/s per measurement
  const measurePeaks = async () => {
    for (const op of ops) {
      const p = await measurePeak(setup, op);
      if (!p) continue;
      for (const [k, g] of [[`${op}_1t`, p.one], [`${op}_2t`, p.two]] as const) peaks.set(k, [...(peaks.get(k) ?? []), g]);
      const vs = peakVariants.get(op) ?? new Map<string, number[]>();
      for (const [v, g] of Object.entries(p.byVariant)) vs.set(v, [...(vs.get(v) ?? []), g]);
      peakVariants.set(op, vs);
    }
  };
  // per product and child: the median ms of each round (op and kernel)
  const res = new Map<string, { op: number[]; kernel: number[] }>();
  const key = (i: number, c: Child) => `${i}/${c.label}`;
  const pids = [process.pid, one.pid, two.pid];
  const runStart = cpuSnapshot(pids);
  const roundLoads: string[] = [];
  let contended = 0;
  let runEnd: ReturnType<typeof cpuSnapshot>;
  let handoff: HandoffSample | undefined;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const before = cpuSnapshot(pids);
      await measurePeaks();
      for (const [p, i] of chosen) {
        const order = (round + i) % 2 === 0 ? [one, two] : [two, one];
        for (const c of order) {
          const s = await c.run(i);
          const r = res.get(key(i, c)) ?? { op: [], kernel: [] };
          r.op.push(median(s.op));
          r.kernel.push(median(s.kernel));
          res.set(key(i, c), r);
        }
        const g = (c: Child) => flopsOf(p) / (res.get(key(i, c))!.op.at(-1)! * 1e6);
        process.stderr.write(`round ${round + 1}/${ROUNDS} ${p.name}: 1 thread ${f1(g(one))}, 2 threads ${f1(g(two))} GFLOP/s\n`);
      }
      for (const c of round % 2 === 0 ? [one, two] : [two, one]) {
        const s = await c.run(-1);
        const r = res.get(key(-1, c)) ?? { op: [], kernel: [] };
        r.op.push(median(s.op));
        r.kernel.push(median(s.kernel));
        res.set(key(-1, c), r);
      }
      const load = otherLoad(before, cpuSnapshot(pids));
      roundLoads.push(load ? load.others.toFixed(2) : "?");
      if (load && load.others >= CONTENDED_CORES) contended++;
      process.stderr.write(`round ${round + 1}/${ROUNDS}: ${loadText(load)}\n`);
    }
    await measurePeaks();
    handoff = await two.handoff();
    runEnd = cpuSnapshot(pids); // while the children still run (their CPU time leaves /proc with them)
  } finally {
    one.close();
    two.close();
  }
  const runLoad = otherLoad(runStart, runEnd);

  const peak = (k: string): number | undefined => (peaks.has(k) ? median(peaks.get(k)!) : undefined);
  console.log("\nPeaks (GFLOP/s; best trial per measurement, median over the measurements before, between and after the rounds; min..max; 2 threads: the fastest 1-thread variant on both cores at once):");
  printTable(
    ["loop", "1 thread", "2 threads", "1-thread range", "2-thread range", "1 thread by loop variant (medians)"],
    ops.map((op) => [
      op === "fma" ? "f32x4.relaxed_madd (FMA)" : "f32x4.mul + f32x4.add",
      f1(peak(`${op}_1t`)!),
      f1(peak(`${op}_2t`)!),
      range(peaks.get(`${op}_1t`)!),
      range(peaks.get(`${op}_2t`)!),
      [...(peakVariants.get(op) ?? new Map<string, number[]>())].map(([v, g]) => `${v} ${f1(median(g))}`).join(", "),
    ]),
  );

  const mulAdd2 = peak("muladd_2t")!;
  const fma2 = peak("fma_2t");
  // the best a product can do through tf.matMul here with a kernel that costs nothing but its output
  const fixed2 = res.get(key(-1, two))!;
  const fixed = fixedCosts({ op: median(fixed2.op), kernel: median(fixed2.kernel) }, handoff);
  const best1 = Math.max(peak("muladd_1t")!, peak("fma_1t") ?? 0);
  const best2 = Math.max(mulAdd2, fma2 ?? 0);
  const ceiling = (p: Product): number => opCeiling(fixed, dims(p), best1, best2);
  const gemmCeiling = (p: Product): number => kernelCeiling(fixed, dims(p), best1, best2);
  const rows: string[][] = [];
  const stats = chosen.map(([p, i]) => {
    const flops = flopsOf(p);
    const r1 = res.get(key(i, one))!;
    const r2 = res.get(key(i, two))!;
    const ms1 = median(r1.op);
    const ms2 = median(r2.op);
    const g1 = flops / (ms1 * 1e6);
    const g2 = flops / (ms2 * 1e6);
    const k2 = flops / (median(r2.kernel) * 1e6);
    const k1 = flops / (median(r1.kernel) * 1e6);
    rows.push([
      p.name,
      shapeText(p) + (p.ta || p.tb ? ` (${p.ta ? "tA" : ""}${p.ta && p.tb ? "," : ""}${p.tb ? "tB" : ""})` : ""),
      p.what,
      (flops / 1e6).toFixed(2),
      p.used ?? "1t, 2t",
      `${one.info.paths[i]} / ${two.info.paths[i]}`,
      ms1.toFixed(3),
      ms2.toFixed(3),
      f1(g1),
      f1(g2),
      range(r2.op.map((ms) => flops / (ms * 1e6))),
      `${f1(k1)} / ${f1(k2)}`,
      `${((100 * g2) / mulAdd2).toFixed(0)}%`,
      fma2 ? `${((100 * g2) / fma2).toFixed(0)}%` : "-",
      f1(ceiling(p)),
    ]);
    return { p, g1, g2, k2 };
  });
  console.log("\nProducts (ms per tf.matMul call, median over rounds of each round's median; GFLOP/s = 2·M·N·K / that time):");
  printTable(
    ["product", "M x K · K x N", "what", "MFLOP", "in training", "path (1t / 2t, predicted)", "ms 1t", "ms 2t", "GFLOP/s 1t", "GFLOP/s 2t", "2t rounds", "kernel-only GFLOP/s 1t / 2t", "of 2t mul+add peak", "of 2t FMA peak", "ceiling"],
    rows,
  );
  // minima over the products a 2-thread (1-thread) training step runs in that layout
  const used2 = stats.filter((s) => s.p.used !== "1t");
  const used1 = stats.filter((s) => s.p.used !== "2t");
  if (!used2.length || !used1.length) throw new Error(`ONLY=${only} leaves no product of a 2-thread and a 1-thread step`);
  const worst = used2.reduce((a, b) => (b.g2 < a.g2 ? b : a));
  const worst1 = used1.reduce((a, b) => (b.g1 < a.g1 ? b : a));
  const worstKernel = used2.reduce((a, b) => (b.k2 < a.k2 ? b : a));
  const big = used2.filter((s) => flopsOf(s.p) >= 4e6);
  const worstBig = big.length ? big.reduce((a, b) => (b.g2 < a.g2 ? b : a)) : undefined;
  console.log(
    `\nlowest 2-thread GFLOP/s (products of a 2-thread step): ${f1(worst.g2)} (${worst.p.name}); 1 thread (of a 1-thread step): ${f1(worst1.g1)} (${worst1.p.name}); of products >= 4 MFLOP: ${worstBig ? `${f1(worstBig.g2)} (${worstBig.p.name})` : "-"}; kernel-only: ${f1(worstKernel.k2)} (${worstKernel.p.name}). Target >= ${TARGET_GFLOPS}. ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  const lowestCeiling = used2.reduce((a, b) => (ceiling(b.p) < ceiling(a.p) ? b : a));
  console.log(
    `fixed costs (2 threads): a 1x1·1x1 tf.matMul ${(median(fixed2.op) * 1000).toFixed(2)} us, of which the engine's share ${fixed.engineUs.toFixed(2)} us and fitloop's kernel ${(median(fixed2.kernel) * 1000).toFixed(2)} us; ` +
      `allocating a [64, 10] output ${fixed.allocUs.toFixed(2)} us; ` +
      `handing half a product to the kernel worker ${Number.isFinite(fixed.handoffUs) ? `${fixed.handoffUs.toFixed(2)} us (pool.run of 2 tasks ${handoff!.two!.toFixed(2)} us, of 1 ${handoff!.one!.toFixed(2)} us)` : "(no kernel threads)"}.`,
  );
  console.log(
    `ceiling: with a kernel that cost nothing but its output, ${lowestCeiling.p.name} (${(flopsOf(lowestCeiling.p) / 1e6).toFixed(2)} MFLOP) could reach ${f1(ceiling(lowestCeiling.p))} GFLOP/s through tf.matMul here at most; ` +
      `${TARGET_GFLOPS} GFLOP/s would need the whole call in ${((flopsOf(lowestCeiling.p) / (TARGET_GFLOPS * 1e9)) * 1e6).toFixed(2)} us.`,
  );
  const lowestGemmCeiling = used2.reduce((a, b) => (gemmCeiling(b.p) < gemmCeiling(a.p) ? b : a));
  console.log(
    `GEMM-only ceiling (no engine share, no output allocation; the peak on the f32x4 lanes it fills, 1 thread or 2 plus the handoff): ` +
      `${lowestGemmCeiling.p.name} ${f1(gemmCeiling(lowestGemmCeiling.p))} GFLOP/s at most; fitloop's kernel function (its allocation, scratch and split included): ${f1(worstKernel.k2)} (${worstKernel.p.name}). ` +
      `The target is for the whole tf.matMul call (min_gflops).`,
  );
  if (fixed.handoffUs === 0) console.log(`WARNING: the handoff measured 0 (pool.run of 2 tasks no slower than of 1: the worker won the single task); the 2-thread ceilings above assume a free handoff and are loose.`);
  console.log(`machine load during the run (from /proc, besides this bench and its children): ${loadText(runLoad)} of 2 cores; per round ${roundLoads.join(", ")} cores`);
  if (contended) console.log(`WARNING: ${contended}/${ROUNDS} rounds contended (other processes >= ${CONTENDED_CORES} cores): 2-thread figures and peaks are low there; medians over rounds absorb one such round, not more.`);
  const r1 = (x: number) => Math.round(x * 10) / 10;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  console.log(
    JSON.stringify({
      bench: "gemm",
      min_gflops: r1(worst.g2),
      peak_fraction: r3(worst.g2 / mulAdd2),
      peak: "muladd_2t",
      min_product: worst.p.name,
      peak_gflops: r1(mulAdd2),
      fma_peak_gflops: fma2 !== undefined ? r1(fma2) : null,
      fma_peak_fraction: fma2 !== undefined ? r3(worst.g2 / fma2) : null,
      peak_1t_muladd: r1(peak("muladd_1t")!),
      peak_1t_fma: peak("fma_1t") !== undefined ? r1(peak("fma_1t")!) : null,
      peak_muladd_chain_1t: r1(Math.max(...[...(peakVariants.get("muladd") ?? new Map<string, number[]>())].filter(([v]) => v.includes("chains")).map(([, g]) => median(g)))),
      min_gflops_ge_4mflop: worstBig ? r1(worstBig.g2) : null,
      min_gflops_kernel: r1(worstKernel.k2),
      min_gflops_1t: r1(worst1.g1),
      engine_us: Math.round(fixed.engineUs * 100) / 100,
      alloc_us: Math.round(fixed.allocUs * 100) / 100,
      handoff_us: Number.isFinite(fixed.handoffUs) ? Math.round(fixed.handoffUs * 100) / 100 : null,
      ceiling_gflops: r1(ceiling(lowestCeiling.p)),
      ceiling_product: lowestCeiling.p.name,
      kernel_ceiling_gflops: r1(gemmCeiling(lowestGemmCeiling.p)),
      kernel_ceiling_product: lowestGemmCeiling.p.name,
      gflops_2t: Object.fromEntries(stats.map((s) => [s.p.name, r1(s.g2)])),
      gflops_1t: Object.fromEntries(stats.map((s) => [s.p.name, r1(s.g1)])),
      target: TARGET_GFLOPS,
      other_load_cores: runLoad ? Math.round(runLoad.others * 100) / 100 : null,
      gemm_module_sha256: gemmVersion.sha,
      contended_rounds: contended,
    }),
  );
}

(process.env["GEMM_CHILD"] ? child() : main()).catch((e) => {
  console.error(e);
  process.exit(1);
});
