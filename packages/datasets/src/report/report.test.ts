import { describe, expect, it } from "vitest";
import { dataReport, formatReport, fromArrays, noisyRegression, renderAscii, toPgm, type ArrayDataset } from "../index.js";

/** 3x3 images: class 0 is a vertical bar, class 1 a horizontal bar, class 2 a dot (imbalanced). */
function bars(): ArrayDataset {
  const v = [0, 1, 0, 0, 1, 0, 0, 1, 0];
  const h = [0, 0, 0, 1, 1, 1, 0, 0, 0];
  const d = [0, 0, 0, 0, 1, 0, 0, 0, 0];
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < 8; i++) (x.push(v.map((p) => p * (1 + i / 10))), y.push(0));
  for (let i = 0; i < 3; i++) (x.push(h.map((p) => p * (1 + i / 10))), y.push(1));
  x.push(d);
  y.push(2);
  return fromArrays({ x, y, sampleShape: [3, 3], numClasses: 3, classNames: ["vbar", "hbar", "dot"] });
}

describe("dataReport", () => {
  it("counts classes and their imbalance, and draws one sample per class", () => {
    const r = dataReport(bars());
    const s = r.splits[0]!;
    expect(s.classes!.counts).toEqual([8, 3, 1]);
    expect(s.classes!.imbalance).toBe(8);
    expect(s.samples.map((p) => [p.index, p.label])).toEqual([[0, "vbar"], [8, "hbar"], [11, "dot"]]);
    expect(renderAscii([0, 1, 0, 0, 1, 0, 0, 1, 0], { h: 3, w: 3, c: 1 })).toEqual([" @ ", " @ ", " @ "]);
    expect(r.warnings.join("\n")).toMatch(/imbalanced \(largest \/ smallest = 8\.0\)/);
  });

  it("per-feature mean / std / min / max", () => {
    const ds = fromArrays({ x: [[1, 10], [3, 10], [5, 10]], y: [0, 1, 0], numClasses: 2 });
    const f = dataReport(ds).splits[0]!.features;
    expect(Array.from(f.mean)).toEqual([3, 10]);
    expect(f.std[0]).toBeCloseTo(Math.sqrt(8 / 3), 10);
    expect([Array.from(f.min), Array.from(f.max), f.constant]).toEqual([[1, 10], [5, 10], 1]);
    expect(f.overall.mean).toBeCloseTo(39 / 6, 10);
  });

  it("finds exact duplicates within a split, conflicting labels, and duplicates across splits", () => {
    const train = fromArrays({ x: [[1, 2], [3, 4], [1, 2], [5, 6], [1, 2], [3, 4]], y: [0, 1, 0, 1, 1, 1], numClasses: 2 });
    const test = fromArrays({ x: [[9, 9], [3, 4], [5, 6.5]], y: [0, 1, 1], numClasses: 2 });
    const r = dataReport({ train, test });
    const d = r.splits[0]!.duplicates;
    expect([d.groups, d.extraCopies, d.conflicting]).toEqual([2, 3, 1]);
    expect(d.examples).toEqual([{ indices: [0, 2, 4], conflictingLabels: true }, { indices: [1, 5], conflictingLabels: false }]);
    expect(r.crossSplit).toEqual([{ a: "train", b: "test", count: 1, examples: [[1, 1]] }]);
    expect(r.warnings.join("\n")).toMatch(/test: 1 samples also occur in train \(leakage/);
    expect(r.warnings.join("\n")).toMatch(/conflicting labels/);
  });

  it("counts NaN and Inf (raw data built with allowNonFinite)", () => {
    const ds = fromArrays({ x: [[0, 1], [NaN, 1], [Infinity, NaN], [2, 2]], y: [0, 0, 0, 0], numClasses: 1, allowNonFinite: true });
    const s = dataReport(ds).splits[0]!;
    expect(s.nonFinite).toEqual({ nan: 2, inf: 1, samples: 2, firstIndex: 1 });
    expect(Array.from(s.features.mean)).toEqual([1, 4 / 3]); // statistics skip the non-finite values
  });

  it("regression targets get statistics instead of class counts; unscaled features are flagged", () => {
    const r = dataReport(noisyRegression({ samples: 50, seed: 1 }));
    expect(r.splits[0]!.classes).toBeUndefined();
    expect(r.splits[0]!.targets!.overall.std).toBeGreaterThan(0);
    const raw = fromArrays({ x: [[0], [255], [128]], y: [0, 1, 0], numClasses: 2 });
    expect(dataReport(raw).warnings.join("\n")).toMatch(/not normalised/);
  });

  it("formatReport prints every section; toPgm writes a viewable P5 image", () => {
    const text = formatReport(dataReport({ train: bars(), test: bars() }));
    for (const part of ["== train: 12 samples of shape [3, 3]", "classes (3)", "vbar", "features (9)", "NaN: 0, Inf: 0", "exact duplicates", "#0 vbar", "train / test: 12", "Warnings:"]) {
      expect(text).toContain(part);
    }
    const pgm = toPgm([0, 0.5, 1, 1], { h: 2, w: 2, c: 1 });
    expect(new TextDecoder().decode(pgm.subarray(0, 11))).toBe("P5\n2 2\n255\n");
    expect(Array.from(pgm.subarray(11))).toEqual([0, 128, 255, 255]);
  });
});
