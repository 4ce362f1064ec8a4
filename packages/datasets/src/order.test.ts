import { describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fixtureLoader } from "./seed-order.fixture.js";

const run = promisify(execFile);

/** Runs the fixture in a fresh Node process (tsx, resolving workspace packages from source). */
async function childProcess(seed: number): Promise<{ order: number[]; indices: number[]; x: number[] }> {
  const tsx = createRequire(import.meta.url).resolve("tsx/cli");
  const script = fileURLToPath(new URL("./seed-order.fixture.ts", import.meta.url));
  const { stdout } = await run(process.execPath, [tsx, "--conditions=@fitloop/source", script, String(seed)], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as { order: number[]; indices: number[]; x: number[] };
}

describe("same seed, same data order and augmentation across processes", () => {
  it("a child process computes the same epoch order and the same augmented batch", async () => {
    const child = await childProcess(1234);
    const here = fixtureLoader(1234);
    expect(child.order).toEqual(Array.from(here.order(3)));
    const batch = here.hostBatch(3, 2);
    expect(child.indices).toEqual(Array.from(batch.indices));
    expect(child.x).toEqual(Array.from(batch.x)); // bit-identical after shift, rotation and noise
    const other = await childProcess(1235);
    expect(other.order).not.toEqual(child.order);
  });
});
