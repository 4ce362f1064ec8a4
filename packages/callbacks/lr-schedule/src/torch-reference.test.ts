import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  cosineAnnealingLR,
  cosineAnnealingWarmRestarts,
  exponentialLR,
  linearLR,
  multiStepLR,
  oneCycleLR,
  polynomialLR,
  preview,
  stepLR,
  type Schedule,
} from "./index.js";

/**
 * Values recorded from the real PyTorch schedulers (see `source` in the fixture and
 * scripts/torch-reference.py): `lr[s]` is `param_groups[0]['lr']` before the s-th
 * `optimizer.step(); scheduler.step()`, i.e. the rate the s-th update used.
 */
interface TorchCase {
  id: string;
  scheduler: string;
  optimizer: string;
  baseLr: number;
  options: Record<string, unknown>;
  lr: number[];
  momentum?: number[];
}
const fixture = JSON.parse(readFileSync(new URL("./torch-reference.fixture.json", import.meta.url), "utf8")) as { source: string; cases: TorchCase[] };

/** PyTorch's keyword to ours: `T_max` -> `tMax`, `pct_start` -> `pctStart` (the port-a-config rule). */
const camel = (k: string) => k.split("_").map((p, i) => (i === 0 ? p.toLowerCase() : p[0]!.toUpperCase() + p.slice(1))).join("");
const ported = (c: TorchCase) => Object.fromEntries(Object.entries(c.options).map(([k, v]) => [camel(k), v]));

function ours(c: TorchCase): { lr: Schedule; momentum?: Schedule | undefined } {
  const o = ported(c);
  const withBase = { baseLr: c.baseLr, ...o } as never;
  switch (c.scheduler) {
    case "CosineAnnealingLR":
      return { lr: cosineAnnealingLR(withBase) };
    case "CosineAnnealingWarmRestarts":
      return { lr: cosineAnnealingWarmRestarts(withBase) };
    case "OneCycleLR":
      return oneCycleLR(o as never);
    case "StepLR":
      return { lr: stepLR(withBase) };
    case "MultiStepLR":
      return { lr: multiStepLR(withBase) };
    case "ExponentialLR":
      return { lr: exponentialLR(withBase) };
    case "PolynomialLR":
      return { lr: polynomialLR(withBase) };
    case "LinearLR":
      return { lr: linearLR(withBase) };
    default:
      throw new Error(`no mapping for ${c.scheduler}`);
  }
}

/** 1e-6 relative, with an absolute floor for values that are exactly 0 in PyTorch. */
function expectClose(actual: number[], expected: number[], label: string): void {
  expect(actual.length, label).toBe(expected.length);
  actual.forEach((a, s) => {
    const e = expected[s]!;
    if (Math.abs(a - e) > 1e-6 * Math.abs(e) + 1e-15) expect.fail(`${label}: step ${s}: ours ${a}, PyTorch ${e}`);
  });
}

describe("schedules match PyTorch's schedulers (values recorded from torch 1.13)", () => {
  it("the fixture is what the tests think it is", () => {
    expect(fixture.source).toMatch(/^PyTorch 1\.13/);
    expect(fixture.cases.map((c) => c.scheduler)).toEqual(expect.arrayContaining(["OneCycleLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "StepLR", "MultiStepLR", "ExponentialLR", "PolynomialLR", "LinearLR"]));
    expect(fixture.cases).toHaveLength(19);
  });

  it.each(fixture.cases.map((c) => [c.id, c] as const))("%s: every step to 1e-6 relative", (id, c) => {
    const s = ours(c);
    expectClose(preview(s.lr, c.lr.length), c.lr, `${id} lr`);
    const cycles = c.scheduler === "OneCycleLR" && c.options["cycle_momentum"] !== false;
    if (cycles) expectClose(preview(s.momentum!, c.momentum!.length), c.momentum!, `${id} momentum`);
    else expect(s.momentum, id).toBeUndefined(); // no momentum schedule: PyTorch leaves the optimizer's value alone
  });

  it("the worked example: cosine from 1e-3 to 0 over 100 epochs gives 8.5e-4 at 25 and 5e-4 at 50", () => {
    const s = cosineAnnealingLR({ baseLr: 1e-3, tMax: 100 });
    expect(s(25)).toBeCloseTo(8.5355e-4, 8);
    expect(s(50)).toBeCloseTo(5e-4, 15);
    expect(s(100)).toBe(0);
  });
});
