import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const tsx = join(here, "..", "node_modules", ".bin", "tsx");
const work = mkdtempSync(join(tmpdir(), "fitloop-demo-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs the CLI as the README does (through `pnpm start -- ...`, so with the `--`). */
async function demo(...args: string[]): Promise<string> {
  const { stdout } = await run(tsx, ["--conditions=@fitloop/source", join(here, "cli.ts"), "--", ...args], { cwd: join(here, ".."), timeout: 60_000, env: { ...process.env, CI: "true" } });
  return stdout;
}
const number = (stdout: string, re: RegExp) => Number(re.exec(stdout)?.[1]);
const printedPath = (stdout: string, label: string) => new RegExp(`^${label}:\\s+(\\S+)`, "m").exec(stdout)?.[1];

describe("demo CLI (short configuration: MLP, 2 epochs)", () => {
  it("train runs the recipe, is interrupted after epoch 1, and resume ends where an uninterrupted run ends", async () => {
    const quick = ["--model", "mlp", "--epochs", "2"];
    const straightDir = join(work, "straight");
    const runDir = join(work, "interrupted");
    // The uninterrupted run and the interrupted one run side by side.
    const [straight, first] = await Promise.all([demo("train", ...quick, "--out", straightDir), demo("train", ...quick, "--out", runDir, "--stop-after", "1")]);

    expect(straight).toMatch(/10000 embedded MNIST digits \(8000 train \/ 2000 held out, stratified, seed 42\); backend wasm/);
    expect(straight).toMatch(/overall: PASS/); // the sanity checks ran
    // at the top of its range the loss may blow up a few steps before the last (it depends on the last bits of the GEMM: FMA or not)
    expect(straight).toMatch(/LR finder: (completed after 100 steps|diverged after (9[0-9]) steps); suggestions valley/);
    expect(straight).toMatch(/completed after 2 of 2 epochs/);
    expect(number(straight, /held-out accuracy ([\d.]+) %/)).toBeGreaterThan(85);
    for (const label of ["report", "csv log", "tensorboard", "checkpoints", "confusion"]) {
      const path = printedPath(straight, label);
      expect(path, label).toBeDefined();
      expect(existsSync(path!), `${label}: ${path}`).toBe(true);
    }

    expect(first).toMatch(/stopped after 1 of 2 epochs/);
    expect(first).toMatch(/interrupted: continue with `resume/);
    const resumed = await demo("resume", runDir);
    expect(resumed).toMatch(/resuming .* at epoch 2\/2/);
    expect(resumed).toMatch(/completed after 2 of 2 epochs/);
    expect(number(resumed, /held-out accuracy ([\d.]+) %/)).toBeGreaterThan(85);
    // Ends where the uninterrupted run ends.
    expect(number(resumed, /by val_loss ([\d.]+)/)).toBe(number(straight, /by val_loss ([\d.]+)/));
    expect(number(resumed, /held-out accuracy ([\d.]+) %/)).toBe(number(straight, /held-out accuracy ([\d.]+) %/));

    const report = await demo("report", runDir);
    expect(existsSync(printedPath(report, "report")!)).toBe(true);
  }, 120_000);
});
