import { WASM_BASE64 } from "./normal.wasm.js";

/**
 * Gaussian noise kernels: `x[k] = clamp(x[k] + N(0, std²), lo, hi)` over one chunk at a time, as
 * WebAssembly SIMD (`normal.wat`, embedded) or, where that is unavailable, as plain JS giving the
 * same bits (`addNormalJs`). Both work on the same memory layout: a chunk of data, the state of
 * four generators, a table and a queue of slow draws, which the scalar slow pass (`finishSlow`, in
 * JS or in the wasm module: the same bits) completes. See `normal.wat` for the algorithm; `addNormal` in `../random.ts` drives it.
 */

/** Elements per kernel call (a multiple of 8: each chunk starts a group of eight). */
export const NORMAL_CHUNK = 4096;
/** xoroshiro128+ generators: element k of a chunk takes a half of generator (k & 7) >> 1 (see normal.wat). */
export const NORMAL_GENERATORS = 4;
const TABLE = 256;
const DATA = 8192;
const QUEUE = 24576;
const MEMORY_BYTES = 65536;
/** Where `workspace` views start in the SIMD kernel's memory (past its tables), and their largest length. */
const WORKSPACE = 83968;
const WORKSPACE_MAX = 1 << 24;

const ZIG_R = 3.6541528853610088; // start of the tail
const ZIG_V = 4.92867323399e-3; // area of each layer
const ZIG_MAG = 8388608; // 2^23: magnitudes are 23-bit integers

/**
 * The 256-layer ziggurat for the normal density exp(-x²/2) (computed once, at load; exported for
 * tests). Layer i >= 1 is the rectangle [0, x[i]] x [f[i], f[i-1]], layer 0 the base strip [0, R] x
 * [0, f(R)] plus the tail beyond R, all of area V. Indexed by `sign << 8 | layer`:
 * - `kn`: the fast path accepts a 23-bit magnitude u when `u < kn` (the point then lies under the
 *   layer above, x < x[i-1], so under the curve);
 * - `wn`: signed width / 2^23, the fast path returns `u * wn` (times std, rounded to float32).
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

// Module-level constants: V8 embeds their addresses in the JS kernel instead of re-checking them per draw.
const { kn: ZIG_KN, wn: ZIG_WN, fn: ZIG_FN } = zigguratTables();

/** One kernel: views on its memory (layout in normal.wat) and its fast pass. */
export interface NormalKernel {
  readonly kind: "simd" | "js";
  /**
   * Generator g's xoroshiro128+ state (g in [0, 4)), as little-endian int32 pairs: s0 = `state[2g]`
   * (low) and `state[2g + 1]` (high), s1 = `state[8 + 2g]` and `state[9 + 2g]`.
   */
  readonly state: Int32Array;
  /** 512 entries of (kn as int32, ws = f32(wn * std) as float32), interleaved. */
  readonly tableI: Int32Array;
  readonly tableF: Float32Array;
  readonly data: Float32Array;
  /**
   * One 12-word entry per group of eight elements with a draw left to `finishSlow`, in k order:
   * the group's eight words, the byte offset 4k of its first element, the accept bits (bit l set:
   * element k + l done), two unused words.
   */
  readonly queue: Int32Array;
  /** The std the table is scaled for (NaN: none yet). */
  std: number;
  /**
   * The fast pass over n values at byte `ptr` of the kernel's memory (`DATA_PTR`: `data`; the JS
   * twin has only that), in whole groups of eight: the values past n up to the next multiple of 8
   * are overwritten too (only `data` may be passed such an n); returns the number of queue entries.
   */
  run(ptr: number, n: number, lo: number, hi: number): number;
  /** The slow pass over the queue's `entries` (see `finishSlow`): in the wasm module or in JS, the same bits. */
  finish(ptr: number, entries: number, n: number, std: number, lo: number, hi: number): void;
  /**
   * A view of `length` float32 in the kernel's own memory (the same one every call while the
   * length stays, grown as needed), or undefined: `addNormal` on (part of) it works in place,
   * without copying chunks in and out. The SIMD kernel only. Contents are only kept until the
   * next `workspace` call (growing the memory detaches the previous view).
   */
  workspace?(length: number): Float32Array | undefined;
}

/** Byte offset of `data` in a kernel's memory. */
export const DATA_PTR = DATA;

function views(buffer: ArrayBuffer): Pick<NormalKernel, "state" | "tableI" | "tableF" | "data" | "queue"> {
  const tableI = new Int32Array(buffer, TABLE, 1024);
  for (let j = 0; j < 512; j++) tableI[2 * j] = ZIG_KN[j]!;
  return {
    state: new Int32Array(buffer, 0, 4 * NORMAL_GENERATORS),
    tableI,
    tableF: new Float32Array(buffer, TABLE, 1024),
    data: new Float32Array(buffer, DATA, NORMAL_CHUNK),
    queue: new Int32Array(buffer, QUEUE, (12 * NORMAL_CHUNK) / 8), // NORMAL_CHUNK / 8 entries of 12 words
  };
}

// ---- The plain-JS twin of normal.wat: the four 64-bit generators emulated on int32 pairs, the
// eight lanes of a group in order, float32 rounding by Math.fround (u * ws is exact in float64, and
// float64 holds more than twice float32's precision, so rounding the float64 sum to float32 gives
// the correctly rounded float32 sum: the same bits), pmax / pmin as the comparisons they are
// defined by.

const JS_MEMORY = new ArrayBuffer(MEMORY_BYTES);
const JS_VIEWS = views(JS_MEMORY);
const JS_STATE = JS_VIEWS.state;
const JS_DATA = JS_VIEWS.data;
const JS_QUEUE = JS_VIEWS.queue;
const JS_WS = new Float32Array(512);

export const jsKernel: NormalKernel = {
  kind: "js",
  ...JS_VIEWS,
  std: NaN,
  run: (_ptr, n, lo, hi) => addNormalJs(n, lo, hi),
  finish: (_ptr, entries, n, std, lo, hi) => finishSlow(jsKernel, entries, n, std, lo, hi),
};

/** Scales the table for `std` (when it changed since the last call). */
export function setStd(kernel: NormalKernel, std: number): void {
  if (Object.is(kernel.std, std)) return;
  for (let j = 0; j < 512; j++) kernel.tableF[2 * j + 1] = ZIG_WN[j]! * std;
  if (kernel === jsKernel) for (let j = 0; j < 512; j++) JS_WS[j] = kernel.tableF[2 * j + 1]!;
  kernel.std = std;
}

/** The fast path of one lane's word `r` for element k: 1 when done, 0 when left to the slow pass. */
function fastJs(k: number, r: number, lo: number, hi: number): number {
  const j = r >>> 23;
  const u = r & 0x7fffff;
  if (u >= ZIG_KN[j]!) return 0;
  const v = Math.fround(JS_DATA[k]! + Math.fround(u * JS_WS[j]!));
  const w = v < lo ? lo : v;
  JS_DATA[k] = hi < w ? hi : w;
  return 1;
}

/** The words of a chunk, by element (the JS twin draws them generator by generator first). */
const JS_WORDS = new Int32Array(NORMAL_CHUNK);

function addNormalJs(n: number, lo: number, hi: number): number {
  const end = (n + 7) & ~7;
  const words = JS_WORDS;
  // xoroshiro128+ on each generator g in turn (four int32 locals: s0 low / high, s1 low / high):
  // its step for group k gives words k + 2g (low half of s0 + s1) and k + 2g + 1 (high half)
  for (let g = 0; g < NORMAL_GENERATORS; g++) {
    let aL = JS_STATE[2 * g]!;
    let aH = JS_STATE[2 * g + 1]!;
    let bL = JS_STATE[8 + 2 * g]!;
    let bH = JS_STATE[9 + 2 * g]!;
    for (let k = 2 * g; k < end; k += 8) {
      const sumL = (aL + bL) | 0;
      words[k] = sumL;
      words[k + 1] = (aH + bH + ((sumL >>> 0) < (aL >>> 0) ? 1 : 0)) | 0;
      bL ^= aL;
      bH ^= aH;
      const rL = (aL << 24) | (aH >>> 8); // rotl(s0, 24)
      const rH = (aH << 24) | (aL >>> 8);
      aL = rL ^ bL ^ (bL << 16);
      aH = rH ^ bH ^ ((bH << 16) | (bL >>> 16));
      const tL = (bH << 5) | (bL >>> 27); // rotl(s1, 37)
      bH = (bL << 5) | (bH >>> 27);
      bL = tL;
    }
    JS_STATE[2 * g] = aL;
    JS_STATE[2 * g + 1] = aH;
    JS_STATE[8 + 2 * g] = bL;
    JS_STATE[9 + 2 * g] = bH;
  }
  let np = 0;
  for (let k = 0; k < end; k += 8) {
    let bits = 0;
    for (let l = 0; l < 8; l++) bits |= fastJs(k + l, words[k + l]!, lo, hi) << l;
    if (bits !== 255) {
      for (let l = 0; l < 8; l++) JS_QUEUE[np + l] = words[k + l]!;
      JS_QUEUE[np + 8] = 4 * k;
      JS_QUEUE[np + 9] = bits;
      np += 12;
    }
  }
  return np / 12;
}

// ---- The WebAssembly SIMD kernel.

let simdEnabled = true;
let simd: NormalKernel | null | undefined;

/** Turns the SIMD kernel off (on again with `true`): for tests of the JS twin. */
export function setNormalSimdEnabled(on: boolean): void {
  simdEnabled = on;
}

function decode(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The SIMD kernel, or null where WebAssembly SIMD is unavailable. */
export function simdKernel(): NormalKernel | null {
  if (simd === undefined) {
    simd = null;
    try {
      const bytes = decode(WASM_BASE64);
      if (typeof WebAssembly === "object" && WebAssembly.validate(bytes)) {
        const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { math: { exp: Math.exp, log: Math.log } });
        const memory = instance.exports.memory as WebAssembly.Memory;
        const buffer = memory.buffer as ArrayBuffer;
        // the slow pass's float64 tables (offsets in normal.wat)
        new Float64Array(buffer, 65536, SLOW_TABLES_LENGTH).set(regionTables().slow);
        // both take the base of their memory region first (0: this module's own memory is theirs)
        const addNormal = instance.exports.addNormal as (base: number, ...a: Parameters<NormalKernel["run"]>) => number;
        const finishSlow = instance.exports.finishSlow as (base: number, ...a: Parameters<NormalKernel["finish"]>) => void;
        const run: NormalKernel["run"] = (ptr, n, lo, hi) => addNormal(0, ptr, n, lo, hi);
        const finish: NormalKernel["finish"] = (ptr, entries, n, std, lo, hi) => finishSlow(0, ptr, entries, n, std, lo, hi);
        let view: Float32Array | undefined;
        const workspace = (length: number): Float32Array | undefined => {
          if (view?.length === length && view.buffer === memory.buffer) return view;
          if (length > WORKSPACE_MAX) return undefined;
          const need = WORKSPACE + 4 * length;
          if (memory.buffer.byteLength < need) {
            memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
            // the old views are detached: new ones, same contents (the std's table stays scaled)
            simd = { ...simd!, ...views(memory.buffer as ArrayBuffer) };
          }
          view = new Float32Array(memory.buffer, WORKSPACE, length);
          return view;
        };
        simd = { kind: "simd", ...views(buffer), std: NaN, run, finish, workspace };
      }
    } catch {
      simd = null;
    }
  }
  return simd;
}

/** The kernel `addNormal` uses: SIMD where available (and enabled), else the JS twin. */
export const normalKernel = (): NormalKernel => (simdEnabled && simdKernel()) || jsKernel;

/**
 * The kernel's tables as its memory region holds them (normal.wat's layout; @fitloop/wasm writes
 * them into its own region to run the same functions): `kn` and `wn` by table index (the fast
 * table holds kn and f32(wn * std)), and `slow`, the slow pass's float64 tables from byte 65536:
 * wn[512], fn[256], then the squeeze coefficients loA, loB, hiA, hiB, loC, hiC [256 each]. Made
 * once; the same objects every call.
 */
export function regionTables(): { kn: Int32Array; wn: Float64Array; slow: Float64Array } {
  if (!REGION_TABLES) {
    const slow = new Float64Array(SLOW_TABLES_LENGTH);
    [ZIG_WN, ZIG_FN, SQ_LO_A, SQ_LO_B, SQ_HI_A, SQ_HI_B, SQ_LO_C, SQ_HI_C].reduce((at, t) => (slow.set(t, at), at + t.length), 0);
    REGION_TABLES = { kn: ZIG_KN, wn: ZIG_WN, slow };
  }
  return REGION_TABLES;
}
const SLOW_TABLES_LENGTH = 512 + 256 + 6 * 256;
let REGION_TABLES: { kn: Int32Array; wn: Float64Array; slow: Float64Array } | undefined;

/**
 * The generators' state for each chunk of 4096 of `n` values (16 words per chunk, the layout of
 * `NormalKernel.state`), from sixteen `seed` words: word k of chunk c is fmix32(seed[k] ^ (c + 1) *
 * 0x9e3779b9) (MurmurHash3's finaliser; xoroshiro's forbidden all-zero state gets s0 = 1). Each
 * chunk's draws thus depend on the seed and its index only, so the chunks of a batch can be made
 * in any order, on any thread (@fitloop/wasm makes them on two), with the same bits.
 */
export function chunkStates(seed: Int32Array, n: number): Int32Array {
  const chunks = Math.ceil(n / NORMAL_CHUNK);
  const out = new Int32Array(16 * chunks);
  for (let c = 0; c < chunks; c++) {
    const salt = Math.imul(c + 1, 0x9e3779b9);
    for (let k = 0; k < 16; k++) out[16 * c + k] = fmix32(seed[k]! ^ salt);
  }
  for (let at = 0; at < out.length; at += 16) {
    for (let g = 0; g < NORMAL_GENERATORS; g++) {
      // word order of a generator in the state: s0 low/high at 2g, 2g + 1, s1 at 8 + 2g, 9 + 2g
      if ((out[at + 2 * g]! | out[at + 2 * g + 1]! | out[at + 8 + 2 * g]! | out[at + 9 + 2 * g]!) === 0) out[at + 2 * g] = 1;
    }
  }
  return out;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

// ---- The scalar slow pass, shared by both kernels.

/**
 * Squeeze bounds of the wedge test (they decide the same as `Math.exp`, which they only skip):
 * lower(x) = SQ_LO_A + SQ_LO_B * x + SQ_LO_C * x² and upper(x) likewise, by layer.
 * A wedge draw of layer i has x = u * wn[i] in [x[i-1] - wn[i], x[i]) (u >= kn[i] = floor(x[i-1] /
 * x[i] * 2^23)), where f(x) = exp(-x²/2) is convex (x >= 1) or concave (|x| <= 1) except in the
 * layer holding x = 1. Between the chord through the interval's ends and the tangent at its
 * middle (the top layer: two quadratics, below), lower <= f(x) <= upper, both shifted outwards by
 * 1e-12: far more than the float64 error of the bounds and of `Math.exp(-0.5 * x * x)` (< 1e-14
 * here), so y < lower accepts and y >= upper rejects exactly when the exact test would. Only the
 * draws between the bounds (~1 % of wedge draws), and the inflection layer (lower -Infinity, upper
 * Infinity), call `Math.exp`: the test consumes the same uniform either way, so the values and the
 * streams do not change.
 */
const SQ_LO_A = new Float64Array(256).fill(-Infinity);
const SQ_LO_B = new Float64Array(256);
const SQ_HI_A = new Float64Array(256).fill(Infinity);
const SQ_HI_B = new Float64Array(256);
const SQ_LO_C = new Float64Array(256);
const SQ_HI_C = new Float64Array(256);
{
  const { x: X } = zigguratTables();
  const SQ_EPS = 1e-12;
  const f = (x: number) => Math.exp(-0.5 * x * x);
  for (let i = 1; i < 256; i++) {
    const a = X[i - 1]! - 2 * ZIG_WN[i]!;
    const b = X[i]!;
    const convex = a >= 1;
    if (!convex && !(b <= 1 && a > -1)) continue; // the inflection layer: always Math.exp
    const chordB = (f(b) - f(a)) / (b - a);
    const chordA = f(a) - chordB * a;
    const m = (a + b) / 2;
    const tanB = -m * f(m);
    const tanA = f(m) - tanB * m;
    SQ_LO_A[i] = (convex ? tanA : chordA) - SQ_EPS;
    SQ_LO_B[i] = convex ? tanB : chordB;
    SQ_HI_A[i] = (convex ? chordA : tanA) + SQ_EPS;
    SQ_HI_B[i] = convex ? chordB : tanB;
  }
  // The top layer (x in [0, x[1]), x[1] ~ 0.214; its fast path never accepts: 1/4 of all wedge
  // draws) is too curved for lines: between the chord and the tangent lies 1/4 of its height, a
  // Math.exp call each time. With t = x²/2: 1 - t <= exp(-t) <= 1 - t + t²/2 <= 1 - t + x[1]² x² / 8,
  // a gap of at most x[1]^4 / 8 ~ 2.6e-4 (1 % of the layer's height), shifted outwards as above.
  SQ_LO_A[1] = 1 - SQ_EPS;
  SQ_LO_B[1] = 0;
  SQ_LO_C[1] = -0.5;
  SQ_HI_A[1] = 1 + SQ_EPS;
  SQ_HI_B[1] = 0;
  SQ_HI_C[1] = -0.5 + (X[1]! * X[1]!) / 8;
}

/** The squeeze bounds by layer (for tests): lower(x) = loA + loB * x + loC * x², upper(x) = hiA + hiB * x + hiC * x². */
export const wedgeSqueeze = (): { loA: Float64Array; loB: Float64Array; loC: Float64Array; hiA: Float64Array; hiB: Float64Array; hiC: Float64Array } => ({
  loA: SQ_LO_A,
  loB: SQ_LO_B,
  loC: SQ_LO_C,
  hiA: SQ_HI_A,
  hiB: SQ_HI_B,
  hiC: SQ_HI_C,
});

/**
 * Adds the queued draws of a chunk of `n` elements, in element order, so the streams are consumed
 * reproducibly: element k continues its generator ((k & 7) >> 1), after that generator's fast-pass
 * steps, one step (its high word) per word it needs.
 *
 * A draw the fast path rejected (magnitude u, index j = sign << 8 | layer) takes the wedge test of
 * its layer or, for layer 0, is drawn from the tail beyond R (Marsaglia & Tsang's `nfix`); a
 * rejected wedge point starts over with a fresh word. Uniforms ((word >>> 0) / 2^32) and fresh
 * words continue the generator (`nextWord`; the wasm slow pass inlines it).
 * `Math.exp` and `Math.log` only here (~1.5 % of draws; `Math.exp` rarely, see the squeeze).
 */
export function finishSlow(kernel: NormalKernel, entries: number, n: number, std: number, lo: number, hi: number): void {
  const { data, queue, state } = kernel;
  for (let p = 0; p < 12 * entries; p += 12) {
    const k0 = queue[p + 8]! >> 2;
    // the rejected elements of the group, lowest first (draws past n were made but are not part of the data)
    let todo = ~queue[p + 9]! & 255 & (n - k0 >= 8 ? 255 : (1 << (n - k0)) - 1);
    while (todo !== 0) {
      const l = 31 - Math.clz32(todo & -todo);
      todo &= todo - 1;
      const k = k0 + l;
      const word = queue[p + l]!;
      const g = l >> 1; // the generator of element k
      GEN[0] = state[2 * g]!;
      GEN[1] = state[2 * g + 1]!;
      GEN[2] = state[8 + 2 * g]!;
      GEN[3] = state[9 + 2 * g]!;
      let u = word & 0x7fffff;
      let j = word >>> 23;
      let z: number;
      for (;;) {
        const layer = j & 255;
        const sign = j & 256 ? -1 : 1;
        if (layer === 0) {
          let t: number;
          let y: number;
          do {
            t = -Math.log(1 - (nextWord() >>> 0) / 4294967296) / ZIG_R;
            y = -Math.log(1 - (nextWord() >>> 0) / 4294967296);
          } while (y + y < t * t);
          z = sign * (ZIG_R + t);
          break;
        }
        const x = u * ZIG_WN[layer]!;
        const y = ZIG_FN[layer]! + ((nextWord() >>> 0) / 4294967296) * (ZIG_FN[layer - 1]! - ZIG_FN[layer]!);
        const xx = x * x;
        const accept =
          y < SQ_LO_A[layer]! + SQ_LO_B[layer]! * x + SQ_LO_C[layer]! * xx ? true : y >= SQ_HI_A[layer]! + SQ_HI_B[layer]! * x + SQ_HI_C[layer]! * xx ? false : y < Math.exp(-0.5 * x * x);
        if (accept) {
          z = sign * x;
          break;
        }
        const r = nextWord();
        j = r >>> 23;
        u = r & 0x7fffff;
        if (u < ZIG_KN[j]!) {
          z = u * ZIG_WN[j]!;
          break;
        }
      }
      state[2 * g] = GEN[0]!;
      state[2 * g + 1] = GEN[1]!;
      state[8 + 2 * g] = GEN[2]!;
      state[9 + 2 * g] = GEN[3]!;
      const v = Math.fround(data[k]! + Math.fround(z * std));
      const w = v < lo ? lo : v;
      data[k] = hi < w ? hi : w;
    }
  }
}

/** The slow pass's generator: s0 low, s0 high, s1 low, s1 high. */
const GEN = new Int32Array(4);

/** One xoroshiro128+ step of `GEN`: the high 32 bits of s0 + s1, as in normal.wat's slow pass. */
function nextWord(): number {
  const aL = GEN[0]!;
  const aH = GEN[1]!;
  let bL = GEN[2]!;
  let bH = GEN[3]!;
  const sumL = (aL + bL) | 0;
  const r = (aH + bH + ((sumL >>> 0) < (aL >>> 0) ? 1 : 0)) | 0;
  bL ^= aL;
  bH ^= aH;
  GEN[0] = ((aL << 24) | (aH >>> 8)) ^ bL ^ (bL << 16);
  GEN[1] = ((aH << 24) | (aL >>> 8)) ^ bH ^ ((bH << 16) | (bL >>> 16));
  GEN[2] = (bH << 5) | (bL >>> 27);
  GEN[3] = (bL << 5) | (bH >>> 27);
  return r;
}
