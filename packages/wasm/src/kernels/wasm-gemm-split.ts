import { planParts, poolFor, runPoolTasks, type KernelCall, type KernelThreadPool } from "./kernel-threads.js";
import * as tf from "@tensorflow/tfjs-core";
import { FMA_GEMM_ROWS, fmaEnabled, fmaGemmSimd, gemmSimd, type EmscriptenWasm, type FmaGemmSimdExports, type GemmSimdExports, type SimdKernels } from "./simd/index.js";
import { wasmThreadMinFlops } from "./wasm-threadpool.js";

/**
 * Whether fitloop's GEMM takes a product of `flops` (else XNNPACK): below the thread gate's size
 * always (XNNPACK repacks its right operand, new at every training step); from it when fitloop's
 * kernel threads run (its split packed GEMM: 1.4-2.8x XNNPACK on its 2 threads) or when XNNPACK has
 * no threads either (one thread each: 1.3-2.1x). Only XNNPACK on its pool against fitloop's GEMM on
 * the calling thread keeps XNNPACK (0.72-0.89x but for a transposed A). docs/journal.md, round 9b.
 */
export function ownGemmTakes(flops: number, gateFlops: number, kernelThreads: boolean, xnnpackThreads: number): boolean {
  return flops < gateFlops || kernelThreads || xnnpackThreads < 2;
}

/** XNNPACK's threads in tfjs-wasm (1 in the single-threaded builds, or when tfjs does not say). */
function xnnpackThreads(wasm: EmscriptenWasm): number {
  const count = (wasm as { tfjs?: { getThreadsCount?: () => number } }).tfjs?.getThreadsCount?.();
  return typeof count === "number" && count > 0 ? count : 1;
}

/**
 * fitloop's SIMD GEMM for a product of `flops`, or undefined (XNNPACK) where `ownGemmTakes` says
 * no; undefined without WebAssembly SIMD.
 */
export function ownGemm(wasm: EmscriptenWasm, flops: number): SimdKernels<GemmSimdExports> | undefined {
  const gemm = gemmSimd(wasm);
  const gate = wasmThreadMinFlops();
  return gemm && (flops < gate || ownGemmTakes(flops, gate, !!poolFor(gemm.memory), xnnpackThreads(wasm))) ? gemm : undefined;
}

/**
 * Largest patches of one image (4*outH*outW*fh*fw*ci bytes) that `convImages` takes: each part of
 * the work keeps one image's patches in scratch (the CNN's conv2: 139 KiB, in L2 beside the packed
 * operand); larger images take the whole-batch paths. The same cap for the input and filter gradients' cols and patches.
 */
export const CONV_IMAGES_MAX_PATCH_BYTES = 1024 * 1024;

let convImages = true;
/**
 * Turns the image-by-image convolution kernels (`convImages`, `col2imImages`, `filterGradImages`:
 * forward, input and filter gradients with one image's patches or cols in a cache-resident scratch)
 * on (default) or off (whole-batch im2col / col2im + one GEMM, as before round 11; the Winograd
 * convolutions are off with them); for benches and tests.
 */
export function setConvImagesEnabled(on: boolean): void {
  convImages = on;
}
/** Whether the image-by-image convolution kernels run (see `setConvImagesEnabled`). */
export const convImagesEnabled = (): boolean => convImages;

/**
 * Whether an image-by-image convolution kernel takes a call whose per-part scratch holds
 * `imageBytes` of one image's patches or columns and `packedBytes` of the packed right operand: on
 * (`setConvImagesEnabled`), with the packed GEMM on (`setPackedGemmEnabled(false)` means the round-5
 * kernel everywhere), and both within CONV_IMAGES_MAX_PATCH_BYTES (every part keeps its own copy).
 */
export function convImagesApplies(imageBytes: number, packedBytes: number): boolean {
  return convImages && packed && imageBytes <= CONV_IMAGES_MAX_PATCH_BYTES && packedBytes <= CONV_IMAGES_MAX_PATCH_BYTES;
}

/** `gemm.wat`'s packed GEMM (round 9); `simd/index.ts`'s `GemmSimdExports` lists the older exports. */
export interface PackedGemmExports {
  /**
   * C = A·B with B packed per call into 8-column panels (5x8 tiles): A(m, k) at pa + m*ars + k*aks,
   * B(k, n) at pb + k*bks + n*bns, C(m, n) at pc + m*ldc + 4n; K blocks of kc rows (0: one block);
   * scratch: `packedScratchBytes(n, kc)` bytes. Bit for bit `gemm`'s result. bns = 0: B already
   * packed at pb (panel p at pb + p*K*32, its row k at + k*32; one K block, 256 bytes of scratch).
   */
  gemmPacked(pa: number, ars: number, aks: number, pb: number, bks: number, bns: number, pc: number, ldc: number, m: number, n: number, k: number, kc: number, scratch: number): void;
}

/** `gemm.wat`'s (and gemm-fma.wat's) image-by-image convolution kernels (see the .wat). */
export interface ConvImagesExports {
  convImages(
    x: number, out: number, images: number, inH: number, inW: number, ci: number, outH: number, outW: number, fh: number, fw: number,
    sh: number, sw: number, dh: number, dw: number, top: number, left: number, w: number, co: number, bias: number, relu: number, scratch: number,
  ): void;
  /** The input gradient image by image: cols = dy_image · Wᵀ into scratch, then col2im into dx (see the .wat). */
  col2imImages(
    dy: number, dx: number, images: number, inH: number, inW: number, ci: number, outH: number, outW: number, fh: number, fw: number,
    sh: number, sw: number, top: number, left: number, w: number, co: number, gemmBytes: number, scratch: number,
  ): void;
  /** The filter gradient image by image: dw (+)= patches_imageᵀ · dy_image over the images (see the .wat). */
  filterGradImages(
    x: number, dy: number, dw: number, images: number, inH: number, inW: number, ci: number, outH: number, outW: number, fh: number, fw: number,
    sh: number, sw: number, dh: number, dwid: number, top: number, left: number, co: number, accIn: number, scratch: number,
  ): void;
}

type Gemm = SimdKernels<GemmSimdExports>;
const packedExports = (gemm: Gemm): GemmSimdExports & PackedGemmExports => gemm.exports as GemmSimdExports & PackedGemmExports;

let packed = true;
/**
 * Whether `splitGemm` runs the packed GEMM (`gemmPacked`, default) or the round-5 kernel (`gemm`,
 * with a transposed B copied first); both give the same bits. Off, the image-by-image and Winograd
 * convolutions (built on the packed GEMM) are off too. For benches and tests.
 */
export function setPackedGemmEnabled(on: boolean): void {
  packed = on;
}
export const packedGemmEnabled = (): boolean => packed;

/**
 * With a row-major B, fewer rows of C than this (or fewer than 8 columns) run the round-5 kernel,
 * which reads B in place: packing costs a pass over B (~0.15 ns per float here), which the packed
 * kernel's faster tiles (~58 vs ~50 GFLOP/s on one thread) repay only from ~24-32 rows (9, 12, 16
 * rows: 0.8-0.95x; 24, 32: 0.99-1.04x; 64: 1.1x), and its 8-column panels waste most of their
 * work on 1-4 columns (0.76x; docs/journal.md, round 9). A transposed B always takes the packed
 * kernel (the round-5 path copies it transposed first: 2-8x slower).
 */
export const PACKED_MIN_ROWS = 24;

/** Floats of packed B per K block: 64 Ki (256 KiB, in L2 while the row tiles pass over it). */
const PACKED_BLOCK_FLOATS = 65536;
/** At most this many rows of B per K block: a panel (kc x 8 floats) stays within 16 KiB of L1. */
const PACKED_MAX_KC = 512;

const roundUp8 = (n: number): number => Math.ceil(n / 8) * 8;

/** The K block of the packed GEMM for N columns and depth K (all of K while it fits). */
export function packedKc(n: number, k: number): number {
  return Math.max(1, Math.min(k, PACKED_MAX_KC, Math.max(16, Math.floor(PACKED_BLOCK_FLOATS / roundUp8(n)))));
}

/** Scratch bytes of one `gemmPacked` call (gemm.wat's or gemm-fma.wat's): the 5x8 or 6x8 edge tile (256 bytes) and kc x ceil(N/8)*8 floats of packed B. */
export function packedScratchBytes(n: number, kc: number): number {
  return 256 + 4 * kc * roundUp8(n);
}

/**
 * C = A·B on fitloop's SIMD GEMM (`simd/gemm.wat`), split over fitloop's kernel threads
 * (`kernel-threads.ts`) when a pool runs and the product is at least `minFlops`: along the rows of C
 * when M >= N (each part reads all of B, its own rows of A), else along its columns in multiples of
 * 8 (each part reads all of A, its own columns of B). Every element of C is computed by one call with
 * the same k order, so the result is bit-identical to one call. Pointers and strides in bytes:
 * A(m, k) at pa + m*ars + k*aks, B(k, n) at pb + k*ldb + n*bns (bns defaults to 4, a row-major B;
 * a transposed B is ldb = 4, bns = 4K), C(m, n) at pc + m*ldc + 4n.
 *
 * The packed kernel (`gemmPacked`: from PACKED_MIN_ROWS rows and 8 columns, and for any transposed
 * B) packs B itself, per part (a part of a row split packs all of B, one of a column split its own
 * columns), into scratch from `_malloc`; the round-5 kernel (`gemm`: fewer rows or columns, or
 * `setPackedGemmEnabled(false)`) reads a row-major B in place and, for a transposed B, first copies
 * it transposed into scratch. Both give the same bits.
 *
 * With FMA on (`setFmaEnabled(true)`, where relaxed SIMD validates: `fmaActive()`), the packed
 * kernel is `simd/gemm-fma.wat`'s (6x8 tiles, `f32x4.relaxed_madd`: C differs from the mul + add
 * kernels' in the last bits, still the same bits split or not; row splits at multiples of 6); the
 * round-5 kernel (small M or N) is unchanged.
 */
export interface GemmOperands {
  pa: number;
  ars: number;
  aks: number;
  pb: number;
  ldb: number;
  /** Bytes between columns of B; default 4 (row-major). */
  bns?: number;
  pc: number;
  ldc: number;
  m: number;
  n: number;
  k: number;
}

/**
 * Below this many FLOPs one call on the calling thread: a dispatch costs ~10-30 us, a 4 MFLOP GEMM
 * ~0.12 ms (docs/journal.md, round 8).
 */
export const DEFAULT_SPLIT_GEMM_MIN_FLOPS = 4e6;

let splitMinFlops = DEFAULT_SPLIT_GEMM_MIN_FLOPS;
/** The size from which `splitGemm` splits a product over the kernel threads (default `DEFAULT_SPLIT_GEMM_MIN_FLOPS`); for benches and tests. */
export function setSplitGemmMinFlops(flops: number): void {
  if (!(flops >= 0)) throw new RangeError(`setSplitGemmMinFlops: flops must be a number >= 0, got ${flops}`);
  splitMinFlops = flops;
}
export const splitGemmMinFlops = (): number => splitMinFlops;

function alloc(gemm: Gemm, bytes: number, what: string): number {
  const p = gemm.malloc(bytes);
  if (!p) throw new Error(`fitloop wasm GEMM: could not allocate ${bytes} bytes for ${what}`);
  return p;
}

/** Runs the GEMM, split over the kernel threads where that pays; returns the number of parts. */
export function splitGemm(gemm: Gemm, o: GemmOperands, minFlops = splitMinFlops): number {
  const { m, n, k } = o;
  const bns = o.bns ?? 4;
  const p = poolFor(gemm.memory);
  const pool = p && 2 * m * n * k >= minFlops ? p : undefined;
  const byRows = m >= n;
  if (packed && (bns !== 4 || (m >= PACKED_MIN_ROWS && n >= 8))) return splitPacked(gemm, o, bns, pool, byRows);
  // the round-5 kernel: B row-major, a transposed B copied first
  let { pb, ldb } = o;
  let scratch = 0;
  if (bns !== 4) {
    if (ldb !== 4 || bns !== 4 * k) throw new Error(`fitloop wasm GEMM: B strides (${ldb}, ${bns}) are neither row-major nor a contiguous transpose`);
    if (k > 0) {
      scratch = alloc(gemm, 4 * k * n, "the transposed right operand");
      gemm.exports.transpose(pb, n, k, scratch);
    }
    [pb, ldb] = [scratch, 4 * n];
  }
  try {
    return splitOld(gemm, { ...o, pb, ldb }, pool, byRows);
  } finally {
    if (scratch) gemm.free(scratch);
  }
}

function splitOld(gemm: Gemm, o: GemmOperands, pool: KernelThreadPool | undefined, byRows: boolean): number {
  const { pa, ars, aks, pb, ldb, pc, ldc, m, n, k } = o;
  const whole = (): void => gemm.exports.gemm(pa, ars, aks, pb, ldb, pc, ldc, m, n, k);
  const parts = pool ? planParts(gemm.memory, byRows ? m : n, { align: byRows ? 4 : 8, bytes: Infinity }) : [];
  if (!pool || parts.length <= 1) {
    whole();
    return 1;
  }
  const calls: KernelCall[] = parts.map(([start, count]) => ({
    module: "gemm",
    fn: "gemm",
    args: byRows
      ? [pa + start * ars, ars, aks, pb, ldb, pc + start * ldc, ldc, count, n, k]
      : [pa, ars, aks, pb + 4 * start, ldb, pc + 4 * start, ldc, m, count, k],
  }));
  pool.run(calls);
  return parts.length;
}

/** The FMA packed GEMM (`simd/gemm-fma.wat`) on `gemm`'s memory while FMA is requested and runs there, else undefined. */
const fmaByGemm = new WeakMap<Gemm, FmaGemmSimdExports>();
function fmaGemmOf(gemm: Gemm): FmaGemmSimdExports | undefined {
  if (!fmaEnabled()) return undefined;
  let fma = fmaByGemm.get(gemm);
  if (!fma) {
    fma = fmaGemmSimd({ wasmMemory: gemm.memory, _malloc: (n) => gemm.malloc(n), _free: (p) => gemm.free(p) })?.exports;
    if (fma) fmaByGemm.set(gemm, fma); // where relaxed SIMD does not validate: asked again, cheaply (fmaGemmSimd checks first)
  }
  return fma;
}

/** The kernel-thread function of the FMA GEMM (`node/kernel-threads.ts` compiles its module while FMA is on). */
const FMA_GEMM_FN = "gemm-fma.gemmPacked";
const poolHas = (pool: KernelThreadPool, fn: string): boolean => (pool as KernelThreadPool & { has?: (fn: string) => boolean }).has?.(fn) === true;

/**
 * Whether `splitGemm`'s packed GEMM runs relaxed-SIMD FMA (`simd/gemm-fma.wat`) on this tfjs-wasm
 * module (default: the registered wasm backend's): FMA requested (`setFmaEnabled(true)` or
 * `useWasm({ fma: true })`), relaxed SIMD validated and the module instantiated on its memory.
 * False where it does not validate (then the mul + add GEMM runs), or without a wasm backend.
 */
export function fmaActive(wasm?: EmscriptenWasm): boolean {
  if (!fmaEnabled()) return false;
  const w = wasm ?? (tf.engine().registry["wasm"] as unknown as { wasm?: EmscriptenWasm } | undefined)?.wasm;
  return !!w && !!gemmSimd(w) && !!fmaGemmSimd(w);
}

/**
 * The packed GEMM's module for work on `gemm`'s memory: gemm-fma.wat's while FMA runs (with `pool`
 * only if the pool loaded that module; else the work stays on the calling thread, the same bits),
 * otherwise gemm.wat's. Both export `gemmPacked` and `convImages`.
 */
export function packedGemmModule(gemm: Gemm, pool: KernelThreadPool | undefined): { module: "gemm" | "gemm-fma"; exports: PackedGemmExports & ConvImagesExports; pool: KernelThreadPool | undefined } {
  const fma = fmaGemmOf(gemm);
  if (!fma) return { module: "gemm", exports: gemm.exports as unknown as PackedGemmExports & ConvImagesExports, pool };
  return { module: "gemm-fma", exports: fma as unknown as PackedGemmExports & ConvImagesExports, pool: pool && poolHas(pool, FMA_GEMM_FN) ? pool : undefined };
}

/** Functions of the packed GEMM's module that `runPackedParts` runs (gemm.wat and gemm-fma.wat export them). */
export type PackedPartsFn = keyof ConvImagesExports | "filterGradMasked" | "gemmPacked" | "winogradImages" | "winogradInputGradImages" | "winogradFilterGradImages";

/**
 * Runs `fn` of the packed GEMM's module (`packedGemmModule`: FMA or not) over `count` items (images,
 * pixels) cut into parts: on the kernel threads when a pool runs (`chunksPerThread` parts per thread,
 * 1: one per thread), else one call on this thread. Each part gets its own `perPart` bytes of scratch
 * (64-aligned, `stride` bytes apart); `args(start, count, part, scratch)` are the call's arguments;
 * `done(scratch, parts, stride)` reads what the parts left in their scratch (partial sums) before it
 * is freed. Returns the number of parts.
 */
export function runPackedParts(
  gemm: Gemm,
  fn: PackedPartsFn,
  count: number,
  perPart: number,
  chunksPerThread: number,
  args: (start: number, count: number, part: number, scratch: number) => number[],
  done?: (scratch: number, parts: number, stride: number) => void,
): number {
  const { module, exports, pool } = packedGemmModule(gemm, poolFor(gemm.memory));
  const parts = pool ? planParts(gemm.memory, count, { align: 1, bytes: Infinity, chunksPerThread }) : [[0, count] as [number, number]];
  const bytes = Math.ceil(perPart / 64) * 64;
  const scratch = alloc(gemm, bytes * parts.length + 64, `the scratch of ${fn}`);
  try {
    const base = Math.ceil(scratch / 64) * 64;
    if (pool && parts.length > 1) runPoolTasks(pool, parts.map(([start, n], i) => ({ module, fn, args: args(start, n, i, base + i * bytes) })));
    else (exports as unknown as Record<PackedPartsFn, (...a: number[]) => void>)[fn](...args(0, count, 0, base));
    done?.(base, parts.length, bytes);
    return parts.length;
  } finally {
    gemm.free(scratch);
  }
}

/**
 * dst += the partial sums of parts 1..parts-1 (each `rows` x `cols` floats, row-major, at
 * scratch + part * stride), in part order; dst's rows are `dstRow` floats apart (default `cols`).
 */
export function addPartials(memory: WebAssembly.Memory, dst: number, scratch: number, parts: number, stride: number, cols: number, rows = 1, dstRow = cols): void {
  const heap = new Float32Array(memory.buffer);
  for (let part = 1; part < parts; part++) {
    const q = (scratch + part * stride) / 4;
    for (let r = 0; r < rows; r++) {
      const [o, s] = [dst / 4 + r * dstRow, q + r * cols];
      for (let i = 0; i < cols; i++) heap[o + i] = heap[o + i]! + heap[s + i]!;
    }
  }
}

/** One packed GEMM planned: its scratch, and its parts as kernel-thread calls (none: one call on the caller). */
interface PackedJob {
  scratchBytes: number;
  /** The parts' calls with scratch at `scratch`, or undefined when it runs whole. */
  calls(scratch: number): KernelCall[] | undefined;
  whole(scratch: number): void;
}

function packedJob(gemm: Gemm, o: GemmOperands, bns: number, pool: KernelThreadPool | undefined, byRows: boolean): PackedJob {
  const { pa, ars, aks, pb, ldb, pc, ldc, m, n, k } = o;
  const fma = fmaGemmOf(gemm);
  // a pool started before FMA was turned on lacks its module: FMA then runs on the calling thread
  // (the same bits as split: every element is one chain over k)
  if (fma && pool && !poolHas(pool, FMA_GEMM_FN)) pool = undefined;
  // parts of a row split at multiples of the row tile (5, or the FMA module's 6; each part ends in 4-row tiles as needed)
  const parts = pool ? planParts(gemm.memory, byRows ? m : n, { align: byRows ? (fma ? FMA_GEMM_ROWS : 5) : 8, bytes: Infinity }) : [];
  const partN = (count: number): number => (byRows ? n : count);
  const cols = parts.length > 1 ? parts.map(([, count]) => partN(count)) : [n];
  const kc = packedKc(Math.max(...cols), k);
  const perPart = Math.ceil(packedScratchBytes(Math.max(...cols), kc) / 64) * 64;
  return {
    scratchBytes: perPart * cols.length,
    calls: (scratch) =>
      parts.length <= 1
        ? undefined
        : parts.map(([start, count], i) => ({
            module: fma ? "gemm-fma" : "gemm",
            fn: "gemmPacked",
            args: byRows
              ? [pa + start * ars, ars, aks, pb, ldb, bns, pc + start * ldc, ldc, count, n, k, kc, scratch + i * perPart]
              : [pa, ars, aks, pb + start * bns, ldb, bns, pc + 4 * start, ldc, m, count, k, kc, scratch + i * perPart],
          })),
    whole: (scratch) => (fma ?? packedExports(gemm)).gemmPacked(pa, ars, aks, pb, ldb, bns, pc, ldc, m, n, k, kc, scratch),
  };
}

function splitPacked(gemm: Gemm, o: GemmOperands, bns: number, pool: KernelThreadPool | undefined, byRows: boolean): number {
  const job = packedJob(gemm, o, bns, pool, byRows);
  const scratch = alloc(gemm, job.scratchBytes, "the packed right operand");
  try {
    const calls = job.calls(scratch);
    if (!pool || !calls) {
      job.whole(scratch);
      return 1;
    }
    pool.run(calls);
    return calls.length;
  } finally {
    gemm.free(scratch);
  }
}

/**
 * C = A·B with K split over the kernel threads: each part sums its own range of k into its own C
 * (part 0 into C, the others into scratch), then the partial products are added to C in part order.
 * For a small C from a long K (a first conv layer's filter gradient: 9x32 from 43,264 pixels),
 * where a split by rows or columns makes every thread stream all of A or of B. The sums are regrouped
 * (not `splitGemm`'s bits), the same for a given number of parts. Without a pool: `splitGemm`.
 */
export function splitGemmDepth(gemm: Gemm, o: GemmOperands): number {
  const { pa, ars, aks, pb, ldb, pc, ldc, m, n, k } = o;
  const bns = o.bns ?? 4;
  const pool = poolFor(gemm.memory);
  const parts = pool && packed && 2 * m * n * k >= splitMinFlops ? planParts(gemm.memory, k, { align: 1, bytes: Infinity }) : [];
  if (parts.length <= 1) return splitGemm(gemm, o);
  // each part's scratch: its partial C (part 0 sums into C itself), then the packed GEMM's scratch
  const kc = packedKc(n, Math.max(...parts.map(([, count]) => count)));
  const partial = Math.ceil((4 * m * n) / 64) * 64;
  return runPackedParts(
    gemm,
    "gemmPacked",
    k,
    partial + packedScratchBytes(n, kc),
    1,
    (start, count, part, scratch) => [pa + start * aks, ars, aks, pb + start * ldb, ldb, bns, part === 0 ? pc : scratch, part === 0 ? ldc : 4 * n, m, n, count, kc, scratch + partial],
    (scratch, done, stride) => addPartials(gemm.memory, pc, scratch, done, stride, n, m, ldc / 4),
  );
}

/**
 * Several independent GEMMs (disjoint outputs) as one kernel-thread job when each takes the packed
 * kernel and splits: one wake-up of the workers instead of one per product (a dense layer's weight
 * and input gradients). Otherwise each runs through `splitGemm`. Same bits either way.
 */
export function splitGemms(gemm: Gemm, ops: readonly GemmOperands[], minFlops = splitMinFlops): void {
  const p = poolFor(gemm.memory);
  const together =
    packed && p !== undefined && ops.length > 1 && ops.every((o) => 2 * o.m * o.n * o.k >= minFlops && ((o.bns ?? 4) !== 4 || (o.m >= PACKED_MIN_ROWS && o.n >= 8)));
  if (!together) {
    for (const o of ops) splitGemm(gemm, o, minFlops);
    return;
  }
  const jobs = ops.map((o) => packedJob(gemm, o, o.bns ?? 4, p, o.m >= o.n));
  const offsets: number[] = [];
  let bytes = 0;
  for (const j of jobs) {
    offsets.push(bytes);
    bytes += Math.ceil(j.scratchBytes / 64) * 64;
  }
  const scratch = alloc(gemm, bytes, "the packed right operands");
  try {
    const calls: KernelCall[] = [];
    jobs.forEach((j, i) => {
      const own = j.calls(scratch + offsets[i]!);
      if (own) calls.push(...own);
      else j.whole(scratch + offsets[i]!);
    });
    runPoolTasks(p, calls);
  } finally {
    gemm.free(scratch);
  }
}

