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
  /** The fast pass over `data[0, n)`; returns the number of queue entries. */
  run(n: number, lo: number, hi: number): number;
}

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
  run: addNormalJs,
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
        const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
        const memory = instance.exports.memory as WebAssembly.Memory;
        const run = instance.exports.addNormal as (n: number, lo: number, hi: number) => number;
        simd = { kind: "simd", ...views(memory.buffer as ArrayBuffer), std: NaN, run };
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

let slowState: Int32Array = JS_STATE;
let slowLane = 0;

/**
 * Adds the queued draws of a chunk of `n` elements, in element order, so the streams are consumed
 * reproducibly: element k continues lane k & 3's stream, after that lane's fast-pass words.
 */
export function finishSlow(kernel: NormalKernel, entries: number, n: number, std: number, lo: number, hi: number): void {
  const { data, queue } = kernel;
  slowState = kernel.state;
  for (let p = 0; p < 8 * entries; p += 8) {
    const k0 = queue[p + 4]! >> 2;
    const bits = queue[p + 5]!;
    for (let l = 0; l < 4; l++) {
      const k = k0 + l;
      if ((bits >> l) & 1 || k >= n) continue;
      const word = queue[p + l]!;
      slowLane = l;
      const v = Math.fround(data[k]! + Math.fround(zigguratSlow(word >>> 9, word & 511) * std));
      const w = v < lo ? lo : v;
      data[k] = hi < w ? hi : w;
    }
  }
}

/**
 * A draw the fast path rejected (magnitude `u`, index `j` = sign << 8 | layer): the wedge test of
 * its layer or, for layer 0, a draw from the tail beyond R (Marsaglia & Tsang's `nfix`); a rejected
 * wedge point starts over with a fresh word. Uniforms and fresh words continue the lane's stream.
 * `Math.exp` and `Math.log` only here (~1.5 % of draws).
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

/** The next word of the slow lane's xoroshiro64** stream (the kernels inline this step). */
function nextWord(): number {
  const l = slowLane;
  const s0 = slowState[l]!;
  let s1 = slowState[4 + l]!;
  const m = Math.imul(s0, 0x9e3779bb);
  s1 ^= s0;
  slowState[l] = ((s0 << 26) | (s0 >>> 6)) ^ s1 ^ (s1 << 9);
  slowState[4 + l] = (s1 << 13) | (s1 >>> 19);
  return Math.imul((m << 5) | (m >>> 27), 5);
}

/** Uniform in [0, 1) from the next word of the slow lane's stream. */
function uniform(): number {
  return (nextWord() >>> 0) / 4294967296;
}
