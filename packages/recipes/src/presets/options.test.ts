import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, Trainer, getLearningRate, silentLogger } from "@fitloop/core";
import { expectNoLeaks, tinyFixture } from "@fitloop/core/testing";
import { MemoryStore, listCheckpoints } from "@fitloop/checkpoint";
import { constant } from "@fitloop/lr-schedule";
import { classification, fineTune, patienceFor, type Preset, type PresetOptions } from "./index.js";
import { buildPreset } from "./wiring.js";
import { classification as nodeClassification } from "./node.js";

const steps = { epochs: 10, stepsPerEpoch: 20 } as const;
const rowOf = (p: Preset, setting: string) => p.rows.find((r) => r.setting === setting)!;
const issues = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(OptionsError);
    return (e as OptionsError).issues.map((i) => `${i.path}: ${i.message}`).join("\n");
  }
  throw new Error("accepted");
};

describe("preset defaults and their origins", () => {
  it("classification: Adam 3e-4 as the warmup-cosine peak (5 % warmup), AdamW 0.01, clip 1, early stopping with restore, each row with its source", () => {
    const p = classification({ ...steps, data: { size: 2_000 } });
    const s = p.plugins.scheduler!;
    expect(s.lr!(0)).toBe(0);
    expect(s.lr!(10)).toBeCloseTo(3e-4, 12); // 5 % of 200 steps
    expect(s.lr!(199)).toBeLessThan(1e-6);
    expect(p.plugins.weightDecay!.options.weightDecay).toBe(0.01);
    expect(p.plugins.gradClip!.options).toMatchObject({ by: "globalNorm", max: 1 });
    expect(p.plugins.earlyStopping).toBeDefined();
    expect(rowOf(p, "maxLr").source).toMatch(/the lectures' Adam 3e-4/);
    expect(rowOf(p, "patience")).toMatchObject({ value: "10", source: expect.stringMatching(/2,000 samples \(< 10,000\) -> 10/) });
    expect(rowOf(p, "dropout").source).toMatch(/0\.2-0\.5/);
    expect(p.callbacks.map((c) => (c as { name: string }).name)).toEqual(["Scheduler", "GradClip", "WeightDecay", "TerminateOnNaN", "EarlyStopping"]);
    expect(p.trainer.optimizer).toBe(p.optimizer);
    p.dispose();
  });

  it("patience by dataset size: < 10k -> 10, < 100k -> 5, else 3; unknown -> 10; `samples` beats data.size", () => {
    expect([500, 9_999, 10_000, 99_999, 100_000, 5e6].map((n) => patienceFor(n).value)).toEqual([10, 10, 5, 5, 3, 3]);
    expect(patienceFor(undefined).value).toBe(10);
    const p = classification({ ...steps, data: { size: 500 }, samples: 50_000 });
    expect(rowOf(p, "patience").value).toBe("5");
    p.dispose();
  });

  it("1cycle: maxLr is the peak at 30 %; fineTune: Adam 3e-5, 10 % warmup, patience 3; sgd: momentum, lr 0.1, weight decay 5e-4", () => {
    const cycle = classification({ ...steps, maxLr: 0.01, schedule: "1cycle" });
    expect(cycle.plugins.scheduler!.lr!(59)).toBeCloseTo(0.01, 12);
    expect(cycle.plugins.scheduler!.momentum!(59)).toBeCloseTo(0.85, 12);
    const ft = fineTune(steps);
    expect(ft.plugins.scheduler!.lr!(20)).toBeCloseTo(3e-5, 12);
    expect(rowOf(ft, "patience").value).toBe("3");
    const sgd = classification({ ...steps, optimizer: "sgd", schedule: false });
    expect(sgd.optimizer.getClassName()).toBe("Momentum");
    expect(getLearningRate(sgd.optimizer)).toBe(0.1);
    expect(sgd.plugins.weightDecay!.options.weightDecay).toBe(5e-4);
    [cycle, ft, sgd].forEach((p) => p.dispose());
  });
});

describe("overrides field by field; false leaves a plugin out", () => {
  it("a number or a field replaces one default and keeps the others; the row says yours", () => {
    const p = classification({ ...steps, clip: 0.5, weightDecay: { exclude: [/dense/] }, earlyStopping: { minDelta: 1e-3 }, patience: 2, schedule: { kind: "warmup-cosine", warmup: 0.1, minLr: 1e-5 } });
    expect(p.plugins.gradClip!.options.max).toBe(0.5);
    expect(rowOf(p, "clip").source).toBe("yours");
    expect(p.plugins.weightDecay!.options).toMatchObject({ weightDecay: 0.01 });
    expect(p.plugins.weightDecay!.options.exclude).toHaveLength(1);
    expect(rowOf(p, "patience")).toEqual({ setting: "patience", value: "2", source: "yours" });
    expect(p.plugins.scheduler!.lr!(20)).toBeCloseTo(3e-4, 12);
    expect(p.plugins.scheduler!.lr!(200)).toBeCloseTo(1e-5, 12); // reached where the run ends (as HF's schedule)
    const byValue = classification({ ...steps, clip: { by: "value" } });
    expect(byValue.plugins.gradClip!.options).toMatchObject({ by: "value", max: 1 });
    [p, byValue].forEach((x) => x.dispose());
  });

  it("false removes each plugin; with schedule false the optimizer runs at maxLr; your optimizer and schedule are used as given", () => {
    const none = classification({ epochs: 3, schedule: false, clip: false, weightDecay: false, earlyStopping: false, terminateOnNaN: false, maxLr: 0.05 });
    expect(none.callbacks).toEqual([]);
    expect(getLearningRate(none.optimizer)).toBe(0.05);
    for (const s of ["schedule", "clip", "weightDecay", "earlyStopping", "terminateOnNaN"]) expect(rowOf(none, s).value).toBe("off");
    const mine = tf.train.adam(0.123);
    const own = classification({ epochs: 3, optimizer: mine, schedule: constant(0.01) });
    expect(own.optimizer).toBe(mine);
    expect(own.plugins.scheduler!.lr!(5)).toBe(0.01);
    own.dispose(); // yours: not disposed
    expect(() => mine.getWeights()).not.toThrow();
    none.dispose();
    mine.dispose();
  });

  it("the main entry is browser-safe: files and progress need the Node entry, a checkpoint store works", async () => {
    expect(issues(() => classification({ ...steps, dir: "runs" }))).toMatch(/^dir: writing files needs Node: import the preset from "@fitloop\/recipes\/node"/);
    expect(issues(() => classification({ ...steps, progress: true }))).toMatch(/^progress: the progress bar needs Node/);
    expect(rowOf(classification(steps), "progress").value).toBe("off: a terminal plugin");
    expect(rowOf(nodeClassification({ ...steps, progress: false }), "progress").value).toBe("off");
    const fx = tinyFixture({ samples: 32 });
    const store = new MemoryStore();
    const preset = classification({ epochs: 2, data: fx.data(8), monitor: "loss", checkpoint: { store } });
    await new Trainer({ model: fx.model, loss: "sparseCategoricalCrossentropy", logger: silentLogger, ...preset.trainer }).fit({ epochs: 2, train: fx.data(8) });
    expect((await listCheckpoints(store)).length).toBe(2);
    preset.dispose();
    fx.dispose();
  });

  it("imports no node: module and no Node-only plugin from the main entry (type imports are erased)", () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const seen = new Map<string, string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      const text = readFileSync(file, "utf8");
      seen.set(file, text);
      for (const m of text.matchAll(/^(?:import|export)(?! type)[^;]*?from\s+"(\.[^"]+)"/gm)) visit(resolve(dirname(file), m[1]!.replace(/\.js$/, ".ts")));
    };
    visit(join(here, "index.ts"));
    visit(join(here, "..", "init", "index.ts"));
    expect(seen.size).toBeGreaterThan(8);
    for (const [file, text] of seen) {
      expect(text, file).not.toMatch(/from\s+"node:/);
      expect(text, file).not.toMatch(/^import (?!type )[^;]*from "@fitloop\/(report|csv-logger|progress|checkpoint\/node)"/m);
      expect(text, file).not.toMatch(/\bprocess\./);
    }
  });
});

describe("bad options: one OptionsError naming every field", () => {
  it("the preset's own fields, and each plugin's under its key", () => {
    expect(issues(() => classification({ epochs: 0 }))).toMatch(/^epochs: must be an integer >= 1/);
    expect(issues(() => classification({ epochs: 3, patiense: 2 } as PresetOptions))).toMatch(/unknown option "patiense" \(did you mean "patience"\?\)/);
    expect(issues(() => classification({ epochs: 3, schedule: "cosine" } as unknown as PresetOptions))).toMatch(/^schedule: must be "warmup-cosine", "1cycle"/);
    expect(issues(() => classification({ epochs: 3, clip: -1 }))).toMatch(/^clip: /);
    expect(issues(() => classification({ epochs: 3 }))).toMatch(/^stepsPerEpoch: is needed for the schedule/);
    const all = issues(() => classification({ ...steps, clip: { max: -1 }, earlyStopping: { patience: 2, monitor: "score" }, patience: 3, weightDecay: { weightDecay: -1 } }));
    expect(all).toMatch(/^weightDecay\.weightDecay: .*\(WeightDecay\)$/m);
    expect(all).toMatch(/^clip\.max: must be > 0.*\(GradClip\)$/m);
    expect(all).toMatch(/^earlyStopping\.patience: is also given as patience: give one$/m);
    expect(all).toMatch(/^earlyStopping\.mode: "auto" cannot tell whether "score"/m);
    expect(issues(() => classification({ ...steps, checkpoint: { keepLast: 5 } }))).toMatch(/^checkpoint: has nowhere to write/);
  });

  it("a refused preset leaks nothing; a preset run leaks nothing", async () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) expect(() => classification({ ...steps, clip: { max: -1 } })).toThrow(OptionsError);
    expect(tf.memory().numTensors).toBe(before);
    const fx = tinyFixture({ samples: 32 });
    await expectNoLeaks(
      async () => {
        const preset = classification({ epochs: 2, data: fx.data(8), monitor: "loss", patience: 1 });
        await new Trainer({ model: fx.model, loss: "sparseCategoricalCrossentropy", logger: silentLogger, ...preset.trainer }).fit({ epochs: 2, train: fx.data(8) });
        preset.dispose();
      },
      { warmup: 1, iterations: 3 },
    );
    fx.dispose();
  });
});

describe("review fixes: contradictions and untouched state on refusal", () => {
  it("a refused preset leaves your optimizer's learning rate alone (progress needs Node, checked before maxLr is applied)", () => {
    const mine = tf.train.adam(0.01);
    expect(issues(() => classification({ epochs: 5, schedule: false, maxLr: 0.5, optimizer: mine, progress: true }))).toMatch(/^progress: the progress bar needs Node/m);
    expect(getLearningRate(mine)).toBe(0.01);
    const p = classification({ epochs: 5, schedule: false, maxLr: 0.5, optimizer: mine });
    expect(getLearningRate(mine)).toBe(0.5);
    p.dispose();
    mine.dispose();
  });

  it("file plugins are not constructed when an option is refused", () => {
    const made: string[] = [];
    const io = { checkpointStore: () => (made.push("store"), new MemoryStore()), csvLogger: () => (made.push("csv"), undefined as never), report: () => (made.push("report"), undefined as never), progress: () => (made.push("progress"), undefined as never) };
    expect(() => buildPreset("classification", { ...steps, dir: "/tmp/fitloop-never", earlyStopping: false, patience: 3 }, io)).toThrow(OptionsError);
    expect(made).toEqual([]);
  });

  it("contradictions name both fields", () => {
    expect(issues(() => classification({ ...steps, earlyStopping: false, patience: 3 }))).toMatch(/^patience: is given but earlyStopping is false/m);
    expect(issues(() => classification({ ...steps, earlyStopping: false, monitor: "val_acc" }))).toMatch(/^monitor: is given but earlyStopping is false/m);
    expect(issues(() => classification({ ...steps, maxLr: 0.1, schedule: constant(0.01) }))).toMatch(/^maxLr: is given with a custom schedule \(schedule\)/m);
    expect(issues(() => classification({ ...steps, maxLr: 1e-3, schedule: { kind: "warmup-cosine", minLr: 0.01 } }))).toMatch(/^schedule\.minLr: is 0\.01, above maxLr 0\.001/m);
    expect(issues(() => classification({ epochs: 3, stepsPerEpoch: 20, data: { batchesPerEpoch: 30 } }))).toMatch(/^stepsPerEpoch: is 20 but data\.batchesPerEpoch is 30/m);
    const sgd = tf.train.sgd(0.1);
    expect(issues(() => classification({ ...steps, optimizer: sgd, schedule: { kind: "1cycle", cycleMomentum: true } }))).toMatch(/^schedule\.cycleMomentum: is true but the optimizer \(sgd\) has no momentum/m);
    // by default the momentum cycle is left out, and describe() says so
    const p = classification({ ...steps, optimizer: sgd, schedule: "1cycle" });
    expect(rowOf(p, "schedule").value).toMatch(/no momentum cycle: your sgd optimizer has no momentum or beta1/);
    expect(p.describe()).toMatch(/no momentum cycle/);
    p.dispose();
    sgd.dispose();
  });
});
