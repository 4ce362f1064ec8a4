import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";

describe("README", () => {
  it("the example runs as written: one optimizer step per group, the schedule sized in optimizer steps, and it learns", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    const epochs = [...out.matchAll(/^epoch (\d) loss ([\d.]+) acc ([\d.]+) effective_batch ([\d.]+) lr ([\d.e+-]+)$/gm)];
    expect(epochs).toHaveLength(6);
    // 7 groups of 4 x 32 and one of 2 x 32 per epoch
    for (const m of epochs) expect(Number(m[4])).toBe(120);
    expect(Number(epochs[5]![2])).toBeLessThan(Number(epochs[0]![2]) / 2);
    expect(Number(epochs[5]![3])).toBeGreaterThan(Math.max(0.8, Number(epochs[0]![3]) + 0.2)); // ~0.86 from ~0.56
    // the rate set before the last step of each epoch (printed to 3 digits): 0.01 * (1 - step / 48), step = 8 * epoch + 7
    epochs.forEach((m, e) => {
      const expected = 0.01 * (1 - (8 * e + 7) / 48);
      expect(Math.abs(Number(m[5]) - expected) / expected).toBeLessThan(5e-3);
    });
    expect(out).toMatch(/^48 optimizer steps \(48 planned\) over 180 micro-batches$/m);
  });
});
