import type { Rng } from "@fitloop/core";
import { chunkStates, DATA_PTR, NORMAL_CHUNK, normalKernel, setStd } from "./simd/normal.js";

export { zigguratTables } from "./simd/normal.js";

/**
 * Fills `out` with N(0, std²) draws (see `addNormal`). Same `rng` state, same values.
 */
export function fillNormal(rng: Rng, out: Float32Array, std = 1): Float32Array {
  out.fill(0);
  return addNormal(rng, out, std);
}

/**
 * `out[k] += N(0, std²)` for every k, clipped to `[lo, hi]` (either may be infinite): the hot loop
 * of gaussian-noise augmentation (~50,000 draws per MNIST batch).
 *
 * An exact 256-layer ziggurat (Marsaglia & Tsang 2000) on four xoroshiro128+ generators (Blackman &
 * Vigna), stepped as 64-bit lanes of a WebAssembly SIMD kernel (`simd/normal.wat`) and seeded for
 * each chunk of 4096 elements from sixteen words of `rng` and the chunk's index (`chunkStates`: the
 * chunks can be made in any order); each step gives two 32-bit words; element k of a chunk takes
 * word k & 7 of its group of eight. Each word gives the layer (8 bits) and the sign (1 bit) from
 * its top, and, independently of both, a 23-bit magnitude: a float32 result cannot resolve more.
 * ~98.5 % of draws take the vectorised fast path (float32 arithmetic: the noise `u * ws`,
 * ws = f32(wn * std), the sum and the clamp each rounded to float32); the rest (wedges, and the
 * tail beyond 3.654) are queued and finished by a scalar pass on the same generator.
 *
 * Same `rng` state, same values, in any process: where WebAssembly SIMD is unavailable a plain-JS
 * twin of the kernel gives the same bits. The data goes through the kernel's memory in chunks of
 * 4096 (copied in, processed in place, copied out: two memcpys cost ~10 % of the kernel), unless
 * it is already there (`noiseWorkspace`).
 */
export function addNormal(rng: Rng, out: Float32Array, std: number, lo = -Infinity, hi = Infinity): Float32Array {
  const kernel = normalKernel();
  const states = chunkStates(noiseSeed(rng), out.length);
  setStd(kernel, std);
  const lo32 = Math.fround(lo);
  const hi32 = Math.fround(hi);
  const data = kernel.data;
  const n = out.length;
  // `out` in the kernel's memory (a `noiseWorkspace`): processed in place, chunk by chunk
  const inPlace = kernel.kind === "simd" && out.buffer === data.buffer;
  for (let from = 0; from < n; from += NORMAL_CHUNK) {
    const len = Math.min(NORMAL_CHUNK, n - from);
    kernel.state.set(states.subarray(from / 256, from / 256 + 16)); // the generators of chunk from / 4096
    // in place only in whole groups of eight: the kernel writes up to the next multiple of 8
    if (inPlace && (len & 7) === 0) {
      const ptr = out.byteOffset + 4 * from;
      const np = kernel.run(ptr, len, lo32, hi32);
      if (np > 0) kernel.finish(ptr, np, len, std, lo32, hi32);
      continue;
    }
    data.set(len === n ? out : out.subarray(from, from + len));
    const np = kernel.run(DATA_PTR, len, lo32, hi32);
    if (np > 0) kernel.finish(DATA_PTR, np, len, std, lo32, hi32);
    out.set(len === NORMAL_CHUNK ? data : data.subarray(0, len), from);
  }
  return out;
}

/** The sixteen words `addNormal` draws from `rng` to seed its generators (`chunkStates`). */
export function noiseSeed(rng: Rng): Int32Array {
  const seed = new Int32Array(16);
  for (let k = 0; k < 16; k++) seed[k] = rng.nextUint32() | 0;
  return seed;
}

/**
 * A buffer of `length` float32 in the noise kernel's memory, on which `addNormal` needs no copies
 * (undefined where the SIMD kernel is unavailable or off). One buffer, shared: its contents last
 * until the next call, so it suits a batch that is gathered, transformed and copied into a tensor
 * in one go (what the loader does on a backend whose tensors copy their data).
 */
export function noiseWorkspace(length: number): Float32Array | undefined {
  const kernel = normalKernel();
  return kernel.workspace?.(length);
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

/** A uniformly random permutation of [0, n) (Fisher-Yates), from core. */
export { permutation } from "@fitloop/core";
