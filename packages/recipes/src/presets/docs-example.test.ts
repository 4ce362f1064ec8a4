import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadme } from "./docs-readme.fixture.js";

describe("README: presets", () => {
  it("the examples run as written: the wiring with its sources, a run that stops early with files written; the overrides", async () => {
    const [run = "", overrides = ""] = await runReadme("presets", dirname(fileURLToPath(import.meta.url)));
    expect(run).toMatch(/^classification preset: 9 plugins$/m);
    expect(run).toMatch(/^maxLr\s+0\.01 \(the schedule's peak\)\s+yours$/m);
    expect(run).toMatch(/^patience\s+10\s+rule by dataset size: 96 samples \(< 10,000\) -> 10$/m);
    expect(run).toMatch(/^stopped after \d+ epochs; best epoch \d+, val_loss 0\.\d+ \(its weights restored\)$/m);
    expect(run).toMatch(/^in .*fitloop-preset-example: checkpoints, metrics\.csv, report$/m);
    expect(overrides).toMatch(/^schedule\s+1cycle over 1000 steps: 1\.2e-4 -> 0\.003 at 25 % -> 1\.2e-8; beta1 0\.95 -> 0\.85 -> 0\.95\s+yours/m);
    expect(overrides).toMatch(/^patience\s+5\s+rule by dataset size: 40,000 samples/m);
    expect(overrides).toMatch(/^callbacks: Scheduler, GradClip, TerminateOnNaN, EarlyStopping, Checkpoint$/m);
    rmSync(join(tmpdir(), "fitloop-preset-example"), { recursive: true, force: true }); // the example's run directory
  });
});
