import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";

describe("README", () => {
  it("the example runs as written: clipping engages on the outliers' steps and the logs show it", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    const epochs = [...out.matchAll(/^epoch (\d) loss ([\d.]+) grad_norm ([\d.]+) clipped (\d+)% of steps$/gm)];
    expect(epochs).toHaveLength(8);
    const clipped = epochs.map((m) => Number(m[4]));
    expect(clipped[0]).toBe(100); // the first steps all have norms above 5
    expect(clipped[7]).toBeLessThan(100); // later only the outliers' batches do
    expect(Number(epochs[7]![2])).toBeLessThan(Number(epochs[0]![2]) / 4); // it still learns
    expect(out).toMatch(/^non-finite steps skipped: 0$/m);
  });
});
