import { describe, expect, it } from "vitest";
import { Rng } from "@fitloop/core";
import { addNormal, fillNormal, zigguratTables } from "./random.js";

/** erfc(x) for x >= 0 (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7). */
function erfc(x: number): number {
  const t = 1 / (1 + 0.5 * x);
  const poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * Math.exp(-x * x + poly);
}

/** The standard normal CDF. */
const phi = (x: number) => (x >= 0 ? 1 - 0.5 * erfc(x / Math.SQRT2) : 0.5 * erfc(-x / Math.SQRT2));

describe("fillNormal / addNormal (ziggurat)", () => {
  it("tiles the density with 256 layers of equal area (what makes the ziggurat exact)", () => {
    const { x, fn, kn, wn } = zigguratTables();
    const R = x[255]!;
    const V = 4.92867323399e-3;
    expect(R * fn[255]! + Math.sqrt(Math.PI / 2) * erfc(R / Math.SQRT2)).toBeCloseTo(V, 9); // base strip + tail
    expect(x[0]).toBe(0);
    for (let i = 1; i < 256; i++) {
      expect(fn[i]).toBe(Math.exp(-0.5 * x[i]! * x[i]!));
      // layer i: [0, x_i] x [f(x_i), f(x_i-1)], exact by construction but for the top one, which
      // closes the recursion at f(x_0) = f(0) = 1 only as well as the constants R and V agree
      expect(x[i]! * (fn[i - 1]! - fn[i]!)).toBeCloseTo(V, i === 1 ? 10 : 12);
      expect(kn[i]).toBe(Math.floor((x[i - 1]! / x[i]!) * 2 ** 23));
      expect(wn[i]).toBe(x[i]! / 2 ** 23);
    }
    // layer 0 is sampled as a rectangle of area V: the part left of R is the base strip
    expect(kn[0]).toBe(Math.floor(((R * fn[255]!) / V) * 2 ** 23));
    for (let j = 0; j < 256; j++) {
      expect(kn[j + 256]).toBe(kn[j]); // the negative half mirrors the positive one
      expect(wn[j + 256]).toBe(-wn[j]!);
    }
  });

  // One million draws: enough to see a wrong layer table or a biased sign, fast enough for CI.
  const n = 1_000_000;
  const draws = fillNormal(new Rng(2024), new Float32Array(n));

  it("has the moments of N(0, 1)", () => {
    let mean = 0;
    for (const v of draws) mean += v;
    mean /= n;
    let m2 = 0;
    let m3 = 0;
    let m4 = 0;
    for (const v of draws) {
      const d = v - mean;
      m2 += d * d;
      m3 += d * d * d;
      m4 += d * d * d * d;
    }
    m2 /= n;
    // standard errors for n = 1e6: mean 0.001, variance 0.0014, skewness 0.0025, kurtosis 0.005
    expect(Math.abs(mean)).toBeLessThan(0.004);
    expect(Math.abs(m2 - 1)).toBeLessThan(0.006);
    expect(Math.abs(m3 / n / m2 ** 1.5)).toBeLessThan(0.01);
    expect(Math.abs(m4 / n / m2 ** 2 - 3)).toBeLessThan(0.02);
  });

  it("passes a Kolmogorov-Smirnov test and a 200-bin chi-square test against the normal CDF", () => {
    const ks = (values: Float32Array): { d: number; bins: Float64Array } => {
      const sorted = Float64Array.from(values).sort();
      let d = 0;
      const bins = new Float64Array(200);
      for (let i = 0; i < n; i++) {
        const p = phi(sorted[i]!);
        d = Math.max(d, p - i / n, (i + 1) / n - p);
        bins[Math.min(199, Math.floor(p * 200))]!++;
      }
      return { d: d * Math.sqrt(n), bins };
    };
    // Four seeds: each statistic under the 0.1 % critical value (1.95), and their mean near the
    // Kolmogorov distribution's 0.87 (a bias that shows in every stream moves the mean; one seed
    // alone fails a 1 % test once in a hundred streams, as seed 2024 does in this one: 1.72).
    const stats = [1, 2, 3].map((seed) => ks(fillNormal(new Rng(seed), new Float32Array(n))).d);
    const { d, bins } = ks(draws);
    for (const s of [d, ...stats]) expect(s).toBeLessThan(1.95);
    expect((d + stats.reduce((a, s) => a + s, 0)) / 4).toBeLessThan(1.3);
    // Equiprobable bins catch local errors (one wrong layer) that the KS distance averages away.
    const expected = n / 200;
    const chi2 = bins.reduce((a, c) => a + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(199 + 4 * Math.sqrt(2 * 199)); // mean + 4 sd of chi-square(199)
  });

  it("draws the tails beyond the ziggurat's base (R = 3.654) at the normal rate, symmetrically", () => {
    let upper = 0;
    let lower = 0;
    let beyond5 = 0;
    for (const v of draws) {
      if (v > 3.6541528853610088) upper++;
      if (v < -3.6541528853610088) lower++;
      if (Math.abs(v) > 5) beyond5++;
    }
    const expected = n * (1 - phi(3.6541528853610088)); // 129 per side
    for (const side of [upper, lower]) expect(Math.abs(side - expected)).toBeLessThan(4.5 * Math.sqrt(expected));
    expect(beyond5).toBeLessThan(6); // expected 0.57
  });

  it("has the right mean, variance and tails on each of the eight lanes (element k takes word k & 7 of a group: a half of generator (k & 7) >> 1)", () => {
    // a lane mixed up with another, a wrong half of a 64-bit step, a state lost between calls show here
    for (let l = 0; l < 8; l++) {
      let sum = 0;
      let sq = 0;
      let beyond2 = 0;
      let m = 0;
      for (let k = l; k < n; k += 8, m++) {
        const v = draws[k]!;
        sum += v;
        sq += v * v;
        if (Math.abs(v) > 2) beyond2++;
      }
      // m = 125,000 draws: standard errors mean 0.0028, variance 0.004, P(|z| > 2) = 0.0455 +- 0.0006
      expect(Math.abs(sum / m), `lane ${l}`).toBeLessThan(0.012);
      expect(Math.abs(sq / m - 1), `lane ${l}`).toBeLessThan(0.017);
      expect(Math.abs(beyond2 / m - 2 * (1 - phi(2))), `lane ${l}`).toBeLessThan(0.0026);
    }
  });

  it("draws independently across neighbouring elements, lanes and generators (lag 1..16 correlations ~ 0)", () => {
    for (let lag = 1; lag <= 16; lag++) {
      let c = 0;
      for (let k = 0; k + lag < n; k++) c += draws[k]! * draws[k + lag]!;
      // standard error 1 / sqrt(n) = 0.001
      expect(Math.abs(c / (n - lag)), `lag ${lag}`).toBeLessThan(0.0045);
    }
  });

  it("adds N(0, std²) at augmentation scale: MNIST-sized batches, std 0.1 (mean, variance, 1-3 sigma tails)", () => {
    const batch = 64 * 784;
    const noise: number[] = [];
    for (let b = 0; b < 20; b++) {
      const x = new Float32Array(batch).fill(0.5);
      addNormal(new Rng(100 + b), x, 0.1);
      for (const v of x) noise.push((v - 0.5) / 0.1);
    }
    const m = noise.length; // 1,003,520 draws
    const mean = noise.reduce((a, v) => a + v, 0) / m;
    const variance = noise.reduce((a, v) => a + (v - mean) ** 2, 0) / m;
    expect(Math.abs(mean)).toBeLessThan(0.004); // 4 standard errors
    expect(Math.abs(variance - 1)).toBeLessThan(0.006);
    for (const z of [1, 2, 3]) {
      const p = 2 * (1 - phi(z));
      const seen = noise.filter((v) => Math.abs(v) > z).length / m;
      expect(Math.abs(seen - p), `P(|z| > ${z})`).toBeLessThan(4.5 * Math.sqrt((p * (1 - p)) / m) + 1e-6);
    }
  });

  it("gives the values pinned for a seed (four xoroshiro128+ generators, 8 lanes; a deliberate change of values updates this)", () => {
    const a = fillNormal(new Rng(42), new Float32Array(4100));
    expect(Array.from(new Uint32Array(a.buffer, 0, 8))).toEqual([1047239173, 1043093417, 3218357930, 1072041824, 1060603403, 1060880791, 1059396954, 1065853742]);
    let h = 0;
    for (const w of new Uint32Array(a.buffer)) h = (Math.imul(h, 31) + w) >>> 0;
    expect(h).toBe(3635950065); // since each chunk of 4096 is seeded on its own (chunkStates)
  });

  it("gives the same values for the same rng state, other values for another", () => {
    const a = fillNormal(new Rng(7), new Float32Array(10_001), 0.5);
    const b = fillNormal(new Rng(7), new Float32Array(10_001), 0.5);
    expect(Array.from(b)).toEqual(Array.from(a));
    const c = fillNormal(new Rng(8), new Float32Array(10_001), 0.5);
    expect(a.filter((v, k) => v === c[k]).length).toBeLessThan(10);
    // the stream continues: a second call on the same rng draws new values
    const rng = new Rng(7);
    const first = fillNormal(rng, new Float32Array(100));
    expect(Array.from(fillNormal(rng, new Float32Array(100)))).not.toEqual(Array.from(first));
  });

  it("adds to the values and clamps exactly to [lo, hi], also one-sided; std 0 adds nothing", () => {
    const base = Float32Array.from({ length: 20_000 }, (_, k) => (k % 5) / 4); // 0, 0.25, ..., 1
    const clipped = addNormal(new Rng(1), base.slice(), 0.3, 0, 1);
    expect(Math.min(...clipped)).toBe(0);
    expect(Math.max(...clipped)).toBe(1);
    // the background pushed below 0: expected 4000 * (1/2 + P(z < -0.25/0.3) + P(z < -0.5/0.3) + ...) ~ 3027, sd ~ 50
    expect(clipped.filter((v) => v === 0).length).toBeGreaterThan(2800);
    const free = addNormal(new Rng(1), base.slice(), 0.3);
    // The same noise; inside the bounds the clamp may differ from the unclipped value in the last bit.
    const off = (a: Float32Array, expected: (k: number) => number, tolerance = 0) => a.filter((v, k) => !(Math.abs(v - expected(k)) <= tolerance)).length;
    expect(off(clipped, (k) => Math.min(1, Math.max(0, free[k]!)), 1e-7)).toBe(0);
    expect(off(clipped, (k) => (free[k]! <= 0 ? 0 : free[k]! >= 1 ? 1 : clipped[k]!))).toBe(0);
    expect(off(addNormal(new Rng(1), base.slice(), 0.3, 0.5), (k) => Math.max(0.5, free[k]!))).toBe(0);
    expect(off(addNormal(new Rng(1), base.slice(), 0.3, -Infinity, 0.5), (k) => Math.min(0.5, free[k]!))).toBe(0);
    let sd = 0;
    free.forEach((v, k) => (sd += (v - base[k]!) ** 2));
    expect(Math.sqrt(sd / free.length)).toBeCloseTo(0.3, 2);
    expect(Array.from(addNormal(new Rng(1), base.slice(), 0))).toEqual(Array.from(base));
  });
});
