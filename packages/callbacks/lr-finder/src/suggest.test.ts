import { describe, expect, it } from "vitest";
import { gradient, minimum, slide, smoothLosses, steep, suggestAll, suggestionWindow, sweepLr, sweepLrs, valley } from "./index.js";

/**
 * Answers worked out by hand from fastai's code (fastai/callback/schedule.py: valley, steep, minimum,
 * slide), traced step by step in the comments; they also agree with a line-by-line numpy
 * transcription of those functions.
 */

// A: a clean U in log-lr. lr_i = 10^(-5 + i/4), loss_i = 1 + ((i - 12)/4)^2, i = 0..20: lowest at i = 12 (lr 1e-2).
const A = {
  lr: Array.from({ length: 21 }, (_, i) => 10 ** (-5 + i / 4)),
  loss: Array.from({ length: 21 }, (_, i) => 1 + ((i - 12) / 4) ** 2),
};

// B: what a range test looks like: flat, falling (fastest between 11 and 12), a flat bottom, rising.
// lr_i = 10^(-4 + i/6), i = 0..29.
const B = {
  lr: Array.from({ length: 30 }, (_, i) => 10 ** (-4 + i / 6)),
  loss: [...Array<number>(8).fill(2), 1.95, 1.85, 1.7, 1.5, 1.0, 0.7, 0.5, 0.4, ...Array<number>(6).fill(0.4), ...Array.from({ length: 8 }, (_, k) => 0.9 + 0.5 * k)],
};

describe("valley (fastai's default)", () => {
  it("A: the longest strictly decreasing run is 0..12 (13 points); fastai's start = end - length = -1, idx = -1 + int(13/3) + int(13/6) = 5", () => {
    expect(valley(A.lr, A.loss)).toEqual({ lr: A.lr[5], index: 5, loss: A.loss[5] });
    expect(A.lr[5]).toBeCloseTo(10 ** -3.75, 15);
  });

  it("B: one plateau point then 1.95 .. 0.4 (9 points, ending at 15; the flat bottom ties, so it does not extend it): start 6, idx = 6 + 3 + 1 = 10", () => {
    expect(valley(B.lr, B.loss)).toEqual({ lr: B.lr[10], index: 10, loss: 1.7 });
  });

  it("a longest valley of 2 ending at index 1: fastai indexes -1 (the last, largest lr); clamped to 0 here", () => {
    expect(valley([1, 2, 3, 4, 5], [2, 1, 3, 4, 5])).toEqual({ lr: 1, index: 0, loss: 2 });
  });

  it("no fall at all: index 0; no points: undefined", () => {
    expect(valley([1, 2, 3], [1, 2, 3])).toEqual({ lr: 1, index: 0, loss: 1 });
    expect(valley([], [])).toBeUndefined();
    expect(() => valley([1], [1, 2])).toThrow(RangeError);
  });
});

describe("steep", () => {
  it("A: slope (l[i+1] - l[i]) / (ln lr[i+1] - ln lr[i]) with constant ln steps; the loss differences (2(i-12)+1)/16 are most negative at i = 0", () => {
    expect(steep(A.lr, A.loss)).toEqual({ lr: A.lr[0], index: 0, loss: 10 });
  });

  it("B: the largest fall, 1.5 -> 1.0, is the segment 11 -> 12: its left end", () => {
    expect(steep(B.lr, B.loss)).toEqual({ lr: B.lr[11], index: 11, loss: 1.5 });
  });

  it("uses log-lr spacing: with uneven spacing a smaller fall over a shorter log-distance is steeper", () => {
    // segment 0: -0.2 over ln(10); segment 1: -0.1 over ln(1.1): the second is steeper
    expect(steep([1, 10, 11], [1, 0.8, 0.7])!.index).toBe(1);
    expect(steep([1], [1])).toBeUndefined();
  });
});

describe("minimum", () => {
  it("one tenth of the lr at the lowest loss; index and loss of that point (the first of ties, as torch's argmin)", () => {
    expect(minimum(A.lr, A.loss)).toEqual({ lr: A.lr[12]! / 10, index: 12, loss: 1 });
    expect(minimum(B.lr, B.loss)).toEqual({ lr: B.lr[15]! / 10, index: 15, loss: 0.4 });
    expect(minimum([], [])).toBeUndefined();
  });
});

describe("slide", () => {
  it("np.gradient: central differences inside, one-sided at the ends", () => {
    expect(gradient([1, 2, 4, 7])).toEqual([1, 1.5, 2.5, 3]);
  });

  it("B: gradients 0 on the plateau, -0.025 .. -0.4 on the fall, 0 at the bottom, 0.5 on the rise; the pair (r, r-15) slides from (29, 14) left until both are 0 at (20, 5): the last left point kept is 6", () => {
    // g: 0 (0..6), -0.025 (7), -0.075, -0.125, -0.175, -0.35, -0.4, -0.25, -0.15, -0.05 (15), 0 (16..20), 0.25 (21), 0.5 (22..29)
    // (29,14) |0.5+0.15| > 0.005 -> 14; ... (22,7) -> 7; (21,6) |0.25-0| -> 6; (20,5) |0-0| = 0: stop
    expect(slide(B.lr, B.loss)).toEqual({ lr: B.lr[6], index: 6, loss: 2 });
    expect(B.lr[6]).toBeCloseTo(1e-3, 15);
  });

  it("A: the gradients (i-12)/8 never agree 15 points apart, so it slides to the first point", () => {
    expect(slide(A.lr, A.loss)).toEqual({ lr: A.lr[0], index: 0, loss: 10 });
  });

  it("options (fastai's lr_diff, thresh, adjust_value); the loss is interpolated in log10(lr); fewer than lrDiff + 1 points: undefined (fastai raises)", () => {
    // with thresh 0.3 the pair (29, 14) already agrees: |0.5 - (-0.15)| = 0.65 > 0.3 -> 14, (28, 13) |0.5 + 0.25| -> 13, (27, 12) 0.9 -> 12,
    // (26, 11) 0.85 -> 11, (25, 10) 0.675 -> 10, (24, 9) 0.625 -> 9, (23, 8) 0.575 -> 8, (22, 7) 0.525 -> 7, (21, 6) 0.25 <= 0.3: stop at 7
    expect(slide(B.lr, B.loss, { thresh: 0.3 })!.index).toBe(7);
    const half = slide(B.lr, B.loss, { adjustValue: 10 ** (-1 / 12) })!; // half a point to the left, between 5 and 6 (both 2.0)
    expect(half.lr).toBeCloseTo(B.lr[6]! * 10 ** (-1 / 12), 15);
    expect(half.loss).toBeCloseTo(2, 12);
    const between = slide(B.lr, B.loss.map((l, i) => (i === 5 ? 3 : l)), { adjustValue: 10 ** (-1 / 12) })!; // halfway from 3 (at 5) to 2 (at 6)
    expect(between.loss).toBeCloseTo(2.5, 12);
    expect(slide(B.lr.slice(0, 15), B.loss.slice(0, 15))).toBeUndefined();
    expect(slide(B.lr.slice(0, 16), B.loss.slice(0, 16))).toBeDefined();
  });
});

describe("the points suggestions use (Learner.lr_find: recorder.losses[num_it//10:-5], cut at the first NaN)", () => {
  it("drops the first steps/10 (of the configured steps) and the last 5 recorded points", () => {
    expect(suggestionWindow(new Array<number>(100).fill(1), 100)).toEqual({ start: 10, end: 95 });
    expect(suggestionWindow(new Array<number>(60).fill(1), 100)).toEqual({ start: 10, end: 55 }); // stopped early: still num_it // 10
    expect(suggestionWindow(new Array<number>(12).fill(1), 100)).toEqual({ start: 10, end: 10 }); // nothing left
    expect(suggestionWindow(new Array<number>(6).fill(1), 6)).toEqual({ start: 0, end: 1 });
  });

  it("cuts at the first non-finite value (fastai: NaN only)", () => {
    const s = new Array<number>(100).fill(1);
    s[50] = Number.NaN;
    s[70] = Number.POSITIVE_INFINITY;
    expect(suggestionWindow(s, 100)).toEqual({ start: 10, end: 50 });
    s[50] = 1;
    expect(suggestionWindow(s, 100)).toEqual({ start: 10, end: 70 });
  });

  it("suggestAll: curve B inside a 40-point curve with steps 50 (window [5, 35)); junk outside the window is ignored; indices are the curve's", () => {
    const junk = (n: number) => Array<number>(n).fill(-100); // a minimum and a fall that would win if used
    const curve = { lr: [...[1, 2, 3, 4, 5].map((k) => 1e-5 * k), ...B.lr, ...[1, 2, 3, 4, 5].map((k) => 100 * k)], smoothed: [...junk(5), ...B.loss, ...junk(5)] };
    const s = suggestAll(curve, 50);
    expect(s.valley).toEqual({ lr: B.lr[10], index: 15, loss: 1.7 });
    expect(s.steep).toEqual({ lr: B.lr[11], index: 16, loss: 1.5 });
    expect(s.minimum).toEqual({ lr: B.lr[15]! / 10, index: 20, loss: 0.4 });
    expect(s.slide).toEqual({ lr: B.lr[6], index: 11, loss: 2 });
    expect(suggestAll({ lr: [1, 2], smoothed: [1, 1] }, 100)).toEqual({ valley: undefined, steep: undefined, minimum: undefined, slide: undefined });
  });
});

describe("the sweep and the smoothing", () => {
  it("exponential: fastai's SchedExp(start, end)(i / num_it) for i = 0 .. num_it - 1 (its test: recorder.lrs == [SchedExp(1e-7, 10)(i/100) ...])", () => {
    const lrs = sweepLrs(100, 1e-7, 10);
    expect(lrs).toHaveLength(100);
    expect(lrs[0]).toBe(1e-7);
    expect(lrs[50]).toBeCloseTo(1e-3, 15);
    expect(lrs[99]! / 10 ** (-7 + 8 * 0.99)).toBeCloseTo(1, 12); // never reaches endLr
    for (let i = 1; i < 100; i++) expect(lrs[i]! / lrs[i - 1]!).toBeCloseTo(10 ** 0.08, 12); // a constant factor per step
  });

  it("linear: fastai's SchedLin, start + (i / steps) * (end - start)", () => {
    expect(sweepLrs(4, 0.1, 0.9, "linear")).toEqual([0.1, 0.30000000000000004, 0.5, 0.7000000000000001]);
    expect(sweepLr(2, 4, 0.1, 0.9, "linear")).toBe(0.5);
  });

  it("AvgSmoothLoss: avg = lerp(loss, avg, beta) from 0, divided by 1 - beta^count", () => {
    // beta 0.5: (0.5*1)/0.5 = 1; (0.5*2 + 0.25*1)/0.75 = 1.6667; (0.5*3 + 0.25*2 + 0.125*1)/0.875 = 2.4286
    const s = smoothLosses([1, 2, 3], 0.5);
    expect(s[0]).toBe(1);
    expect(s[1]).toBeCloseTo(1.25 / 0.75, 14);
    expect(s[2]).toBeCloseTo(2.125 / 0.875, 14);
    expect(smoothLosses([5, 1], 0)).toEqual([5, 1]);
    expect(smoothLosses([3, 3, 3, 3])).toEqual([3, 3, 3, 3].map((v) => expect.closeTo(v, 12)));
  });
});
