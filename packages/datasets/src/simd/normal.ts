import { WASM_BASE64 } from "./normal.wasm.js";

/**
 * Gaussian noise kernels: `x[k] = clamp(x[k] + N(0, std²), lo, hi)` over one chunk at a time, as
 * WebAssembly SIMD (`normal.wat`, embedded) or, where that is unavailable, as plain JS giving the
 * same bits (`addNormalJs`). Both work on the same memory layout: a chunk of data, four generator
 * streams, a table and a queue of slow draws, which the scalar slow pass (`finishSlow`, shared)
 * completes. See `normal.wat` for the algorithm; `addNormal` in `../random.ts` drives it.
 */

/** Elements per kernel call (a multiple of 4: each chunk starts at lane 0). */
export const NORMAL_CHUNK = 4096;
const TABLE = 64;
const DATA = 8192;
const QUEUE = 24576;
const MEMORY_BYTES = 65536;
/** Where `workspace` views start in the SIMD kernel's memory (past its tables), and their largest length. */
const WORKSPACE = 81920;
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
  /** Lane l's xoroshiro64** state: `state[l]` = s0, `state[4 + l]` = s1. */
  readonly state: Int32Array;
  /** 512 entries of (kn as int32, ws = f32(wn * std) as float32), interleaved. */
  readonly tableI: Int32Array;
  readonly tableF: Float32Array;
  readonly data: Float32Array;
  /**
   * One 8-word entry per vector with a draw left to `finishSlow`, in k order: the four lanes'
   * words, the byte offset 4k of lane 0's element, the accept bits (bit l set: lane l done).
   */
  readonly queue: Int32Array;
  /** The std the table is scaled for (NaN: none yet). */
  std: number;
  /**
   * The fast pass over n values at byte `ptr` of the kernel's memory (`DATA_PTR`: `data`; the JS
   * twin has only that); returns the number of queue entries.
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
    state: new Int32Array(buffer, 0, 8),
    tableI,
    tableF: new Float32Array(buffer, TABLE, 1024),
    data: new Float32Array(buffer, DATA, NORMAL_CHUNK),
    queue: new Int32Array(buffer, QUEUE, 2 * NORMAL_CHUNK), // NORMAL_CHUNK / 4 entries of 8 words
  };
}

// ---- The plain-JS twin of normal.wat: the four lanes emulated in order, float32 rounding by
// Math.fround (u * ws is exact in float64, and float64 holds more than twice float32's precision,
// so rounding the float64 sum to float32 gives the correctly rounded float32 sum: the same bits),
// pmax / pmin as the comparisons they are defined by.

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
  const j = r & 511;
  const u = r >>> 9;
  if (u >= ZIG_KN[j]!) return 0;
  const v = Math.fround(JS_DATA[k]! + Math.fround(u * JS_WS[j]!));
  const w = v < lo ? lo : v;
  JS_DATA[k] = hi < w ? hi : w;
  return 1;
}

function addNormalJs(n: number, lo: number, hi: number): number {
  const end = (n + 3) & ~3;
  let a0 = JS_STATE[0]!, a1 = JS_STATE[1]!, a2 = JS_STATE[2]!, a3 = JS_STATE[3]!;
  let b0 = JS_STATE[4]!, b1 = JS_STATE[5]!, b2 = JS_STATE[6]!, b3 = JS_STATE[7]!;
  let np = 0;
  for (let k = 0; k < end; k += 4) {
    // xoroshiro64** on each lane, as in normal.wat
    let m = Math.imul(a0, 0x9e3779bb);
    const r0 = Math.imul((m << 5) | (m >>> 27), 5);
    b0 ^= a0;
    a0 = ((a0 << 26) | (a0 >>> 6)) ^ b0 ^ (b0 << 9);
    b0 = (b0 << 13) | (b0 >>> 19);
    m = Math.imul(a1, 0x9e3779bb);
    const r1 = Math.imul((m << 5) | (m >>> 27), 5);
    b1 ^= a1;
    a1 = ((a1 << 26) | (a1 >>> 6)) ^ b1 ^ (b1 << 9);
    b1 = (b1 << 13) | (b1 >>> 19);
    m = Math.imul(a2, 0x9e3779bb);
    const r2 = Math.imul((m << 5) | (m >>> 27), 5);
    b2 ^= a2;
    a2 = ((a2 << 26) | (a2 >>> 6)) ^ b2 ^ (b2 << 9);
    b2 = (b2 << 13) | (b2 >>> 19);
    m = Math.imul(a3, 0x9e3779bb);
    const r3 = Math.imul((m << 5) | (m >>> 27), 5);
    b3 ^= a3;
    a3 = ((a3 << 26) | (a3 >>> 6)) ^ b3 ^ (b3 << 9);
    b3 = (b3 << 13) | (b3 >>> 19);
    const bits = fastJs(k, r0, lo, hi) | (fastJs(k + 1, r1, lo, hi) << 1) | (fastJs(k + 2, r2, lo, hi) << 2) | (fastJs(k + 3, r3, lo, hi) << 3);
    if (bits !== 15) {
      JS_QUEUE[np] = r0;
      JS_QUEUE[np + 1] = r1;
      JS_QUEUE[np + 2] = r2;
      JS_QUEUE[np + 3] = r3;
      JS_QUEUE[np + 4] = 4 * k;
      JS_QUEUE[np + 5] = bits;
      np += 8;
    }
  }
  JS_STATE[0] = a0;
  JS_STATE[1] = a1;
  JS_STATE[2] = a2;
  JS_STATE[3] = a3;
  JS_STATE[4] = b0;
  JS_STATE[5] = b1;
  JS_STATE[6] = b2;
  JS_STATE[7] = b3;
  return np >> 3;
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
        new Float64Array(buffer, 65536, 512).set(ZIG_WN);
        new Float64Array(buffer, 69632, 256).set(ZIG_FN);
        new Float64Array(buffer, 71680, 256).set(SQ_LO_A);
        new Float64Array(buffer, 73728, 256).set(SQ_LO_B);
        new Float64Array(buffer, 75776, 256).set(SQ_HI_A);
        new Float64Array(buffer, 77824, 256).set(SQ_HI_B);
        const run = instance.exports.addNormal as NormalKernel["run"];
        const finish = instance.exports.finishSlow as NormalKernel["finish"];
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

/** Seeds the four lane streams from eight words of `next` (a zero state, xoroshiro's forbidden one, becomes s0 = 1). */
export function seedLanes(kernel: NormalKernel, next: () => number): void {
  const state = kernel.state;
  for (let l = 0; l < 4; l++) {
    const s0 = next() | 0;
    const s1 = next() | 0;
    state[l] = (s0 | s1) === 0 ? 1 : s0;
    state[4 + l] = s1;
  }
}

// ---- The scalar slow pass, shared by both kernels.

/**
 * Squeeze bounds of the wedge test (they decide the same as `Math.exp`, which they only skip).
 * A wedge draw of layer i has x = u * wn[i] in [x[i-1] - wn[i], x[i]) (u >= kn[i] = floor(x[i-1] /
 * x[i] * 2^23)), where f(x) = exp(-x²/2) is convex (x >= 1) or concave (|x| <= 1) except in the
 * layer holding x = 1. Between the chord through the interval's ends and the tangent at its
 * middle, lower = SQ_LO_A + SQ_LO_B * x <= f(x) <= upper = SQ_HI_A + SQ_HI_B * x, both shifted
 * outwards by 1e-12: far more than the float64 error of the lines and of `Math.exp(-0.5 * x * x)`
 * (< 1e-14 here), so y < lower accepts and y >= upper rejects exactly when the exact test would.
 * Only the draws within ~1e-12 of a bound, and the inflection layer (lower -Infinity, upper
 * Infinity), call `Math.exp`: the test consumes the same uniform either way, so the values and the
 * streams do not change.
 */
const SQ_LO_A = new Float64Array(256).fill(-Infinity);
const SQ_LO_B = new Float64Array(256);
const SQ_HI_A = new Float64Array(256).fill(Infinity);
const SQ_HI_B = new Float64Array(256);
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
}

/** The squeeze bounds by layer (for tests): lower(x) = loA + loB * x, upper(x) = hiA + hiB * x. */
export const wedgeSqueeze = (): { loA: Float64Array; loB: Float64Array; hiA: Float64Array; hiB: Float64Array } => ({ loA: SQ_LO_A, loB: SQ_LO_B, hiA: SQ_HI_A, hiB: SQ_HI_B });

/**
 * Adds the queued draws of a chunk of `n` elements, in element order, so the streams are consumed
 * reproducibly: element k continues lane k & 3's stream, after that lane's fast-pass words.
 *
 * A draw the fast path rejected (magnitude u, index j = sign << 8 | layer) takes the wedge test of
 * its layer or, for layer 0, is drawn from the tail beyond R (Marsaglia & Tsang's `nfix`); a
 * rejected wedge point starts over with a fresh word. Uniforms ((word >>> 0) / 2^32) and fresh
 * words continue the lane's xoroshiro64** stream (the step the kernels inline, here on locals).
 * `Math.exp` and `Math.log` only here (~1.5 % of draws; `Math.exp` rarely, see the squeeze).
 */
export function finishSlow(kernel: NormalKernel, entries: number, n: number, std: number, lo: number, hi: number): void {
  const { data, queue, state } = kernel;
  for (let p = 0; p < 8 * entries; p += 8) {
    const k0 = queue[p + 4]! >> 2;
    // the rejected lanes, lowest first (lanes past n were drawn but are not part of the data)
    let todo = ~queue[p + 5]! & 15 & (n - k0 >= 4 ? 15 : (1 << (n - k0)) - 1);
    while (todo !== 0) {
      const l = 31 - Math.clz32(todo & -todo);
      todo &= todo - 1;
      const k = k0 + l;
      const word = queue[p + l]!;
      let s0 = state[l]!;
      let s1 = state[4 + l]!;
      let u = word >>> 9;
      let j = word & 511;
      let z: number;
      for (;;) {
        const layer = j & 255;
        const sign = j & 256 ? -1 : 1;
        if (layer === 0) {
          let t: number;
          let y: number;
          do {
            let m = Math.imul(s0, 0x9e3779bb);
            let r = Math.imul((m << 5) | (m >>> 27), 5);
            s1 ^= s0;
            s0 = ((s0 << 26) | (s0 >>> 6)) ^ s1 ^ (s1 << 9);
            s1 = (s1 << 13) | (s1 >>> 19);
            t = -Math.log(1 - (r >>> 0) / 4294967296) / ZIG_R;
            m = Math.imul(s0, 0x9e3779bb);
            r = Math.imul((m << 5) | (m >>> 27), 5);
            s1 ^= s0;
            s0 = ((s0 << 26) | (s0 >>> 6)) ^ s1 ^ (s1 << 9);
            s1 = (s1 << 13) | (s1 >>> 19);
            y = -Math.log(1 - (r >>> 0) / 4294967296);
          } while (y + y < t * t);
          z = sign * (ZIG_R + t);
          break;
        }
        const x = u * ZIG_WN[layer]!;
        let m = Math.imul(s0, 0x9e3779bb);
        let r = Math.imul((m << 5) | (m >>> 27), 5);
        s1 ^= s0;
        s0 = ((s0 << 26) | (s0 >>> 6)) ^ s1 ^ (s1 << 9);
        s1 = (s1 << 13) | (s1 >>> 19);
        const y = ZIG_FN[layer]! + ((r >>> 0) / 4294967296) * (ZIG_FN[layer - 1]! - ZIG_FN[layer]!);
        const accept = y < SQ_LO_A[layer]! + SQ_LO_B[layer]! * x ? true : y >= SQ_HI_A[layer]! + SQ_HI_B[layer]! * x ? false : y < Math.exp(-0.5 * x * x);
        if (accept) {
          z = sign * x;
          break;
        }
        m = Math.imul(s0, 0x9e3779bb);
        r = Math.imul((m << 5) | (m >>> 27), 5);
        s1 ^= s0;
        s0 = ((s0 << 26) | (s0 >>> 6)) ^ s1 ^ (s1 << 9);
        s1 = (s1 << 13) | (s1 >>> 19);
        j = r & 511;
        u = r >>> 9;
        if (u < ZIG_KN[j]!) {
          z = u * ZIG_WN[j]!;
          break;
        }
      }
      state[l] = s0;
      state[4 + l] = s1;
      const v = Math.fround(data[k]! + Math.fround(z * std));
      const w = v < lo ? lo : v;
      data[k] = hi < w ? hi : w;
    }
  }
}
