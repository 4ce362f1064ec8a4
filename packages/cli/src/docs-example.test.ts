/**
 * The README's example, as written: run as a program (runWorker + showStudy) against a real,
 * password-protected Redis, twice (the second run finds the study done); and its objective module
 * (the example without its last lines) run by the `fitloop` command with --checkpoints.
 */
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readmeExample, runReadmeExample } from "../../../scripts/readme-example.js";
import { systemTool } from "../../../scripts/system-tools.js";
import { PACKAGE_DIR, redisSuite, runCli } from "./processes.fixture.js";

const redisTool = systemTool("redis-server");
const SECRET = "readme-secret";

describe.skipIf(!redisTool.path)(`README${redisTool.note}`, () => {
  const suite = redisSuite(redisTool.path, SECRET, "fitloop-cli-readme-");
  const { work } = suite;

  it("the example runs as written, twice: 8 trials and the table, then nothing left to run", async () => {
    process.env["REDIS_URL"] = suite.server.url;
    try {
      const first = await runReadmeExample(PACKAGE_DIR);
      expect(first).toMatch(/^fitloop: worker \S+ joined study "blobs" \(minimize\) at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ \(prefix "readme"\): 0 of 8 trials finished$/m);
      expect([...first.matchAll(/^trial (\d+) (COMPLETE|PRUNED) value \S+ lr=\S+ units=\d+ \d+\.\d s/gm)].map((m) => Number(m[1]))).toEqual([...Array(8).keys()]);
      expect(first).toMatch(/^fitloop: worker \S+ ran 8 trials \(\d+ complete, \d+ pruned, 0 failed\); study "blobs" at \S+ \(prefix "readme"\) has 8 of 8 finished; best: trial \d+ value /m);
      expect(first).toMatch(/^study "blobs" \(minimize\): 8 trials: \d+ complete, \d+ pruned, 0 failed, 0 running, 0 waiting; 8 finished$/m);
      expect(first).toMatch(/^\*\s+\d+\s+COMPLETE/m);
      const second = await runReadmeExample(PACKAGE_DIR);
      expect(second).toMatch(/ ran 0 trials \(0 complete, 0 pruned, 0 failed\); .* has 8 of 8 finished;/);
      expect(first + second).not.toContain(SECRET);
    } finally {
      delete process.env["REDIS_URL"];
    }
  }, 120_000);

  it("its module, without the last lines, is what `fitloop tune --objective` loads (with --checkpoints)", async () => {
    const example = readmeExample(PACKAGE_DIR);
    const cut = example.indexOf("// Run a worker from a program");
    expect(cut).toBeGreaterThan(0);
    const module = join(PACKAGE_DIR, `.readme-objective-${process.pid}.ts`); // inside the package: its imports resolve
    writeFileSync(module, example.slice(0, cut));
    try {
      const base = ["--storage", suite.server.url, "--prefix", "readme-cli", "--study", "blobs"];
      const tune = await runCli(["tune", ...base, "--objective", module, "--trials", "4", "--checkpoints", join(work, "ckpt")]);
      expect(tune.code, tune.stderr).toBe(0);
      expect([...tune.stdout.matchAll(/^trial (\d+) /gm)].map((m) => Number(m[1]))).toEqual([0, 1, 2, 3]);
      const show = await runCli(["study", "show", ...base, "--json"]);
      expect(show.code, show.stderr).toBe(0);
      const study = JSON.parse(show.stdout) as { trials: { systemAttrs: { "fitloop:checkpoint"?: string } }[] };
      expect(study.trials.map((t) => t.systemAttrs["fitloop:checkpoint"])).toEqual([0, 1, 2, 3].map((n) => join(work, "ckpt", "blobs", `trial-${n}`)));
      expect(tune.stdout + tune.stderr + show.stdout + show.stderr).not.toContain(SECRET);
    } finally {
      rmSync(module, { force: true });
    }
  }, 60_000);
});
