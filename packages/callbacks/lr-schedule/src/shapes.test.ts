import { describe, expect, it } from "vitest";
import { OptionsError } from "@fitloop/core";
import {
  constant,
  cosineAnnealingLR,
  cosineAnnealingWarmRestarts,
  exponentialWarmup,
  inverseSqrt,
  linearWarmup,
  makeSchedule,
  multiStepLR,
  oneCycleLR,
  preview,
  product,
  sequence,
  stepLR,
  warmupStableDecay,
} from "./index.js";

const close = (a: number[], b: number[]) => a.forEach((v, i) => expect(v, `step ${i}`).toBeCloseTo(b[i]!, 12));

describe("shapes PyTorch does not have, against their formulas", () => {
  it("linear warmup: start + (peak - start) * t / steps, then peak", () => {
    close(preview(linearWarmup({ peak: 1, steps: 4 }), 7), [0, 0.25, 0.5, 0.75, 1, 1, 1]);
    close(preview(linearWarmup({ start: 0.2, peak: 1, steps: 2 }), 4), [0.2, 0.6, 1, 1]);
  });

  it("exponential warmup: a constant factor per step from start to peak", () => {
    const v = preview(exponentialWarmup({ start: 1e-4, peak: 1e-1, steps: 3 }), 5);
    close(v, [1e-4, 1e-3, 1e-2, 1e-1, 1e-1]);
  });

  it("inverse square root (fairseq inverse_sqrt): linear warmup, then baseLr * sqrt(warmup / t)", () => {
    const s = inverseSqrt({ baseLr: 1e-3, warmupSteps: 4 });
    close(preview(s, 5), [0, 2.5e-4, 5e-4, 7.5e-4, 1e-3]);
    expect(s(16)).toBeCloseTo(5e-4, 15); // sqrt(4 / 16) = 1/2
    expect(s(400)).toBeCloseTo(1e-4, 15);
  });

  it("warmup-stable-decay with linear, cosine and 1-sqrt decays", () => {
    const base = { start: 0, peak: 1, final: 0.1, warmupSteps: 2, stableSteps: 3, decaySteps: 4 };
    close(preview(warmupStableDecay({ ...base, decayShape: "linear" }), 11), [0, 0.5, 1, 1, 1, 1, 0.775, 0.55, 0.325, 0.1, 0.1]);
    const cos = warmupStableDecay({ ...base, decayShape: "cosine" });
    expect(cos(7)).toBeCloseTo(0.1 + 0.9 * 0.5, 12); // half-way: (1 + cos(pi/2)) / 2
    const sqrt = warmupStableDecay({ ...base, decayShape: "sqrt" });
    expect(sqrt(6)).toBeCloseTo(0.1 + 0.9 * (1 - Math.sqrt(0.25)), 12);
    expect(sqrt.totalSteps).toBe(9);
  });

  it("constant, and the description names the shape and its options", () => {
    expect(preview(constant(0.3), 3)).toEqual([0.3, 0.3, 0.3]);
    expect(cosineAnnealingLR({ baseLr: 0.1, tMax: 10 }).description).toBe("cosineAnnealingLR(baseLr=0.1, tMax=10, etaMin=0)");
  });
});

describe("where we deviate from PyTorch on purpose (pinned)", () => {
  it("cosine annealing holds etaMin after tMax (PyTorch's curve rises again)", () => {
    const s = cosineAnnealingLR({ baseLr: 0.1, tMax: 10, etaMin: 0.01 });
    expect(preview(s, { from: 10, to: 15 })).toEqual([0.01, 0.01, 0.01, 0.01, 0.01]);
  });

  it("1cycle holds its final values after totalSteps (PyTorch raises)", () => {
    const { lr, momentum } = oneCycleLR({ maxLr: 0.1, totalSteps: 10 });
    expect(lr(9)).toBeCloseTo(0.1 / 25 / 1e4, 18);
    expect(lr(50)).toBe(lr(9));
    expect(momentum!(50)).toBe(0.95);
  });

  it("1cycle takes epochs x stepsPerEpoch as PyTorch does, and refuses an empty phase (PyTorch divides by zero)", () => {
    expect(preview(oneCycleLR({ maxLr: 1, epochs: 4, stepsPerEpoch: 25 }).lr, 100)).toEqual(preview(oneCycleLR({ maxLr: 1, totalSteps: 100 }).lr, 100));
    expect(() => oneCycleLR({ maxLr: 1, totalSteps: 3, pctStart: 0.3 })).toThrow(/phase 1 of 2 would be empty with pctStart=0.3 and 3 steps/);
  });

  it("warm restarts are exact at every restart, also far out (integer cycle arithmetic)", () => {
    const s = cosineAnnealingWarmRestarts({ baseLr: 0.1, t0: 5, tMult: 2 });
    for (const restart of [0, 5, 15, 35, 75, 155, 5 * (2 ** 20 - 1)]) expect(s(restart), `restart at ${restart}`).toBe(0.1);
  });
});

describe("composition", () => {
  it("sequence: warmup then cosine, each part counting its own steps", () => {
    const s = sequence([linearWarmup({ peak: 1e-3, steps: 5 }), cosineAnnealingLR({ baseLr: 1e-3, tMax: 10 })], [5]);
    const cos = cosineAnnealingLR({ baseLr: 1e-3, tMax: 10 });
    close(preview(s, 5), [0, 2e-4, 4e-4, 6e-4, 8e-4]);
    close(preview(s, { from: 5, to: 16 }), preview(cos, 11));
    expect(s.totalSteps).toBe(15);
    expect(s.description).toMatch(/^sequence\(linearWarmup\(.*\), @5 cosineAnnealingLR\(/);
  });

  it("sequence of three with two boundaries, product of schedules", () => {
    const s = sequence([constant(1), constant(2), constant(3)], [2, 4]);
    expect(preview(s, 6)).toEqual([1, 1, 2, 2, 3, 3]);
    const p = product(stepLR({ baseLr: 1, stepSize: 2, gamma: 0.5 }), linearWarmup({ peak: 1, steps: 2 }));
    close(preview(p, 5), [0, 0.5, 0.5, 0.5, 0.25]);
  });

  it("a user-made schedule composes too", () => {
    const halving = makeSchedule("halving", undefined, (t) => 2 ** -t);
    expect(preview(product(constant(8), halving), 4)).toEqual([8, 4, 2, 1]);
  });
});

describe("bad options: one OptionsError naming every problem and what is accepted", () => {
  const problems = (fn: () => unknown): string[] => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(OptionsError);
      return (e as OptionsError).issues.map((i) => `${i.path}: ${i.message}`);
    }
    throw new Error("expected an OptionsError");
  };

  it("lists every bad option at once", () => {
    const p = problems(() => cosineAnnealingLR({ baseLr: -1, tMax: 0.5, etaMin: Number.NaN }));
    expect(p).toHaveLength(3);
    expect(p.join("\n")).toMatch(/baseLr: must be >= 0/);
    expect(p.join("\n")).toMatch(/tMax: must be a positive integer/);
    expect(p.join("\n")).toMatch(/etaMin: must be a finite number/);
  });

  it("a typo'd option is not silently ignored: it is named with the accepted names", () => {
    const p = problems(() => cosineAnnealingLR({ baseLr: 0.1, tMax: 10, T_max: 10 } as never));
    expect(p).toEqual(["T_max: unknown option \"T_max\" (did you mean \"tMax\"?); accepted: baseLr, tMax, etaMin"]);
  });

  it("1cycle: totalSteps or epochs x stepsPerEpoch, sane momenta and factors", () => {
    expect(problems(() => oneCycleLR({ maxLr: 0.1 }))).toEqual(["totalSteps: is required (or give both epochs and stepsPerEpoch, as PyTorch)"]);
    expect(problems(() => oneCycleLR({ maxLr: 0.1, totalSteps: 10, epochs: 2, stepsPerEpoch: 5 }))).toEqual(["totalSteps: give totalSteps or epochs and stepsPerEpoch, not both"]);
    const p = problems(() => oneCycleLR({ maxLr: 0, totalSteps: 100, pctStart: 1, baseMomentum: 0.99, annealStrategy: "cosine" as "cos", divFactor: 0 }));
    expect(p.join("\n")).toMatch(/maxLr: must be > 0/);
    expect(p.join("\n")).toMatch(/pctStart: must be in \(0, 1\)/);
    expect(p.join("\n")).toMatch(/annealStrategy: must be "cos" or "linear"/);
    expect(p.join("\n")).toMatch(/divFactor: must be > 0/);
  });

  it("other shapes, composition, preview and steps", () => {
    expect(problems(() => multiStepLR({ baseLr: 1, milestones: [] }))).toEqual(["milestones: must list at least one step"]);
    expect(problems(() => multiStepLR({ baseLr: 1, milestones: [3, -1, 2.5] }))).toHaveLength(2);
    expect(problems(() => exponentialWarmup({ peak: 1, steps: 10, start: 0 }))[0]).toMatch(/start: must be > 0/);
    expect(problems(() => cosineAnnealingWarmRestarts({ baseLr: 1, t0: 10, tMult: 1.5 }))[0]).toMatch(/tMult: must be an integer >= 1/);
    expect(problems(() => warmupStableDecay({ peak: 1, warmupSteps: 1, stableSteps: 1, decaySteps: 1, decayShape: "exp" as "linear" }))[0]).toMatch(/decayShape/);
    expect(problems(() => sequence([constant(1), constant(2)], [])).join()).toMatch(/boundaries: must have one step per junction: 1 value/);
    expect(problems(() => sequence([constant(1), constant(2), constant(3)], [4, 4])).join()).toMatch(/increasing positive integers, got \[4, 4\]/);
    expect(problems(() => sequence([constant(1), ((t: number) => t) as never], [2])).join()).toMatch(/schedules: must be a non-empty array of schedules/);
    expect(problems(() => product()).join()).toMatch(/one or more schedules/);
    expect(problems(() => preview(constant(1), -1)).join()).toMatch(/steps: must be a count/);
    expect(problems(() => constant(1)(-1)).join()).toMatch(/step: must be a non-negative integer/);
    expect(problems(() => constant(1)(1.5)).join()).toMatch(/step: must be a non-negative integer/);
    expect(problems(() => constant(Number.POSITIVE_INFINITY)).join()).toMatch(/v: must be a finite number/);
  });
});
