import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../scripts/readme-example.js";

describe("README", () => {
  it("the example runs as written and trains", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    expect(out).toMatch(/beforeBatch/); // describeLoop() printed
    expect(out).toMatch(/^completed \{/m);
    const acc = Number(/^completed \{[\s\S]*?acc: ([\d.]+)/m.exec(out)?.[1]);
    expect(acc).toBeGreaterThan(0.9); // the blobs are learnable

  });
});
