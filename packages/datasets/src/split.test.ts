import { describe, expect, it } from "vitest";
import { DataError, OptionsError } from "@fitloop/core";
import { apportion, fromArrays, splitDataset, type ArrayDataset } from "./index.js";

/** Imbalanced classes, ordered by class (as the embedded MNIST files are). */
function ordered(counts: number[]): ArrayDataset {
  const y = counts.flatMap((c, k) => new Array<number>(c).fill(k));
  return fromArrays({ x: y.map((_, i) => [i]), y, numClasses: counts.length });
}

const countsOf = (ds: ArrayDataset, k: number) => Array.from({ length: k }, (_, c) => Array.from(ds.y).filter((v) => v === c).length);

describe("splitDataset", () => {
  const ds = ordered([500, 300, 150, 50]);

  it("splits are disjoint, cover the data, and have the requested sizes", () => {
    const s = splitDataset(ds, { fractions: { train: 0.7, validation: 0.2, test: 0.1 }, seed: 1 });
    expect([s.train.size, s.validation.size, s.test.size]).toEqual([700, 200, 100]);
    const all = [...s.indices.train, ...s.indices.validation, ...s.indices.test].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    // rows really are the indexed samples (x = index)
    expect(Array.from(s.test.x)).toEqual(Array.from(s.indices.test));
  });

  it("stratified by class: every split keeps each class's share", () => {
    const s = splitDataset(ds, { fractions: { train: 0.8, validation: 0.1, test: 0.1 }, seed: 2 });
    expect(countsOf(s.train, 4)).toEqual([400, 240, 120, 40]);
    expect(countsOf(s.validation, 4)).toEqual([50, 30, 15, 5]);
    expect(countsOf(s.test, 4)).toEqual([50, 30, 15, 5]);
  });

  it("without stratification the class shares drift", () => {
    const shares = [1, 2, 3, 4, 5].map((seed) => {
      const s = splitDataset(ordered([50, 50]), { fractions: { a: 0.5, b: 0.5 }, seed, stratify: false });
      expect(s.a.size).toBe(50);
      return countsOf(s.a, 2)[0];
    });
    expect(shares.some((c) => c !== 25)).toBe(true);
  });

  it("seeded: same seed same split, another seed another split", () => {
    const f = { train: 0.9, test: 0.1 };
    const a = splitDataset(ds, { fractions: f, seed: 5 });
    expect(Array.from(splitDataset(ds, { fractions: f, seed: 5 }).indices.test)).toEqual(Array.from(a.indices.test));
    expect(Array.from(splitDataset(ds, { fractions: f, seed: 6 }).indices.test)).not.toEqual(Array.from(a.indices.test));
  });

  it("an empty split is a DataError naming it; bad fractions and seeds are OptionsErrors", () => {
    const small = ordered([3, 3]);
    expect(() => splitDataset(small, { fractions: { train: 0.95, test: 0.05 } })).toThrow(DataError);
    expect(() => splitDataset(small, { fractions: { train: 0.95, test: 0.05 } })).toThrow(/split "test" is empty/);
    expect(() => splitDataset(ds, { fractions: { train: 0.8, test: 0.3 } })).toThrow(/sum to 1/);
    expect(() => splitDataset(ds, { fractions: { train: 1.2, test: -0.2 } })).toThrow(OptionsError);
    expect(() => splitDataset(ds, { fractions: { train: 0.5, test: 0.5 }, seed: 0.5 })).toThrow(/seed: must be an integer/);
  });

  it("regression data is split at random (no classes to stratify)", () => {
    const reg = fromArrays({ x: Array.from({ length: 20 }, (_, i) => [i]), y: Array.from({ length: 20 }, (_, i) => i / 10) });
    const s = splitDataset(reg, { fractions: { train: 0.75, test: 0.25 }, seed: 1 });
    expect([s.train.size, s.test.size]).toEqual([15, 5]);
    expect(s.test.y).toBeInstanceOf(Float32Array);
  });

  it("apportion rounds by largest remainder and always sums to n", () => {
    expect(apportion(10, [0.33, 0.33, 0.34])).toEqual([3, 3, 4]);
    expect(apportion(7, [0.5, 0.5]).reduce((a, b) => a + b)).toBe(7);
  });
});
