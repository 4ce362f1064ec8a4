/**
 * The API in-process, on a journal file: runWorker with a module object (quiet, the tpe sampler,
 * flags over module defaults), the checks of a module's exports, a direction unlike the study's,
 * what a retried trial's line says, and showStudy on a study that is not there.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OptionsError } from "@fitloop/core";
import { TunerError, int, uniform, type TrialRecord } from "@fitloop/recipes";
import { afterAll, describe, expect, it } from "vitest";
import { CliError, checkObjectiveModule, exitCodeOf, runWorker, showStudy, studyJson, trialLine } from "./index.js";

const work = mkdtempSync(join(tmpdir(), "fitloop-cli-api-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const space = { x: uniform(-2, 2), k: int(1, 4) };
const module = {
  space,
  trials: 3,
  objective: async ({ x, k }: { x: number; k: number }, trial: { report(v: number, s: number): Promise<void> }) => {
    for (let s = 0; s < 3; s++) await trial.report(x * x + k + 1 / (s + 1), s);
    return x * x + k;
  },
};

describe("runWorker and friends", () => {
  it("runs a module object on a journal file: --trials over the module's, quiet prints only the summary, tpe sampler", async () => {
    const lines: string[] = [];
    const storage = join(work, "study.log");
    const r = await runWorker({ storage, study: "api", objective: module, trials: 12, sampler: "tpe", quiet: true, print: (l) => lines.push(l) });
    expect(r.ran.map((t) => t.number)).toEqual([...Array(12).keys()]);
    expect(r.finished).toBe(12);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^fitloop: worker \\S+ ran 12 trials \\(12 complete, 0 pruned, 0 failed\\); study "api" at ${storage.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} has 12 of 12 finished; best: trial \\d+ value \\S+ \\(x=\\S+, k=\\d\\)$`));
    const json = studyJson({ name: "api", direction: "minimize", trials: r.ran });
    expect(json.trials[r.best!.number]!.value).toBe(r.best!.value);
    const table = await showStudy({ storage, study: "api" });
    expect(table.split("\n")).toHaveLength(4 + 12);

    // the study is "minimize": asking for "maximize" is bad input (exit 2), before any trial runs
    const e = await runWorker({ storage, study: "api", objective: module, direction: "maximize", print: () => undefined }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TunerError);
    expect((e as TunerError).code).toBe("DIRECTION_MISMATCH");
    expect(exitCodeOf(e)).toBe(2);
  });

  it("checks a module's exports and the options, every problem named at once", async () => {
    const bad = () => checkObjectiveModule({ space: { lr: { kind: "float" }, n: 3 }, objective: "train", seed: 1.5, direction: "up", pruner: {}, sampler: 1 }, "m.js");
    expect(bad).toThrow(CliError);
    const message = (() => {
      try {
        bad();
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })();
    for (const part of ["`space.lr` is not a valid distribution", "`space.n` is not a distribution", "`objective` must be a function", "`seed` must be a safe integer", '`direction` must be "minimize" or "maximize"', "`pruner` must be a pruner", "`sampler` must be a sampler"]) expect(message).toContain(part);
    expect(checkObjectiveModule({ default: module }, "m.js").trials).toBe(3); // a default export object works too
    const options = await runWorker({ storage: join(work, "x.log"), study: "", objective: module, trials: 0, leaseMs: 5, sampler: "grid" as "tpe" }).catch((x: unknown) => x);
    expect(options).toBeInstanceOf(OptionsError);
    expect((options as OptionsError).issues.map((i) => i.path)).toEqual(["study", "trials", "leaseMs", "sampler"]);
    const noTrials = await runWorker({ storage: join(work, "x.log"), study: "s", objective: { space, objective: () => 1 } }).catch((x: unknown) => x);
    expect((noTrials as CliError).message).toMatch(/how many trials\? give --trials N, or export `trials`/);
    await expect(showStudy({ storage: join(work, "study.log"), study: "nope" })).rejects.toThrow(/no study named "nope" in the journal \(studies: "api"\)/);
  });

  it("a retried trial's line says whether it resumed from the checkpoint or started over", () => {
    const t = (steps: number[]): TrialRecord => ({
      id: 5, number: 5, studyId: 0, state: "COMPLETE", value: 0.5, values: [0.5], params: { x: 0.25, k: 2 }, distributions: space,
      intermediateValues: Object.fromEntries(steps.map((s) => [s, 1])), userAttrs: {}, systemAttrs: { failed_trial: 2, retry_history: [2] }, datetimeStart: null, datetimeComplete: null,
    });
    const at = { step: 12, epoch: 2 };
    expect(trialLine(t([3, 4, 5]), 1.23, at)).toBe("trial 5 COMPLETE value 0.5 x=0.25 k=2 1.2 s (retry of trial 2; resumed from checkpoint step 12)");
    expect(trialLine(t([0, 1, 2]), 1.23, at)).toBe("trial 5 COMPLETE value 0.5 x=0.25 k=2 1.2 s (retry of trial 2; started over (did not use the checkpoint at step 12))");
    expect(trialLine(t([0, 1, 2]), 1.23)).toBe("trial 5 COMPLETE value 0.5 x=0.25 k=2 1.2 s (retry of trial 2)");
  });
});
