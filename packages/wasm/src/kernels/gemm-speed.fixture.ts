/**
 * GEMM speed, old vs new side by side in one process (docs/journal.md, round 9):
 *
 *   npx tsx --conditions=@fitloop/source packages/wasm/src/kernels/gemm-speed.fixture.ts
 *
 * On tfjs-wasm's threaded build (2 threads, fitloop's kernel threads), through `splitGemm` exactly as
 * the matmul and convolution kernels call it: `old` = the round-5 kernel (`gemm`; a transposed B
 * copied transposed first), `new` = the packed kernel (`gemmPacked`); "1 thread" with the kernel
 * threads switched off, "2 threads" with them on (products below 4 MFLOP stay on one thread either
 * way). The four configurations run interleaved in a rotating order, REPS rounds (default 31), each
 * timing enough calls for ~2 ms; the table gives the median GFLOP/s (2MNK / time) of each, and the
 * median of the per-round new/old ratios. Every round checks that old and new wrote the same bits.
 *
 * Environment: REPS, ONLY (a regular expression over the shape labels), SHAPES="M,K,N,ta,tb;..."
 * (other products, ta/tb 0 or 1, in place of the list below), FMA=1 adds relaxed-SIMD FMA
 * variants of the packed kernel (a research build from gemm.wat's text; see the journal), JSON=1
 * prints the raw medians as JSON too.
 */
import * as tf from "@tensorflow/tfjs-core";
import { useWasm } from "../use-wasm.js";
import { setKernelThreadsEnabled } from "./kernel-threads.js";
import { gemmSimd, type EmscriptenWasm } from "./simd/index.js";
import { setPackedGemmEnabled, splitGemm, packedKc, packedScratchBytes, type GemmOperands } from "./wasm-gemm-split.js";
import { fmaGemm, type FmaGemm } from "./gemm-fma.fixture.js";

interface Shape {
  label: string;
  m: number;
  k: number;
  n: number;
  /** A transposed in memory (ars = 4: a weight gradient's xᵀ, the im2col patchesᵀ) */
  ta: boolean;
  /** B transposed in memory (dx = dy·Wᵀ) */
  tb: boolean;
}

const SHAPES: Shape[] = [
  { label: "MLP fwd 1: 64x784 · 784x256", m: 64, k: 784, n: 256, ta: false, tb: false },
  { label: "MLP fwd 2: 64x256 · 256x128", m: 64, k: 256, n: 128, ta: false, tb: false },
  { label: "MLP fwd 3: 64x128 · 128x10", m: 64, k: 128, n: 10, ta: false, tb: false },
  { label: "MLP dW 1: 784x64 · 64x256 (xᵀ·dy)", m: 784, k: 64, n: 256, ta: true, tb: false },
  { label: "MLP dW 2: 256x64 · 64x128 (xᵀ·dy)", m: 256, k: 64, n: 128, ta: true, tb: false },
  { label: "MLP dW 3: 128x64 · 64x10 (xᵀ·dy)", m: 128, k: 64, n: 10, ta: true, tb: false },
  { label: "MLP dX 1: 64x256 · 256x784 (dy·Wᵀ)", m: 64, k: 256, n: 784, ta: false, tb: true },
  { label: "MLP dX 2: 64x128 · 128x256 (dy·Wᵀ)", m: 64, k: 128, n: 256, ta: false, tb: true },
  { label: "MLP dX 3: 64x10 · 10x128 (dy·Wᵀ)", m: 64, k: 10, n: 128, ta: false, tb: true },
  { label: "CNN conv1 im2col: 43264x9 · 9x32", m: 64 * 26 * 26, k: 9, n: 32, ta: true, tb: false },
  { label: "CNN conv2 im2col: 7744x288 · 288x64", m: 64 * 11 * 11, k: 288, n: 64, ta: true, tb: false },
  { label: "CNN conv1 dW: 9x43264 · 43264x32 (patchesᵀ)", m: 9, k: 64 * 26 * 26, n: 32, ta: false, tb: false },
  { label: "CNN conv2 dW: 288x7744 · 7744x64 (NHWC patches)", m: 288, k: 64 * 11 * 11, n: 64, ta: true, tb: false },
  { label: "CNN conv2 dX cols: 7744x64 · 64x288", m: 64 * 11 * 11, k: 64, n: 288, ta: false, tb: false },
];

interface HeapBackend {
  wasm: EmscriptenWasm & { HEAPU8: Uint8Array };
}

const median = (xs: number[]): number => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function fill(heap: ArrayBufferLike, p: number, n: number, seed: number): void {
  const a = new Float32Array(heap, p, n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
}

async function main(): Promise<void> {
  const reps = Number(process.env.REPS ?? 31);
  const only = process.env.ONLY ? new RegExp(process.env.ONLY) : undefined;
  await useWasm({ logger: { warn: (m) => console.error(`useWasm: ${m}`) } });
  const backend = tf.backend() as unknown as HeapBackend;
  const gemm = gemmSimd(backend.wasm);
  if (!gemm) throw new Error("no WebAssembly SIMD GEMM here");
  const fma: FmaGemm | undefined = process.env.FMA === "1" ? await fmaGemm(gemm.memory) : undefined;
  if (process.env.FMA === "1" && !fma) console.error("relaxed SIMD does not validate here: FMA rows skipped");
  const threads = (await import("./kernel-threads.js")).kernelThreadPool()?.threads ?? 1;
  console.log(`tfjs ${tf.version_core} wasm, ${threads} threads (caller + kernel workers); median of ${reps} interleaved rounds; GFLOP/s = 2MNK / time`);
  const rows: string[] = [];
  const json: Record<string, Record<string, number>> = {};
  const custom = process.env.SHAPES?.split(";").map((d): Shape => {
    const [m, k, n, ta, tb] = d.split(",").map(Number) as [number, number, number, number?, number?];
    return { label: `${m}x${k} · ${k}x${n}${ta ? " (ta)" : ""}${tb ? " (tb)" : ""}`, m, k, n, ta: !!ta, tb: !!tb };
  });
  for (const s of custom ?? SHAPES) {
    if (only && !only.test(s.label)) continue;
    const { m, k, n } = s;
    const bytes = 4 * (m * k + k * n + 2 * m * n);
    const base = backend.wasm._malloc(bytes + 256);
    if (!base) throw new Error(`could not allocate ${bytes} bytes`);
    const pa = Math.ceil(base / 64) * 64;
    const pb = pa + 4 * m * k;
    const pcOld = pb + 4 * k * n;
    const pcNew = pcOld + 4 * m * n;
    fill(backend.wasm.HEAPU8.buffer, pa, m * k, 1);
    fill(backend.wasm.HEAPU8.buffer, pb, k * n, 2);
    const [ars, aks] = s.ta ? [4, 4 * m] : [4 * k, 4];
    const b = s.tb ? { ldb: 4, bns: 4 * k } : { ldb: 4 * n };
    const ops = (pc: number): GemmOperands => ({ pa, ars, aks, pb, ...b, pc, ldc: 4 * n, m, n, k });
    const flops = 2 * m * n * k;
    type Config = { name: string; run: () => void; pc: number };
    const config = (name: string, packed: boolean, split: boolean): Config => ({
      name,
      pc: packed ? pcNew : pcOld,
      run: () => {
        setPackedGemmEnabled(packed);
        setKernelThreadsEnabled(split);
        try {
          splitGemm(gemm, ops(packed ? pcNew : pcOld));
        } finally {
          setPackedGemmEnabled(true);
          setKernelThreadsEnabled(true);
        }
      },
    });
    const configs: Config[] = [config("old 1t", false, false), config("new 1t", true, false), config("old 2t", false, true), config("new 2t", true, true)];
    let fmaScratch = 0;
    let pcFma = 0;
    if (fma) {
      const kc = packedKc(n, k);
      fmaScratch = backend.wasm._malloc(packedScratchBytes(n, kc));
      pcFma = backend.wasm._malloc(4 * m * n);
      configs.push({ name: "fma 1t", pc: pcFma, run: () => fma.gemmPacked(pa, ars, aks, pb, b.ldb, b.bns ?? 4, pcFma, 4 * n, m, n, k, kc, fmaScratch) });
    }
    const times: Record<string, number[]> = Object.fromEntries(configs.map((c) => [c.name, []]));
    const ratios: Record<string, number[]> = { "1t": [], "2t": [] };
    const inner = Math.max(1, Math.round(2e-3 / (flops / 40e9))); // ~2 ms per timing at 40 GFLOP/s
    for (const c of configs) for (let i = 0; i < 3; i++) c.run(); // warm-up (tier-up of the wasm code)
    for (let r = 0; r < reps; r++) {
      const round: Record<string, number> = {};
      for (let j = 0; j < configs.length; j++) {
        const c = configs[(j + r) % configs.length]!;
        const t0 = performance.now();
        for (let i = 0; i < inner; i++) c.run();
        round[c.name] = (performance.now() - t0) / inner;
        times[c.name]!.push(round[c.name]!);
      }
      ratios["1t"]!.push(round["old 1t"]! / round["new 1t"]!);
      ratios["2t"]!.push(round["old 2t"]! / round["new 2t"]!);
      const heap = backend.wasm.HEAPU8.buffer;
      const [o, w] = [new Uint32Array(heap, pcOld, m * n), new Uint32Array(heap, pcNew, m * n)];
      for (let i = 0; i < m * n; i++) if (o[i] !== w[i]) throw new Error(`${s.label}: old and new differ at ${i}`);
    }
    let fmaNote = "";
    if (fma) {
      // FMA rounds once per product-and-add: not the same bits, within float tolerance
      const heap = backend.wasm.HEAPU8.buffer;
      const [w, f] = [new Float32Array(heap, pcNew, m * n), new Float32Array(heap, pcFma, m * n)];
      let differ = 0;
      let worst = 0;
      let scale = 1e-6;
      for (let i = 0; i < m * n; i++) {
        if (w[i] !== f[i]) differ++;
        worst = Math.max(worst, Math.abs(w[i]! - f[i]!));
        scale = Math.max(scale, Math.abs(w[i]!));
      }
      if (!(worst <= 1e-5 * scale)) throw new Error(`${s.label}: FMA result off by ${worst} (largest |C| ${scale})`);
      fmaNote = ` (${((100 * differ) / (m * n)).toFixed(0)} % of C differs)`;
    }
    const g = (name: string): number => flops / median(times[name]!) / 1e6;
    json[s.label] = Object.fromEntries(configs.map((c) => [c.name, +g(c.name).toFixed(1)]));
    rows.push(
      `| ${s.label} | ${(flops / 1e6).toFixed(1)} | ${g("old 1t").toFixed(1)} | ${g("new 1t").toFixed(1)} | ${median(ratios["1t"]!).toFixed(2)}x | ${g("old 2t").toFixed(1)} | ${g("new 2t").toFixed(1)} | ${median(ratios["2t"]!).toFixed(2)}x |` +
        (fma ? ` ${g("fma 1t").toFixed(1)}${fmaNote} |` : ""),
    );
    console.error(rows.at(-1));
    backend.wasm._free(base);
    if (fmaScratch) backend.wasm._free(fmaScratch);
    if (pcFma) backend.wasm._free(pcFma);
  }
  console.log(`| product (M x K · K x N) | MFLOP | old, 1 thread | new, 1 thread | new/old | old, 2 threads | new, 2 threads | new/old |${fma ? " new + FMA, 1 thread |" : ""}`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|---:|${fma ? "---:|" : ""}`);
  for (const r of rows) console.log(r);
  if (process.env.JSON === "1") console.log(JSON.stringify(json));
}

await main();
process.exit(0);
