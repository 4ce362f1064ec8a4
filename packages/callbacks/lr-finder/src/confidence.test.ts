import { describe, expect, it } from "vitest";
import { Rng } from "@fitloop/core";
import { confidence, noiseStd, smoothLosses, type ConfidenceInput } from "./index.js";

/** Standard normal draws from a seeded generator (Box-Muller). */
function gaussian(seed: number, n: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next()));
}

/** A curve from raw losses, smoothed as the range test does. */
const curve = (loss: number[], extra: Partial<ConfidenceInput> = {}): ConfidenceInput => ({ loss, smoothed: smoothLosses(loss), steps: 100, diverged: false, ...extra });

/** A clean range test: flat at 2.3, falls to 0.5 between steps 30 and 80, then rises. */
const clean = (n = 100) => Array.from({ length: n }, (_, i) => (i < 30 ? 2.3 : i < 80 ? 2.3 - (1.8 * (i - 30)) / 50 : 0.5 + 0.2 * (i - 80)));

describe("noiseStd: the std of independent noise on a slow trend, from first differences (MAD)", () => {
  it("ignores a linear trend, and estimates gaussian noise to ~10 % from 300 points", () => {
    expect(noiseStd(Array.from({ length: 50 }, (_, i) => 3 - 0.02 * i))).toBeCloseTo(0, 12);
    const noise = gaussian(1, 300).map((z, i) => 2 - 0.005 * i + 0.3 * z);
    expect(noiseStd(noise)).toBeGreaterThan(0.27);
    expect(noiseStd(noise)).toBeLessThan(0.33);
    expect(noiseStd([1, 2])).toBeNaN();
  });
});

describe("the verdicts: each one on a curve that should trigger it and one that should not", () => {
  it("ok: a clean, complete sweep (the raw loss falls by 78 %, the lagging smoothed one by 38 % over the usable points)", () => {
    const c = confidence(curve(clean()));
    expect(c).toMatchObject({ verdict: "ok", reasons: [], points: 85 });
    expect(c.drop).toBeCloseTo(0.385, 3);
    expect(c.noise).toBeCloseTo(0, 6); // piecewise linear: no noise at all
  });

  it("too-short: fewer than 20 usable points after dropping the first steps/10 and the last 5", () => {
    // 34 recorded of 100: usable [10, 29) = 19 points; 35 recorded: [10, 30) = 20 points
    const falling = Array.from({ length: 35 }, (_, i) => 2.3 - 0.04 * i);
    expect(confidence(curve(falling.slice(0, 34)))).toMatchObject({ verdict: "too-short", points: 19 });
    expect(confidence(curve(falling))).toMatchObject({ verdict: "ok", points: 20 });
    expect(confidence(curve(falling.slice(0, 12)))).toMatchObject({ verdict: "too-short", points: 0, drop: Number.NaN, noise: Number.NaN });
    expect(confidence(curve(falling.slice(0, 34)), { minPoints: 19 }).verdict).toBe("ok");
  });

  it("flat: the smoothed loss falls by less than 5 % over the usable points", () => {
    const gentle = (total: number) => Array.from({ length: 100 }, (_, i) => 2 - (total * 2 * i) / 99);
    const flat = confidence(curve(gentle(0.06))); // the raw loss falls 6 %, the lagging smoothed one less than 5 %
    expect(flat.verdict).toBe("flat");
    expect(flat.drop).toBeLessThan(0.05);
    expect(flat.reasons[0]).toMatch(/fell by only \d\.\d % over the usable points \(at least 5\.0 % wanted\)/);
    const falls = confidence(curve(gentle(0.2)));
    expect(falls.verdict).toBe("ok");
    expect(falls.drop).toBeGreaterThan(0.1);
    expect(confidence(curve(gentle(0.06)), { minDrop: 0.01 }).verdict).toBe("ok");
  });

  it("noisy: the noise left in the smoothed curve, std * sqrt((1 - beta) / (1 + beta)), is more than 10 % of its fall", () => {
    // raw noise std 0.3 leaves ~0.03 in the smoothed curve, 2 % of its fall (~1.0); std 6 leaves ~0.6. A fall measured on a
    // noisy curve includes the noise's own swings, so even pure noise reads only ~0.13-0.2 on this measure.
    const z = gaussian(7, 100);
    const loud = confidence(curve(clean().map((l, i) => l + 6 * z[i]!)));
    expect(loud.verdict).toBe("noisy");
    expect(loud.noise).toBeGreaterThan(0.12);
    expect(loud.reasons.join(" ")).toMatch(/noise left in the smoothed loss .* of its fall \(at most 10\.0 % wanted\): use larger batches/);
    const quiet = confidence(curve(clean().map((l, i) => l + 0.3 * z[i]!)));
    expect(quiet.verdict).toBe("ok");
    expect(quiet.noise).toBeLessThan(0.05);
    // the same raw noise with less smoothing leaves more of it in the curve
    const lessSmoothing = confidence({ ...curve(clean().map((l, i) => l + 0.3 * z[i]!)), smoothed: smoothLosses(clean().map((l, i) => l + 0.3 * z[i]!), 0.5), smoothing: 0.5 });
    expect(lessSmoothing.noise).toBeGreaterThan(quiet.noise * 2); // 5.7x the noise, over a larger fall (less lag)
  });

  it("diverged-early: the sweep diverged before the smoothed loss ever fell by 5 % from its first value", () => {
    const rising = Array.from({ length: 40 }, (_, i) => 2.3 * 1.04 ** i);
    const early = confidence(curve(rising, { diverged: true }));
    expect(early.verdict).toBe("diverged-early");
    expect(early.dropFromStart).toBe(0);
    expect(early.reasons[0]).toMatch(/diverged before it ever fell by 5\.0 %.*startLr is probably too high/);
    // the same curve without a divergence stop is just flat
    expect(confidence(curve(rising)).verdict).toBe("flat");
    // fell by 78 % first, then diverged (the normal end of a range test): ok
    const normal = clean(95);
    expect(confidence(curve(normal, { diverged: true })).verdict).toBe("ok");
    // a NaN right away: nothing finite after the first point
    expect(confidence(curve([2.3, Number.NaN], { diverged: true })).verdict).toBe("diverged-early");
  });

  it("several reasons at once, the verdict is the first of diverged-early, too-short, flat, noisy", () => {
    const c = confidence(curve(Array.from({ length: 30 }, (_, i) => 2.3 + 0.01 * i), { diverged: true }));
    expect(c.verdict).toBe("diverged-early");
    expect(c.reasons).toHaveLength(4);
    expect(c.reasons.map((r) => r.split(" ")[1])).toEqual(["loss", "15", "smoothed", "noise"]);
  });

  it("loss and smoothed must have the same length", () => {
    expect(() => confidence({ loss: [1, 2], smoothed: [1], steps: 10, diverged: false })).toThrow(RangeError);
  });
});
