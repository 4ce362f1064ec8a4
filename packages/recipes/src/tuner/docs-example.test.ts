import { execFile } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { readmePart } from "../presets/docs-readme.fixture.js";

const here = dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);

/** The first ```ts block of the README's tuner part, run as a user would (node + tsx, the package's own dependencies). */
async function runExample(): Promise<string> {
  const text = readmePart("tuner");
  const code = /```ts\n([\s\S]*?)```/.exec(text)![1]!;
  const file = join(here, `.readme-example-${process.pid}.ts`); // inside the package, so "@fitloop/recipes" resolves to itself
  writeFileSync(file, code);
  try {
    // from source, sibling packages' files (checkpoint's @inject parameters) need the decorator setting of the repo's tsconfig
    const env = { ...process.env, TSX_TSCONFIG_PATH: join(here, "..", "..", "..", "..", "tsconfig.check.json") };
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--conditions=@fitloop/source", file], { cwd: join(here, "..", ".."), timeout: 120_000, env });
    return stdout;
  } finally {
    rmSync(file, { force: true });
  }
}

describe("README: tuner", () => {
  it("the example runs as written: 12 trials, some pruned, a table with the best marked, the plots written", async () => {
    const out = await runExample();
    const trials = [...out.matchAll(/^trial (\d+) (COMPLETE|PRUNED|FAIL) /gm)];
    expect(trials.map((m) => Number(m[1]))).toEqual([...Array(12).keys()]);
    expect(trials.some((m) => m[2] === "PRUNED")).toBe(true);
    expect(out).toMatch(/^study "blobs" \(minimize\): 12 trials: \d+ complete, \d+ pruned, 0 failed, 0 running, 0 waiting$/m);
    expect(out).toMatch(/^\*\s+\d+\s+COMPLETE/m);
    const lr = Number(/^best lr (\S+)$/m.exec(out)![1]);
    expect(lr).toBeGreaterThan(1e-3); // tiny learning rates cannot fit in 10 epochs
    const files = [...out.matchAll(/^wrote (.+)$/gm)].map((m) => m[1]!);
    expect(files.map((f) => f.split("/").pop()).sort()).toEqual(["study-history.png", "study-history.svg", "study-params.png", "study-params.svg"]);
    for (const f of files) expect(existsSync(f)).toBe(true);
    rmSync(dirname(files[0]!), { recursive: true, force: true });
  }, 150_000);
});
