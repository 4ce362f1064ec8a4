import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";
import { pngSize } from "./index.js";
import { pointsOf } from "./helpers.fixture.js";

describe("README", () => {
  it("the example runs as written and writes the plots and the report", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    expect(out).toMatch(/^run completed; wrote:$/m);
    const files = [...out.matchAll(/^ {2}(\S+)$/gm)].map((m) => m[1]!);
    expect(files.map((f) => f.split("/").at(-1))).toEqual(["loss.svg", "loss.png", "metric.svg", "metric.png", "lr.svg", "lr.png", "report.html"]);
    for (const f of files) expect(existsSync(f), f).toBe(true);
    expect(pngSize(readFileSync(files[1]!))).toMatchObject({ width: expect.any(Number) });
    const html = readFileSync(files.at(-1)!, "utf8");
    expect(html).toContain('<span class="status completed">completed</span>');
    expect(html).toContain("3 gaussian blobs, 512 + 128 points");
    // training and validation loss in one plot, 8 epochs of 16 batches
    const loss = readFileSync(files[0]!, "utf8");
    expect([pointsOf(loss, "training (per batch)"), pointsOf(loss, "training (epoch mean)"), pointsOf(loss, "validation")]).toEqual([128, 8, 8]);
  });
});
