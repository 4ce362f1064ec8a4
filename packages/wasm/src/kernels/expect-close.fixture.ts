import { expect } from "vitest";

/** Max abs error relative to the largest expected magnitude (at least `floor`). */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string, rtol = 1e-5, floor = 1e-6): void {
  expect(actual.length, label).toBe(expected.length);
  let scale = floor;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst / scale, `${label}: max abs error ${worst} vs scale ${scale}`).toBeLessThanOrEqual(rtol);
}
