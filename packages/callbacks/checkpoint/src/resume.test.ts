import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const tsx = join(here, "..", "..", "..", "..", "node_modules", ".bin", "tsx");
const work = mkdtempSync(join(tmpdir(), "fitloop-resume-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Result {
  step: number;
  weights: number[][];
  history: { epoch: number; logs: Record<string, number> }[];
}

/** Runs one side in its own process (a fresh tfjs, fresh modules: nothing carried over in memory). */
async function side(mode: string, dir: string): Promise<Result> {
  const out = join(work, `${mode}-${Math.random().toString(36).slice(2)}.json`);
  await run(tsx, ["--conditions=@fitloop/source", join(here, "testing", "resume-child.fixture.ts"), mode, dir, out], { cwd: join(here, ".."), timeout: 120_000 });
  return JSON.parse(readFileSync(out, "utf8")) as Result;
}

describe("resume in a fresh process", () => {
  it("K steps, checkpoint, a new process runs K more: weights and loss history bit-identical to 2K uninterrupted steps (mid-epoch stop, LR schedule, early stopping, augmentation, dropout); without the optimizer slots or the RNG it differs", async () => {
    const dir = join(work, "checkpoints");
    const [full, first] = await Promise.all([side("full", join(work, "unused")), side("first", dir)]);
    expect(first.step).toBe(15);
    const [second, noSlots, noRng] = await Promise.all([side("second", dir), side("no-slots", dir), side("no-rng", dir)]);
    expect(full.step).toBe(30);
    expect(second.step).toBe(30);
    expect(second.weights).toEqual(full.weights);
    expect(second.history).toEqual(full.history); // the resumed epoch's means included
    // negative controls: the test can fail
    expect(noSlots.weights).not.toEqual(full.weights);
    expect(noRng.weights).not.toEqual(full.weights);
  });
});
