import type { Rng } from "@fitloop/core";

/**
 * Fills `out` with N(0, std²) draws (see `addNormal`). Same `rng` state, same values.
 */
export function fillNormal(rng: Rng, out: Float32Array, std = 1): Float32Array {
  out.fill(0);
  return addNormal(rng, out, std);
}

/**
 * `out[k] += N(0, std²)` for every k, clipped to `[lo, hi]`: the hot loop of gaussian-noise
 * augmentation (~50,000 draws per MNIST batch).
 *
 * An exact 256-layer ziggurat (Marsaglia & Tsang 2000) on 32-bit words of an inlined
 * xoroshiro64** generator (Blackman & Vigna), seeded from two words of `rng`. Each word gives the
 * layer (8 bits), the sign (1 bit) and, independently of both, a 23-bit magnitude: a float32
 * result cannot resolve more. ~98.5 % of draws take the fast path: two table reads, an integer
 * compare and two multiplies, in int32 and float64 registers. The rest (wedges, and the tail beyond
 * 3.654) are queued during the fast loop and finished after it, on the same stream, so the
 * fast loop makes no calls. Same `rng` state, same values: the fast path is plain IEEE-754
 * arithmetic; the rare slow path uses `Math.exp` and `Math.log`, as the previous version did.
 */
export function addNormal(rng: Rng, out: Float32Array, std: number, lo = -Infinity, hi = Infinity): Float32Array {
  ZIG_STATE[0] = rng.nextUint32() | 0;
  ZIG_STATE[1] = rng.nextUint32() | 0;
  if ((ZIG_STATE[0]! | ZIG_STATE[1]!) === 0) ZIG_STATE[0] = 1; // xoroshiro's one forbidden state
  // The branch-free clamp needs two finite bounds; a one-sided clip is clamped afterwards.
  const clip = lo > -Infinity && hi < Infinity;
  ZIG_ARGS[0] = std;
  ZIG_ARGS[1] = clip ? lo : 0;
  ZIG_ARGS[2] = clip ? hi : 0;
  const n = out.length;
  // Chunk by chunk through a staging buffer: see ZIG_BUF.
  for (let from = 0; from < n; from += ZIG_CHUNK) {
    const len = Math.min(ZIG_CHUNK, n - from);
    const buf = len === ZIG_CHUNK ? ZIG_BUF : ZIG_BUF.subarray(0, len);
    buf.set(out.subarray(from, from + len));
    const np = clip ? zigAddClipped(len) : zigAdd(len);
    if (np > 0) finishSlow(np, std, lo, hi, clip);
    out.set(buf, from);
  }
  if (!clip && (lo > -Infinity || hi < Infinity)) for (let k = 0; k < n; k++) out[k] = Math.min(Math.max(out[k]!, lo), hi);
  return out;
}

/** `v` clamped to finite `[lo, hi]` without branches (as in `zigAddClipped`); exact at both bounds. */
function clamp(v: number, lo: number, hi: number): number {
  const below = v - lo;
  const x = lo + 0.5 * (below + Math.abs(below)); // max(v, lo)
  const above = hi - x;
  return hi - 0.5 * (above + Math.abs(above)); // min(x, hi)
}

const ZIG_CHUNK = 4096;
const ZIG_R = 3.6541528853610088; // start of the tail
const ZIG_V = 4.92867323399e-3; // area of each layer
const ZIG_MAG = 8388608; // 2^23: magnitudes are 23-bit integers

// The tables as module-level constants: V8 embeds their addresses in the kernels instead of
// reloading and checking them on every draw.
const { kn: ZIG_KN, wn: ZIG_WN, fn: ZIG_FN } = zigguratTables();
/**
 * The kernels work on this staging buffer, a chunk at a time (memcpy in and out costs ~2 % of the
 * kernel). As a module constant its address, type and length are known to V8, which then drops
 * the per-draw map, bounds and backing-store checks of a `Float32Array` parameter: ~10 % faster.
 * Short chunks also let V8 optimise the kernels as normal (non-OSR) functions early on.
 */
const ZIG_BUF = new Float32Array(ZIG_CHUNK);
/** The generator's state (two int32 words), shared by the kernels and the slow path. */
const ZIG_STATE = new Int32Array(2);
/**
 * The kernels' scalars `[std, lo, hi]`. Read from here they are float64 from the start; as
 * parameters V8 would re-check on every draw whether they are small integers or heap numbers.
 */
const ZIG_ARGS = new Float64Array(3);
/** Slow draws of the current chunk, as (index, word) pairs. */
const ZIG_PENDING = new Int32Array(2 * ZIG_CHUNK);

/**
 * The 256-layer ziggurat for the normal density exp(-x²/2) (computed once, at load; exported for
 * tests). Layer i >= 1 is the rectangle [0, x[i]] x [f[i], f[i-1]], layer 0 the base strip [0, R] x
 * [0, f(R)] plus the tail beyond R, all of area V. Indexed by `sign << 8 | layer`:
 * - `kn`: the fast path accepts a 23-bit magnitude u when `u < kn` (the point then lies under the
 *   layer above, x < x[i-1], so under the curve);
 * - `wn`: signed width / 2^23, the fast path returns `u * wn`.
 * Indexed by layer: `x` (right edges, x[0] = 0, x[255] = R) and `fn` = exp(-x²/2) at them.
 */
export function zigguratTables(): { x: Float64Array; fn: Float64Array; kn: Int32Array; wn: Float64Array } {
  const x = new Float64Array(256);
  const fn = new Float64Array(256);
  const kn = new Int32Array(512);
  const wn = new Float64Array(512);
  x[255] = ZIG_R;
  for (let i = 255; i >= 2; i--) x[i - 1] = Math.sqrt(-2 * Math.log(ZIG_V / x[i]! + Math.exp(-0.5 * x[i]! * x[i]!)));
  fn[0] = 1;
  for (let i = 1; i < 256; i++) fn[i] = Math.exp(-0.5 * x[i]! * x[i]!);
  // Layer 0 (base strip and tail) is sampled as one rectangle of area V and width q.
  const q = ZIG_V / Math.exp(-0.5 * ZIG_R * ZIG_R);
  for (let i = 0; i < 256; i++) {
    const width = i === 0 ? q : x[i]!;
    const inner = i === 0 ? ZIG_R : x[i - 1]!;
    kn[i] = kn[i + 256] = Math.floor((inner / width) * ZIG_MAG);
    wn[i] = width / ZIG_MAG;
    wn[i + 256] = -wn[i]!;
  }
  return { x, fn, kn, wn };
}

// The two kernels below differ only in the clamp. Each 32-bit word r of xoroshiro64** (Blackman &
// Vigna 2018: two words of state, the ** scrambler, no known statistical failures) gives the table
// index j = r & 511 (sign and layer) and the magnitude u = r >>> 9. Draws the fast path cannot take
// are queued in ZIG_PENDING as (k, r) for `zigguratSlow`; each returns the queue's length.

function zigAdd(len: number): number {
  const std = ZIG_ARGS[0]!;
  let s0 = ZIG_STATE[0]!;
  let s1 = ZIG_STATE[1]!;
  let np = 0;
  for (let k = 0; k < len; k++) {
    const m = Math.imul(s0, 0x9e3779bb);
    const r = Math.imul((m << 5) | (m >>> 27), 5);
    s1 ^= s0;
    s0 = ((s0 << 26) | (s0 >>> 6)) ^ s1 ^ (s1 << 9);
    s1 = (s1 << 13) | (s1 >>> 19);
    const j = r & 511;
    const u = r >>> 9;
    if (u < ZIG_KN[j]!) {
      ZIG_BUF[k] = ZIG_BUF[k]! + u * ZIG_WN[j]! * std;
    } else {
      ZIG_PENDING[np++] = k;
      ZIG_PENDING[np++] = r;
    }
  }
  ZIG_STATE[0] = s0;
  ZIG_STATE[1] = s1;
  return np;
}

function zigAddClipped(len: number): number {
  const std = ZIG_ARGS[0]!;
  const lo = ZIG_ARGS[1]!;
  const hi = ZIG_ARGS[2]!;
  let s0 = ZIG_STATE[0]!;
  let s1 = ZIG_STATE[1]!;
  let np = 0;
  for (let k = 0; k < len; k++) {
    const m = Math.imul(s0, 0x9e3779bb);
    const r = Math.imul((m << 5) | (m >>> 27), 5);
    s1 ^= s0;
    s0 = ((s0 << 26) | (s0 >>> 6)) ^ s1 ^ (s1 << 9);
    s1 = (s1 << 13) | (s1 >>> 19);
    const j = r & 511;
    const u = r >>> 9;
    if (u < ZIG_KN[j]!) {
      // clamp(v, lo, hi) inlined. Branch-free: on an image's background (0) the sign of the noise
      // is a coin flip the CPU cannot predict, and a mispredicted branch costs more than the draw.
      const v = ZIG_BUF[k]! + u * ZIG_WN[j]! * std;
      const below = v - lo;
      const x = lo + 0.5 * (below + Math.abs(below));
      const above = hi - x;
      ZIG_BUF[k] = hi - 0.5 * (above + Math.abs(above));
    } else {
      ZIG_PENDING[np++] = k;
      ZIG_PENDING[np++] = r;
    }
  }
  ZIG_STATE[0] = s0;
  ZIG_STATE[1] = s1;
  return np;
}

/** Adds the queued slow draws of a chunk (in queue order, so the stream is consumed reproducibly). */
function finishSlow(np: number, std: number, lo: number, hi: number, clip: boolean): void {
  for (let p = 0; p < np; p += 2) {
    const k = ZIG_PENDING[p]!;
    const word = ZIG_PENDING[p + 1]!;
    const v = ZIG_BUF[k]! + zigguratSlow(word >>> 9, word & 511) * std;
    ZIG_BUF[k] = clip ? clamp(v, lo, hi) : v;
  }
}

/**
 * A draw the fast path rejected (magnitude `u`, index `j` = sign << 8 | layer): the wedge test of
 * its layer or, for layer 0, a draw from the tail beyond R (Marsaglia & Tsang's `nfix`); a rejected
 * wedge point starts over with a fresh word. Uniforms and fresh words continue the kernels' stream.
 */
function zigguratSlow(u: number, j: number): number {
  for (;;) {
    const layer = j & 255;
    const sign = j & 256 ? -1 : 1;
    if (layer === 0) {
      let t: number;
      let y: number;
      do {
        t = -Math.log(1 - uniform()) / ZIG_R;
        y = -Math.log(1 - uniform());
      } while (y + y < t * t);
      return sign * (ZIG_R + t);
    }
    const x = u * ZIG_WN[layer]!;
    if (ZIG_FN[layer]! + uniform() * (ZIG_FN[layer - 1]! - ZIG_FN[layer]!) < Math.exp(-0.5 * x * x)) return sign * x;
    const r = nextWord();
    j = r & 511;
    u = r >>> 9;
    if (u < ZIG_KN[j]!) return u * ZIG_WN[j]!;
  }
}

/** The next word of the xoroshiro64** stream (the kernels inline this step). */
function nextWord(): number {
  const s0 = ZIG_STATE[0]!;
  let s1 = ZIG_STATE[1]!;
  const m = Math.imul(s0, 0x9e3779bb);
  s1 ^= s0;
  ZIG_STATE[0] = ((s0 << 26) | (s0 >>> 6)) ^ s1 ^ (s1 << 9);
  ZIG_STATE[1] = (s1 << 13) | (s1 >>> 19);
  return Math.imul((m << 5) | (m >>> 27), 5);
}

/** Uniform in [0, 1) from the next word of the stream. */
function uniform(): number {
  return (nextWord() >>> 0) / 4294967296;
}

/** One N(0, 1) draw (Marsaglia's polar method on `rng`). */
export function normal(rng: Rng): number {
  let u: number;
  let v: number;
  let s: number;
  do {
    u = 2 * rng.next() - 1;
    v = 2 * rng.next() - 1;
    s = u * u + v * v;
  } while (s >= 1 || s === 0);
  return u * Math.sqrt((-2 * Math.log(s)) / s);
}

/** Gamma(shape, 1) by Marsaglia and Tsang (with the boost for shape < 1). */
export function gamma(rng: Rng, shape: number): number {
  if (shape < 1) {
    const u = rng.next();
    return gamma(rng, shape + 1) * Math.pow(u === 0 ? Number.MIN_VALUE : u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Beta(a, b) from two gamma draws (the MixUp / CutMix mixing weight). */
export function beta(rng: Rng, a: number, b: number): number {
  const x = gamma(rng, a);
  const y = gamma(rng, b);
  return x + y === 0 ? 0.5 : x / (x + y);
}

/** A uniformly random permutation of [0, n) (Fisher-Yates). */
export function permutation(rng: Rng, n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
