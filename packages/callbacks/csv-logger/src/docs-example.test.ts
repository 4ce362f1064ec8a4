import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";
import { parseCsv } from "./index.js";

describe("README", () => {
  it("the example runs as written: crashed after writing epochs 2-3, resumed from epoch 1's snapshot, the CSV has each epoch once and equals the uninterrupted run's", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    expect(out).toMatch(/^crashed: plugin "Crash" threw in afterEpoch: power cut$/m);
    expect(out).toMatch(/^epochs in metrics\.csv after the crash: 0, 1, 2, 3$/m);
    expect(out).toMatch(/^metrics\.jsonl: 10 rows, steps 4 8 12 16 20 24 28 32 36 40$/m);
    expect(out).toMatch(/^identical to the uninterrupted run: true$/m);
    const path = /^written to (.+)$/m.exec(out)![1]!;
    try {
      const text = readFileSync(path, "utf8");
      expect(out).toContain(text);
      const { columns, rows } = parseCsv(text);
      expect(columns).toEqual(["epoch", "acc", "loss", "lr"]);
      expect(rows.map((r) => r["epoch"])).toEqual([0, 1, 2, 3, 4]);
      expect(rows[4]!["loss"]).toBeLessThan(rows[0]!["loss"]!); // it learned
    } finally {
      rmSync(dirname(path), { recursive: true, force: true });
    }
  });
});
