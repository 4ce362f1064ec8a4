import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../scripts/readme-example.js";

describe("README", () => {
  it("the example runs as written: report, then training on the embedded digits", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    expect(out).toMatch(/train/);
    expect(out).toMatch(/val_acc/);
  });
});
