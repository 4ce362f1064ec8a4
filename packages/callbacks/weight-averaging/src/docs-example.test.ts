import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";

describe("README", () => {
  it("the example runs as written: EMA and SWA end with a clearly lower val_loss, and the model holds the average after fit()", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    const runs = new Map([...out.matchAll(/^(plain|EMA|SWA) +val_loss ((?:[\d.]+ ?){8}) \| the model after fit: ([\d.]+)$/gm)].map((m) => [m[1]!, { epochs: m[2]!.trim().split(" ").map(Number), after: Number(m[3]) }]));
    expect([...runs.keys()]).toEqual(["plain", "EMA", "SWA"]);
    const last = (k: string) => runs.get(k)!.epochs.at(-1)!;
    expect(last("EMA")).toBeLessThan(0.8 * last("plain"));
    expect(last("SWA")).toBeLessThan(0.8 * last("plain"));
    expect(Math.max(...runs.get("EMA")!.epochs.slice(1))).toBeLessThan(0.9 * Math.min(...runs.get("plain")!.epochs)); // after its first epoch, below the raw model's best
    expect(runs.get("SWA")!.epochs.slice(0, 4)).toEqual(runs.get("plain")!.epochs.slice(0, 4)); // before start (epoch 4), validation is the raw model's
    for (const [k, r] of runs) expect(r.after, k).toBeCloseTo(r.epochs.at(-1)!, 3); // applyAtEnd: the model ends with what was validated
  });
});
