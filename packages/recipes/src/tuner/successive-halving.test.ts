/**
 * Successive halving against Optuna 3.1: the fixture (scripts/successive-halving-reference.py) has
 * which trials Optuna's `SuccessiveHalvingPruner` pruned at which step and the `completed_rung_*`
 * attributes it wrote, for a deterministic objective; `tune` with our pruner must do the same. Then a
 * study shared by a fitloop worker and a Python Optuna worker on one journal file: each side's
 * pruner sees the rungs the other wrote, and the study ends as the Python-only one did.
 */
import { OptionsError } from "@fitloop/core";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { pythonModule } from "../../../../scripts/system-tools.js";
import { MemoryJournal, OP, Study, TrialPruned, successiveHalvingPruner, tune, type JournalStorage, type JsonValue, type Pruner, type TrialRecord } from "./index.js";
import { FileJournal } from "./node.js";
import { successiveHalvingReference } from "./successive-halving-reference.fixture.js";
import { currentRung, estimateMinResource, promotable } from "./successive-halving.js";

interface PyTrial {
  number: number;
  state: string;
  lastStep: number | null;
  value: number | null;
  rungs: { [key: string]: number };
}
interface PyConfig {
  name: string;
  options: { minResource: number | "auto"; reductionFactor: number; minEarlyStoppingRate: number; bootstrapCount: number };
  direction: "minimize" | "maximize";
  steps: number;
  /** Every trial as Optuna left it. */
  trials: PyTrial[];
  /** `[trial number, key, value]` of each SET_TRIAL_SYSTEM_ATTR record, in journal order. */
  attrRecords: [number, string, number][];
}
/** The shape of `successive-halving-reference.fixture.ts`. */
export interface SuccessiveHalvingReference {
  optuna: string;
  configs: PyConfig[];
}

const ref = successiveHalvingReference;
/** How many trials each reference run has. */
const trialCount = (c: PyConfig) => c.trials.length;

/** The script's `value(t, s)`: same float operations, same numbers. */
const value = (t: number, s: number) => ((t % 11 === 7 && s === 4) || (t % 11 === 3 && s === 2) ? Number.NaN : ((t * 37 + 11) % 29) / 29 + 1 / (s + 1) + ((t * 13 + s * 7) % 5) / 100);

async function runFitloop(storage: JournalStorage, c: PyConfig, trials: number, pruner: Pruner = successiveHalvingPruner(c.options)) {
  return tune({
    study: { storage, name: "sh" },
    direction: c.direction,
    space: {},
    trials,
    pruner,
    objective: async (_p, t) => {
      for (let s = 0; s < c.steps; s++) {
        await t.report(value(t.number, s), s);
        if (await t.shouldPrune()) throw new TrialPruned();
      }
      return value(t.number, c.steps - 1);
    },
  });
}

const asPython = (t: TrialRecord): PyTrial => {
  const steps = Object.keys(t.intermediateValues).map(Number);
  return {
    number: t.number,
    state: t.state,
    lastStep: steps.length ? Math.max(...steps) : null,
    value: t.value ?? null,
    rungs: Object.fromEntries(Object.entries(t.systemAttrs).filter(([k]) => k.startsWith("completed_rung_")).sort(([a], [b]) => (a < b ? -1 : 1))) as { [key: string]: number },
  };
};

/** `[trial number, key, value]` of every `completed_rung_*` record, in journal order. */
async function rungRecords(storage: JournalStorage, study: Study): Promise<[number, string, JsonValue][]> {
  const numberOf = new Map(study.trials.map((t) => [t.id, t.number]));
  return (await storage.readFrom(0)).flatMap((r) =>
    r.op_code === OP.SET_TRIAL_SYSTEM_ATTR ? Object.entries(r["system_attr"] as { [k: string]: JsonValue }).filter(([k]) => k.startsWith("completed_rung_")).map(([k, v]): [number, string, JsonValue] => [numberOf.get(r["trial_id"] as number)!, k, v]) : [],
  );
}

describe(`successive halving against Optuna ${ref.optuna}`, () => {
  for (const c of ref.configs) {
    it(`${c.name}: the same trials pruned at the same steps, the same completed_rung_* attributes in the same order`, async () => {
      const storage = new MemoryJournal();
      const r = await runFitloop(storage, c, trialCount(c));
      expect(r.study.trials.map(asPython)).toEqual(c.trials);
      expect(await rungRecords(storage, r.study)).toEqual(c.attrRecords);
    });
  }

  it("the rules: current rung, the auto min resource, promotion (ties, maximize, fewer than reductionFactor), bootstrap, NaN", () => {
    const t = (number: number, state: TrialRecord["state"], iv: { [s: number]: number }, attrs: { [k: string]: JsonValue } = {}): TrialRecord => ({ id: number, number, studyId: 0, state, value: undefined, values: null, params: {}, distributions: {}, intermediateValues: iv, userAttrs: {}, systemAttrs: attrs, datetimeStart: null, datetimeComplete: null });
    expect(currentRung(t(0, "RUNNING", {}, { completed_rung_0: 1, completed_rung_1: 2, completed_rung_3: 3 }))).toBe(2);
    expect(estimateMinResource([t(0, "PRUNED", { 900: 1 }), t(1, "RUNNING", { 800: 1 })])).toBeUndefined();
    expect(estimateMinResource([t(0, "COMPLETE", { 99: 1 }), t(1, "COMPLETE", {})])).toBe(1);
    expect(estimateMinResource([t(0, "COMPLETE", { 150: 1 }), t(1, "COMPLETE", { 450: 1, 10: 2 })])).toBe(4);
    expect(promotable(1, [1], 4, "minimize")).toBe(true);
    expect(promotable(2, [1, 2, 3], 4, "minimize")).toBe(false); // fewer than 4: must be the best
    expect(promotable(2, [1, 2, 3, 4, 5, 6, 7, 2], 4, "minimize")).toBe(true); // 8 // 4 = 2nd best, a tie passes
    expect(promotable(6, [1, 2, 3, 4, 5, 6, 7, 6], 4, "maximize")).toBe(true);
    expect(promotable(5, [1, 2, 3, 4, 5, 6, 7, 5], 4, "maximize")).toBe(false);

    const ctx = (trials: TrialRecord[]) => ({ direction: "minimize" as const, trials });
    // bootstrapCount 2: pruned while 2 or fewer values reached the rung, attribute written anyway
    const boot = successiveHalvingPruner({ minResource: 1, bootstrapCount: 2 });
    const me = t(5, "RUNNING", { 0: 0.5, 1: 0.4 });
    expect(boot.shouldPrune(ctx([t(0, "COMPLETE", {}, { completed_rung_0: 0.9 }), me]), me)).toEqual({ prune: true, systemAttrs: { completed_rung_0: 0.4 } });
    // several rungs in one check, written in order
    const many = successiveHalvingPruner({ minResource: 1, reductionFactor: 2 });
    const far = t(6, "RUNNING", { 8: 0.1 }); // rungs at steps 1, 2, 4, 8
    expect(many.shouldPrune(ctx([far]), far)).toEqual({ prune: false, systemAttrs: { completed_rung_0: 0.1, completed_rung_1: 0.1, completed_rung_2: 0.1, completed_rung_3: 0.1 } });
    // NaN at a rung prunes without an attribute; before the rung nothing happens
    const nan = t(7, "RUNNING", { 1: Number.NaN });
    expect(many.shouldPrune(ctx([nan]), nan)).toEqual({ prune: true, systemAttrs: {} });
    expect(successiveHalvingPruner({ minResource: 4 }).shouldPrune(ctx([nan]), nan)).toEqual({ prune: false, systemAttrs: {} });
    // auto without a COMPLETE trial: never prunes, and estimates again next time
    const auto = successiveHalvingPruner();
    const early = t(8, "RUNNING", { 5: 1 });
    expect(auto.shouldPrune(ctx([early]), early)).toEqual({ prune: false, systemAttrs: {} });
    expect(auto.shouldPrune(ctx([t(0, "COMPLETE", { 300: 0 }, { completed_rung_0: 0 }), early]), early)).toEqual({ prune: true, systemAttrs: { completed_rung_0: 1 } });
    // no report yet
    expect(many.shouldPrune(ctx([]), t(9, "RUNNING", {}))).toEqual({ prune: false, systemAttrs: {} });
    // a non-number left in another trial's attribute is not a competitor
    const odd = t(10, "RUNNING", { 1: 0.5 });
    expect(many.shouldPrune(ctx([t(1, "COMPLETE", {}, { completed_rung_0: "x" }), t(2, "COMPLETE", {}, { completed_rung_0: 0.1 }), odd]), odd)).toEqual({ prune: true, systemAttrs: { completed_rung_0: 0.5 } });
  });

  it("options are validated as Optuna validates them: an OptionsError naming the option", () => {
    expect(() => successiveHalvingPruner({ minResource: 0 })).toThrow(OptionsError);
    expect(() => successiveHalvingPruner({ minResource: "all" as never })).toThrow(/minResource/);
    expect(() => successiveHalvingPruner({ reductionFactor: 1 })).toThrow(/reductionFactor/);
    expect(() => successiveHalvingPruner({ minEarlyStoppingRate: -1 })).toThrow(/minEarlyStoppingRate/);
    expect(() => successiveHalvingPruner({ bootstrapCount: 1 })).toThrow(/bootstrapCount.*auto/);
    expect(() => successiveHalvingPruner({ bootstrapCount: 1, minResource: 2, reduction: 3 } as never)).toThrow(/reduction/);
    expect(successiveHalvingPruner({ bootstrapCount: 1, minResource: 2 }).name).toBe("successive-halving");
  });

  it("Trial.shouldPrune writes a pruner's attributes before answering; a plain boolean pruner writes nothing", async () => {
    const seen: JsonValue[] = [];
    const recording: Pruner = { name: "recording", shouldPrune: (_s, trial) => (seen.push(trial.systemAttrs["mark"] ?? null), { prune: trial.number === 1, systemAttrs: { mark: trial.number, [`step_${Object.keys(trial.intermediateValues).length}`]: true } }) };
    const storage = new MemoryJournal();
    const r = await tune({
      study: { storage, name: "s" },
      space: {},
      trials: 2,
      pruner: recording,
      objective: async (_p, t) => {
        await t.report(1, 0);
        const first = await t.shouldPrune();
        await t.report(2, 1);
        if ((await t.shouldPrune()) || first) throw new TrialPruned();
        return 0;
      },
    });
    expect(r.study.trials.map((t) => [t.state, t.systemAttrs["mark"], t.systemAttrs["step_1"], t.systemAttrs["step_2"]])).toEqual([["COMPLETE", 0, true, true], ["PRUNED", 1, true, true]]);
    expect(seen).toEqual([null, 0, null, 1]); // the second check saw what the first wrote
    const plain = await tune({ study: { storage: new MemoryJournal(), name: "s" }, space: {}, trials: 1, pruner: { name: "no", shouldPrune: () => false }, objective: async (_p, t) => (await t.report(1, 0), await t.shouldPrune(), 0) });
    expect(plain.study.trials[0]!.systemAttrs).not.toHaveProperty("mark");
  });
});

const optuna = pythonModule("optuna");
const SCRIPT = fileURLToPath(new URL("../../scripts/successive-halving-reference.py", import.meta.url));
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "fitloop-sh-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!optuna.path)(`a study shared by fitloop and Optuna workers, pruned by successive halving${optuna.note}`, () => {
  it("fitloop and Python take turns on one journal file: each side's pruner competes with the rungs the other wrote, and the study ends as the Python-only study did", async () => {
    const c = ref.configs[0]!;
    const path = join(dir, "mixed.log");
    const storage = new FileJournal(path);
    const python = (n: number) => run(optuna.path!, [SCRIPT, "run", path, "sh", JSON.stringify({ options: c.options, direction: c.direction, steps: c.steps }), String(n)], { timeout: 60_000 });
    const ranByFitloop = new Set<number>();
    const total = trialCount(c);
    for (let done = 0; done < total; ) {
      const r = await runFitloop(storage, c, Math.min(total, done + 6)); // a fresh pruner each turn, as a new process would have
      r.ran.forEach((t) => ranByFitloop.add(t.number));
      done = Math.min(total, done + 6);
      if (done < total) {
        await python(Math.min(6, total - done));
        done = Math.min(total, done + 6);
      }
    }
    const study = await Study.open({ storage, name: "sh" });
    expect(study.trials.map(asPython)).toEqual(c.trials);
    expect(await rungRecords(storage, study)).toEqual(c.attrRecords);
    expect([...ranByFitloop].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17]);
    // the sharing mattered: a trial Python ran was pruned at a rung where a fitloop trial had recorded a better value, and the other way round
    const beaten = (mine: (n: number) => boolean) =>
      study.trials.some((t) => mine(t.number) && t.state === "PRUNED" && Object.entries(t.systemAttrs).some(([k, v]) => k.startsWith("completed_rung_") && study.trials.some((o) => o.number < t.number && !mine(o.number) && typeof o.systemAttrs[k] === "number" && (o.systemAttrs[k] as number) < (v as number))));
    expect(beaten((n) => !ranByFitloop.has(n)), "Python pruned against fitloop's rungs").toBe(true);
    expect(beaten((n) => ranByFitloop.has(n)), "fitloop pruned against Python's rungs").toBe(true);
  });
});
