import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { toSvg } from "@fitloop/report";
import { MemoryJournal, Study, TrialPruned, choice, formatValue, logUniform, studyPlots, studySummary, tune } from "./index.js";
import { writeStudyPlots } from "./node.js";

const dir = mkdtempSync(join(tmpdir(), "fitloop-study-plots-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function smallStudy(): Promise<Study> {
  const r = await tune({
    study: { storage: new MemoryJournal(), name: "demo" },
    space: { lr: logUniform(1e-4, 1), opt: choice(["adam", "sgd"]) },
    trials: 8,
    seed: 2,
    catchErrors: true,
    objective: async ({ lr, opt }, t) => {
      if (t.number === 5) throw new Error("diverged");
      if (t.number === 6) {
        await t.report(9, 0);
        throw new TrialPruned("worse than the median");
      }
      return Math.abs(Math.log10(lr) + 2) + (opt === "sgd" ? 0.5 : 0);
    },
  });
  return r.study;
}

describe("results", () => {
  it("studySummary: a header that counts the states, the best trial marked, every trial's state, value, parameters, seed and why it ended", async () => {
    const study = await smallStudy();
    const text = studySummary(study);
    const lines = text.split("\n");
    expect(lines[0]).toBe('study "demo" (minimize): 8 trials: 6 complete, 1 pruned, 1 failed, 0 running, 0 waiting');
    const best = study.bestTrial!;
    expect(lines[1]).toBe(`best: #${best.number} value ${formatValue(best.value)} (lr=${formatValue(best.params["lr"] as number)}, opt=${String(best.params["opt"])})`);
    expect(lines[3]).toMatch(/^\s+#\s+state\s+value\s+lr\s+opt\s+seed\s+time\s+note$/);
    expect(lines.find((l) => l.startsWith("*"))).toMatch(new RegExp(`^\\*\\s+${best.number}\\s+COMPLETE`));
    expect(text).toMatch(/ 5 +FAIL +- .*Error: diverged$/m);
    expect(text).toMatch(/ 6 +PRUNED +9 .*worse than the median$/m);
    const byValue = studySummary(study, { sortBy: "value", limit: 3 }).split("\n").slice(4);
    expect(byValue).toHaveLength(3);
    expect(byValue[0]).toMatch(/^\*/);
    expect(formatValue(0.000123)).toBe("1.23e-4");
    expect(formatValue(0.5)).toBe("0.5");
  });

  it("studyPlots: objective by trial with the best so far, objective against each parameter (log axis for a log parameter); rendered to SVG and PNG files", async () => {
    const study = await smallStudy();
    const plots = studyPlots(study);
    const history = await toSvg(plots.history!);
    expect(history).toContain("<svg");
    expect(history).toContain("trial");
    const params = await toSvg(plots.params!);
    expect(params).toContain("lr (log scale)");
    expect(params).toContain("opt");
    const written = await writeStudyPlots(study, { dir });
    expect(written.map((f) => f.slice(dir.length + 1)).sort()).toEqual(["study-history.png", "study-history.svg", "study-params.png", "study-params.svg"]);
    expect(readFileSync(join(dir, "study-history.png")).subarray(1, 4).toString()).toBe("PNG");
    const empty = studyPlots({ name: "none", direction: "minimize", trials: [] });
    expect(empty).toEqual({ history: undefined, params: undefined });
    expect(existsSync(join(dir, "study-params.svg"))).toBe(true);
  });
});
