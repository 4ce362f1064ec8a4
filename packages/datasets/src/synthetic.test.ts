import { describe, expect, it } from "vitest";
import { OptionsError } from "@fitloop/core";
import { gaussianBlobs, noisyRegression, twoSpirals, xor } from "./index.js";

const counts = (y: ArrayLike<number>, k: number) => Array.from({ length: k }, (_, c) => Array.from(y).filter((v) => v === c).length);

describe("synthetic sets", () => {
  it("are seeded: same options same values, another seed other values", () => {
    for (const make of [(seed: number) => twoSpirals({ seed }), (seed: number) => gaussianBlobs({ seed }), (seed: number) => xor({ seed }), (seed: number) => noisyRegression({ seed })]) {
      expect(Array.from(make(1).x)).toEqual(Array.from(make(1).x));
      expect(Array.from(make(1).x)).not.toEqual(Array.from(make(2).x));
    }
  });

  it("two spirals: balanced 2-D classes on two arms half a turn apart", () => {
    const s = twoSpirals({ samples: 200, noise: 0, seed: 3 });
    expect([s.size, s.sampleShape, counts(s.y, 2)]).toEqual([200, [2], [100, 100]]);
    // without noise a point at radius r of class c sits at angle r * turns * 2pi + c * pi
    for (let i = 0; i < 200; i++) {
      const [x, y] = [s.x[2 * i]!, s.x[2 * i + 1]!];
      const r = Math.hypot(x, y);
      const angle = r * 1.5 * 2 * Math.PI + s.y[i]! * Math.PI;
      expect(x).toBeCloseTo(r * Math.cos(angle), 4);
      expect(y).toBeCloseTo(r * Math.sin(angle), 4);
    }
  });

  it("gaussian blobs: one cluster per class around its centre", () => {
    const b = gaussianBlobs({ samples: 3000, classes: 3, features: 4, spread: 0.5, seed: 1 });
    expect(counts(b.y, 3)).toEqual([1000, 1000, 1000]);
    for (let c = 0; c < 3; c++) {
      for (let j = 0; j < 4; j++) {
        let m = 0;
        for (let i = c; i < 3000; i += 3) m += b.x[i * 4 + j]!;
        expect(m / 1000).toBeCloseTo(b.centers[c * 4 + j]!, 1);
      }
    }
  });

  it("XOR: label 1 exactly when the cluster's signs differ", () => {
    const d = xor({ samples: 400, noise: 0.1, seed: 2 });
    expect(counts(d.y, 2)).toEqual([200, 200]);
    for (let i = 0; i < 400; i++) expect(d.y[i]).toBe(Math.sign(d.x[2 * i]!) === Math.sign(d.x[2 * i + 1]!) ? 0 : 1);
  });

  it("noisy regression: least squares recovers the true weights", () => {
    const r = noisyRegression({ samples: 2000, features: 1, noise: 0.05, seed: 4 });
    expect(r.numClasses).toBeUndefined();
    let sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (let i = 0; i < r.size; i++) {
      const x = r.x[i]!, y = r.y[i]!;
      sx += x; sy += y; sxx += x * x; sxy += x * y;
    }
    const n = r.size;
    const slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    expect(slope).toBeCloseTo(r.weights[0]!, 1);
    expect((sy - slope * sx) / n).toBeCloseTo(r.bias, 1);
    const sine = noisyRegression({ kind: "sine", noise: 0, features: 2, seed: 1 });
    expect(Math.max(...Array.from(sine.y).map(Math.abs))).toBeLessThanOrEqual(1);
  });

  it("bad options are OptionsErrors (a non-integer seed included)", () => {
    expect(() => twoSpirals({ seed: 1.5 })).toThrow(OptionsError);
    expect(() => gaussianBlobs({ classes: 0 })).toThrow(OptionsError);
    expect(() => xor({ samples: -1 })).toThrow(/samples/);
  });
});
