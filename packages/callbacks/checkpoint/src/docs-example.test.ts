import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";

describe("README", () => {
  it("the example runs as written: interrupted, resumed from the latest checkpoint, identical to the uninterrupted run", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    expect(out).toMatch(/saved "step=5-loss=[\d.]+" \(every 5 steps\)[\s\S]*saved "step=8-loss=[\d.]+" \(every 1 epochs\)[\s\S]*saved "step=10-loss=[\d.]+" \(every 5 steps\)[\s\S]*saved "step=12-loss=[\d.]+" \(where the run stopped\)/);
    expect(out).toMatch(/^latest checkpoint: step=12-loss=\d\.\d{3} \(step 12, epoch 1\)$/m);
    expect(out).toMatch(/^resumed at step 12, finished at step 32; identical to the uninterrupted run: true$/m);
  });
});
