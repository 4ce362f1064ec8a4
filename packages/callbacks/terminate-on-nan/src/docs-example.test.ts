import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";

describe("README", () => {
  it("the example runs as written: the divergence is caught before it reaches the weights", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    expect(out).toMatch(/^stopped - TerminateOnNaN: (loss|grad_norm) is (NaN|Infinity|-Infinity) at step \d+ \(epoch \d+, batch \d+\); that step was not applied$/m);
    expect(out).toMatch(/^weights finite after the stop: true$/m);
  });
});
