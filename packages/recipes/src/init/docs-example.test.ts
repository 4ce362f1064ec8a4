import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadme } from "../presets/docs-readme.fixture.js";

describe("README: initialisation", () => {
  it("the examples run as written: the report, and the first loss moves to the priors' entropy; the pure functions' variances", async () => {
    const [example = "", pure = ""] = await runReadme("init", dirname(fileURLToPath(import.meta.url)));
    expect(example).toMatch(/^initialize: scheme auto, seed 42: 9 of 9 variables set in 4 layers$/m);
    expect(example).toMatch(/^hidden\/kernel\s+16x64\s+he normal\s+16\/64\s+0\.3536\s+relu \(layer relu\) -> He$/m);
    const first = Number(/^first loss after initialize: ([\d.]+)$/m.exec(example)![1]);
    const after = /^first loss after priorBiasInit: ([\d.]+) \(the priors' entropy is ([\d.]+)\)$/m.exec(example)!;
    expect(first).toBeGreaterThan(1);
    expect(Math.abs(Number(after[1]) - Number(after[2]))).toBeLessThan(0.01);
    expect(pure).toMatch(/^fans 576\/1152; He variance 0\.003\d+ \(formula 0\.00347\); Glorot 0\.007\d+ \(0\.00752\); orthogonal 0\.00781 \(0\.00781\)$/m);
  });
});
