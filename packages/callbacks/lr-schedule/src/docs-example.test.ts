import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";

describe("README", () => {
  it("the example runs as written: warmup, cosine, plateau on top, and the blobs are learnt", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    expect(out).toMatch(/^planned: 0\.00e\+0 2\.00e-2 1\.94e-2 /m); // warmup from 0 to the peak at step 8, then the cosine
    const epochs = [...out.matchAll(/^epoch (\d+) lr ([\d.e+-]+) val_loss ([\d.]+) val_acc ([\d.]+)$/gm)];
    expect(epochs).toHaveLength(10);
    const lrs = epochs.map((m) => Number(m[2]));
    expect(lrs[0]).toBeCloseTo(0.0175, 4); // the warmup's last step (7/8 of the peak)
    expect(lrs[9]).toBeLessThan(lrs[1]!); // annealed
    expect(Number(epochs[9]![4])).toBeGreaterThan(0.9);
  });
});
