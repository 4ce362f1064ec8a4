import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";

describe("README", () => {
  it("the example runs as written: it prints the selection, and the decayed run has smaller kernels and a lower validation loss", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    expect(out).toMatch(/^WeightDecay: 2 of 6 variables decay \(2,112 of 2,305 parameters\); weight decay 0\.1 x the step's learning rate$/m);
    expect(out).toMatch(/^variable\s+shape\s+params\s+decays\s+why$/m);
    const rows = [...out.matchAll(/^(\S+)\s+(\S+)\s+([\d,]+)\s+(yes|no)\s+(.+)$/gm)].map((m) => `${m[2]} ${m[4]} ${m[5]}`);
    expect(rows).toEqual(["32x64 yes Dense kernel", "64 no bias", "64 no normalization scale (gamma)", "64 no normalization shift (beta)", "64x1 yes Dense kernel", "1 no bias"]);
    const norm = /^kernel norm: adam ([\d.]+), adamw ([\d.]+)$/m.exec(out)!;
    expect(Number(norm[2])).toBeLessThan(0.9 * Number(norm[1]));
    const val = /^val_loss: adam ([\d.]+), adamw ([\d.]+) \(weight_decay logged: 0\.1\)$/m.exec(out)!;
    expect(Number(val[2])).toBeLessThan(Number(val[1]));
  });
});
