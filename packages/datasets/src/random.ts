import type { Rng } from "@fitloop/core";

/**
 * Fills `out` with N(0, std²) draws. Gaussian-noise augmentation needs ~50,000 of them per MNIST
 * batch, so this is the hot loop of augmentation: a 128-layer ziggurat (Marsaglia & Tsang 2000)
 * whose fast path (~99 % of draws) runs on an inlined sfc32 generator seeded from three words of
 * `rng`; the rare wedge and tail draws use `rng` itself. Same `rng` state, same values.
 */
export function fillNormal(rng: Rng, out: Float32Array, std = 1): Float32Array {
  out.fill(0);
  return addNormal(rng, out, std);
}

/** `out[k] += N(0, std²)` for every k, clipped to `[lo, hi]` (the fused loop of `gaussianNoise`). */
export function addNormal(rng: Rng, out: Float32Array, std: number, lo = -Infinity, hi = Infinity): Float32Array {
  const { kn, wn } = zigguratTables();
  // sfc32 (a small fast chaotic generator) with its state in locals, so V8 keeps it in registers.
  let a = rng.nextUint32() | 0;
  let b = rng.nextUint32() | 0;
  let c = rng.nextUint32() | 0;
  let d = 1;
  for (let k = 0; k < 12; k++) {
    // mix the seed words
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (((c << 21) | (c >>> 11)) + t) | 0;
  }
  const clipLo = lo > -Infinity;
  const clipHi = hi < Infinity;
  const n = out.length;
  for (let k = 0; k < n; k++) {
    const hz = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (((c << 21) | (c >>> 11)) + hz) | 0;
    const iz = hz & 127;
    const z = Math.abs(hz) < kn[iz]! ? hz * wn[iz]! : zigguratSlow(rng, hz, iz);
    let v = out[k]! + z * std;
    // Branch-free clamps: on an image's background (0) the sign of the noise is a coin flip the
    // CPU cannot predict, and a mispredicted branch per pixel costs more than drawing the noise.
    if (clipLo) {
      const gap = v - lo;
      v = lo + 0.5 * (gap + Math.abs(gap)); // max(v, lo)
    }
    if (clipHi) {
      const gap = hi - v;
      v = hi - 0.5 * (gap + Math.abs(gap)); // min(v, hi)
    }
    out[k] = v;
  }
  return out;
}

const ZIG_R = 3.442619855899;
let tables: { kn: Float64Array; wn: Float64Array; fn: Float64Array } | undefined;

/** Layer tables of the 128-layer ziggurat for the normal density (computed once). */
function zigguratTables(): { kn: Float64Array; wn: Float64Array; fn: Float64Array } {
  if (tables) return tables;
  const m1 = 2147483648;
  const vn = 9.91256303526217e-3;
  const kn = new Float64Array(128);
  const wn = new Float64Array(128);
  const fn = new Float64Array(128);
  let dn = ZIG_R;
  let tn = dn;
  const q = vn / Math.exp(-0.5 * dn * dn);
  kn[0] = (dn / q) * m1;
  kn[1] = 0;
  wn[0] = q / m1;
  wn[127] = dn / m1;
  fn[0] = 1;
  fn[127] = Math.exp(-0.5 * dn * dn);
  for (let i = 126; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(vn / dn + Math.exp(-0.5 * dn * dn)));
    kn[i + 1] = (dn / tn) * m1;
    tn = dn;
    fn[i] = Math.exp(-0.5 * dn * dn);
    wn[i] = dn / m1;
  }
  tables = { kn, wn, fn };
  return tables;
}

/** The wedge and tail cases of the ziggurat (Marsaglia & Tsang's `nfix`). */
function zigguratSlow(rng: Rng, hz: number, iz: number): number {
  const { kn, wn, fn } = zigguratTables();
  for (;;) {
    const x = hz * wn[iz]!;
    if (iz === 0) {
      let t: number;
      let y: number;
      do {
        t = -Math.log(1 - rng.next()) / ZIG_R;
        y = -Math.log(1 - rng.next());
      } while (y + y < t * t);
      return hz > 0 ? ZIG_R + t : -ZIG_R - t;
    }
    if (fn[iz]! + rng.next() * (fn[iz - 1]! - fn[iz]!) < Math.exp(-0.5 * x * x)) return x;
    hz = rng.nextUint32() | 0;
    iz = hz & 127;
    if (Math.abs(hz) < kn[iz]!) return hz * wn[iz]!;
  }
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
