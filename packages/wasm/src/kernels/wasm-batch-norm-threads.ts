import { planParts, poolFor, splitRows, type KernelCall } from "./kernel-threads.js";
import type { BatchNormSimdExports, SimdKernels } from "./simd/index.js";

/**
 * The fused BatchNorm's SIMD passes (`simd/batch-norm.wat`) over row ranges on fitloop's kernel
 * threads (`kernel-threads.ts`; Node's worker pool), or as one call where there is no pool or the
 * tensor is small. Rows are split at multiples of 4 (the .wat sums 4 rows in float32 before adding
 * to the float64 accumulators, so every group is the same as on one thread); per-channel sums are
 * kept per part and added in part order (float64), then handled exactly as the one-call sums.
 */
type Simd = SimdKernels<BatchNormSimdExports>;

const MODULE = "batch-norm";

/** Scratch for the extra parts' float64 sums: 16*c bytes per part after the first. */
function withPartSums(simd: Simd, parts: number, c: number, body: (ptr: number) => void): void {
  const ptr = simd.malloc(16 * c * (parts - 1));
  if (!ptr) throw new Error("fitloop BatchNorm: wasm malloc failed");
  try {
    body(ptr);
  } finally {
    simd.free(ptr);
  }
}

/** a[k] += b[k] for two float64 [c] vectors at byte offsets (read after the calls: the heap may have grown). */
function addInto(simd: Simd, a: number, b: number, c: number): void {
  const buf = simd.memory.buffer;
  const x = new Float64Array(buf, a, c);
  const y = new Float64Array(buf, b, c);
  for (let k = 0; k < c; k++) x[k] = x[k]! + y[k]!;
}

/**
 * Two per-channel float64 sums (outputs s, q at byte offsets) of `fn` over the rows; `args` builds
 * one part's call from its first row, row count and output pointers.
 */
function splitSums(simd: Simd, rows: number, c: number, bytes: number, s: number, q: number, fn: string, args: (start: number, count: number, s: number, q: number) => number[], whole: () => void): void {
  const parts = planParts(simd.memory, rows, { bytes, align: 4, memoryBound: true });
  const pool = parts.length > 1 ? poolFor(simd.memory) : undefined;
  if (!pool) return whole();
  withPartSums(simd, parts.length, c, (extra) => {
    const out = (i: number): [number, number] => (i === 0 ? [s, q] : [extra + 16 * c * (i - 1), extra + 16 * c * (i - 1) + 8 * c]);
    const calls: KernelCall[] = parts.map(([start, count], i) => ({ module: MODULE, fn, args: args(start, count, ...out(i)) }));
    pool.run(calls);
    for (let i = 1; i < parts.length; i++) {
      const [ps, pq] = out(i);
      addInto(simd, s, ps, c);
      addInto(simd, q, pq, c);
    }
  });
}

/** `stats` (shifted sums, shift = x's first row) over rows [0, rows); s, q: float64 [c]. */
export function bnStats(simd: Simd, x: number, rows: number, c: number, s: number, q: number): void {
  const rb = 4 * c;
  splitSums(simd, rows, c, rows * rb, s, q, "statsShift", (start, count, ps, pq) => [x + start * rb, x, count, c, ps, pq], () => simd.exports.stats(x, rows, c, s, q));
}

/** `gradSums`: sd = sum(dy), sdx = sum(dy * (x - m)); float64 [c]. */
export function bnGradSums(simd: Simd, dy: number, x: number, rows: number, c: number, m: number, sd: number, sdx: number): void {
  const rb = 4 * c;
  splitSums(simd, rows, c, 2 * rows * rb, sd, sdx, "gradSums", (start, count, ps, pq) => [dy + start * rb, x + start * rb, count, c, m, ps, pq], () => simd.exports.gradSums(dy, x, rows, c, m, sd, sdx));
}

/** `normalize`: y = (x - m) * s + b. */
export function bnNormalize(simd: Simd, x: number, y: number, rows: number, c: number, m: number, s: number, b: number): void {
  const rb = 4 * c;
  splitRows(simd.memory, MODULE, "normalize", rows, (start, count) => [x + start * rb, y + start * rb, count, c, m, s, b], () => simd.exports.normalize(x, y, rows, c, m, s, b), { bytes: 2 * rows * rb, memoryBound: true });
}

/** `gradX`: dx = a * dy + bx * (x - m) + k0. */
export function bnGradX(simd: Simd, dy: number, x: number, dx: number, rows: number, c: number, a: number, m: number, bx: number, k0: number): void {
  const rb = 4 * c;
  splitRows(simd.memory, MODULE, "gradX", rows, (start, count) => [dy + start * rb, x + start * rb, dx + start * rb, count, c, a, m, bx, k0], () => simd.exports.gradX(dy, x, dx, rows, c, a, m, bx, k0), {
    bytes: 3 * rows * rb,
    memoryBound: true,
  });
}
