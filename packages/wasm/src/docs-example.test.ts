import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../scripts/readme-example.js";

describe("README", () => {
  it("the example runs as written: a CNN trains with model.fit on wasm", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    const m = /^backend wasm, accuracy ([\d.]+) -> ([\d.]+)$/m.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m![2])).toBeGreaterThan(0.95);
  });
});
