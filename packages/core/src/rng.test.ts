import { describe, expect, it } from "vitest";
import { Rng, epochPermutation } from "./index.js";

/** xoshiro128** as in Blackman & Vigna's reference C code, on uint32 words (a plain twin of `Rng`). */
function referenceDraws(state: [number, number, number, number], count: number): number[] {
  const s = Uint32Array.from(state);
  const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0);
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
  }
  return out;
}

describe("Rng (xoshiro128**)", () => {
  it("draws the reference generator's numbers, from small states and from words with the top bit set", () => {
    expect(referenceDraws([1, 2, 3, 4], 4)).toEqual([11520, 0, 5927040, 70819200]);
    for (const state of [
      [1, 2, 3, 4],
      [0xffffffff, 0x80000000, 1, 0x7fffffff],
      [0x9e3779b9, 0xdeadbeef, 0x80000001, 0xfffffffe],
    ] as [number, number, number, number][]) {
      const rng = Rng.fromState(state);
      const got = Array.from({ length: 10000 }, () => rng.nextUint32());
      expect(got).toEqual(referenceDraws(state, 10000));
      expect(rng.getState().every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff), "the state stays four uint32 words").toBe(true);
    }
  });

  it("next() and int() are the uint32 draw scaled, and a saved state continues the same draws", () => {
    const a = new Rng(2024);
    const b = Rng.fromState(a.getState());
    for (let i = 0; i < 1000; i++) {
      const u = b.nextUint32();
      expect(a.int(7)).toBe(Math.floor((u / 2 ** 32) * 7));
    }
    expect(a.getState()).toEqual(b.getState());
    expect(Array.from(epochPermutation(10, 3, 2))).toEqual(Array.from(epochPermutation(10, 3, 2)));
  });
});
