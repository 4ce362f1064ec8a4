import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelStep, OptionsError, ORDER, Trainer, silentLogger, type Callback, type Logger } from "@fitloop/core";
import { countDeviceReads, expectNoLeaks, expectRefused, expectRejected, failingPlugins, tinyFixture, weightsOf } from "@fitloop/core/testing";
import { WeightDecay, WeightDecayError, type WeightDecayOptions } from "./index.js";
import { lrList, maxAbsDiff, maxRelError, trainDense } from "./harness.fixture.js";

/** Every variable's values right before the WeightDecay's beforeUpdate and right after it (= before applyGradients). */
function aroundDecay(): Callback[] & { pairs: { step: number; before: number[][]; after: number[][] }[] } {
  const pairs: { step: number; before: number[][]; after: number[][] }[] = [];
  const first: Callback = { name: "BeforeDecay", order: -1e9, beforeUpdate: (ctx) => void pairs.push({ step: ctx.state.step, before: weightsOf(ctx.model), after: [] }) };
  const last: Callback = { name: "AfterDecay", order: 1e9, beforeUpdate: (ctx) => void (pairs.at(-1)!.after = weightsOf(ctx.model)) };
  return Object.assign([first, last], { pairs });
}

/** after / before per element, or NaN where `before` is 0. */
const ratios = (p: { before: number[][]; after: number[][] }) => p.before.map((w, i) => w.map((v, j) => p.after[i]![j]! / v));
const capture = () => {
  const lines: { level: string; message: string }[] = [];
  const logger: Logger = { debug() {}, info: (m: string) => void lines.push({ level: "info", message: m }), warn: (m: string) => void lines.push({ level: "warn", message: m }), error() {} };
  return { lines, logger };
};

describe("against L2 regularization in the loss", () => {
  it("plain SGD: decoupled decay wd equals an L2 term (wd / 2) * ||w||^2, to float tolerance (the known equivalence)", async () => {
    const wd = 0.05;
    const decoupled = await trainDense(tf.train.sgd(0.1), [new WeightDecay({ weightDecay: wd })]);
    const l2 = await trainDense(tf.train.sgd(0.1), [], { l2: wd / 2 }); // tfjs's l2 adds l2 * sum(w^2): gradient wd * w
    const none = await trainDense(tf.train.sgd(0.1), []);
    expect(maxAbsDiff(decoupled.steps, l2.steps)).toBeLessThan(1e-6);
    expect(maxAbsDiff(decoupled.steps, none.steps)).toBeGreaterThan(1e-3); // and the decay did something
  });

  it("Adam: AdamW is not Adam + L2 (the L2 gradient is rescaled by Adam's denominator), by a clear margin", async () => {
    const wd = 0.1;
    const adamw = await trainDense(tf.train.adam(0.05, 0.9, 0.99, 1e-8), [new WeightDecay({ weightDecay: wd })]);
    const adamL2 = await trainDense(tf.train.adam(0.05, 0.9, 0.99, 1e-8), [], { l2: wd / 2 });
    const adam = await trainDense(tf.train.adam(0.05, 0.9, 0.99, 1e-8), []);
    const shiftW = maxAbsDiff(adamw.steps, adam.steps);
    const shiftL2 = maxAbsDiff(adamL2.steps, adam.steps);
    expect(maxAbsDiff(adamw.steps, adamL2.steps)).toBeGreaterThan(0.5 * shiftW);
    expect(shiftW).toBeGreaterThan(1e-3);
    expect(shiftL2).toBeGreaterThan(1e-3);
    // momentum couples L2 into the velocity too: SGDW and SGD + L2 part ways as well
    const sgdw = await trainDense(tf.train.momentum(0.1, 0.9), [new WeightDecay({ weightDecay: wd })]);
    const sgdL2 = await trainDense(tf.train.momentum(0.1, 0.9), [], { l2: wd / 2 });
    expect(maxRelError(sgdw.steps, sgdL2.steps)).toBeGreaterThan(1e-3);
  });
});

describe("each applied step: w <- w * (1 - lr_t * wd_t), kernels only", () => {
  it("follows the step's learning rate (set by a schedule in beforeBatch) and a scheduled wd by the step counter", async () => {
    const lrs = [0.1, 0.05, 0.2, 0.01, 0.3, 0.07];
    const wds = (step: number) => 0.1 + 0.1 * step;
    const probe = aroundDecay();
    await trainDense(tf.train.adam(0.1), [lrList(lrs), new WeightDecay({ weightDecay: wds }), ...probe]);
    expect(probe.pairs.map((p) => p.step)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const p of probe.pairs) {
      const [kernel, bias] = ratios(p);
      kernel!.forEach((r) => expect(r).toBeCloseTo(1 - lrs[p.step]! * wds(p.step), 6));
      expect(p.after[1]).toEqual(p.before[1]); // the bias is untouched
      expect(bias).toHaveLength(3);
    }
  });

  it("a skipped step (ctx.skipStep) and a cancelled one (CancelStep) do not decay and do not advance the schedule", async () => {
    const asked: number[] = [];
    const frozen: { batch: number; before: number[][]; after: number[][] }[] = [];
    const skipper: Callback = {
      name: "Skipper",
      order: ORDER.GUARD,
      beforeBatch: (ctx) => void ([1, 3].includes(ctx.state.globalBatch) && frozen.push({ batch: ctx.state.globalBatch, before: weightsOf(ctx.model), after: [] })),
      beforeStep: (ctx) => {
        if (ctx.state.globalBatch === 1) ctx.skipStep("test skip");
        if (ctx.state.globalBatch === 3) throw new CancelStep("test cancel");
      },
      afterBatch: (ctx) => void ([1, 3].includes(ctx.state.globalBatch) && (frozen.at(-1)!.after = weightsOf(ctx.model))),
    };
    const decay = new WeightDecay({ weightDecay: (step) => (asked.push(step), 0.1) });
    const { steps, result } = await trainDense(tf.train.sgd(0.1), [decay, skipper]);
    expect(result.state.step).toBe(4); // 6 batches, 2 not applied
    expect(asked).toEqual([0, 1, 2, 3]);
    expect(steps).toHaveLength(4);
    expect(frozen.map((f) => f.batch)).toEqual([1, 3]);
    for (const f of frozen) expect(f.after).toEqual(f.before);
    expect(result.state.history.map((h) => h.logs["weight_decay"])).toEqual([0.1, 0.1]);
  });

  it("default selection on a model with BatchNorm: kernels scale by exactly the factor; biases, gamma and beta are left alone", async () => {
    const fx = tinyFixture({ samples: 16, withBatchNormAndDropout: true });
    const probe = aroundDecay();
    await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.5), loss: "sparseCategoricalCrossentropy", seed: 1, logger: silentLogger, callbacks: [new WeightDecay({ weightDecay: 0.04 }), ...probe] }).fit({ epochs: 1, train: fx.data(8) });
    const names = fx.model.weights.map((w) => w.originalName.split("/").pop());
    expect(names).toEqual(["kernel", "bias", "gamma", "beta", "kernel", "bias", "moving_mean", "moving_variance"]);
    for (const p of probe.pairs) {
      ratios(p).forEach((r, i) => {
        if (names[i] === "kernel") r.forEach((x) => expect(x).toBeCloseTo(1 - 0.5 * 0.04, 6));
        else expect(p.after[i]).toEqual(p.before[i]);
      });
    }
    expect(probe.pairs).toHaveLength(2);
    fx.dispose();
  });
});

describe("layers frozen during the run", () => {
  it("a layer frozen mid-run (layer.trainable = false) stops decaying from that step on; the others keep decaying", async () => {
    const fx = tinyFixture({ samples: 16 });
    const first = fx.model.layers[0]!;
    // by variable, not by model.getWeights(): freezing moves a layer's weights to the end of that list
    const [kernel1, , kernel2] = fx.model.weights.map((w) => w.read() as tf.Variable) as [tf.Variable, tf.Variable, tf.Variable];
    const pairs: { step: number; before: number[][]; after: number[][] }[] = [];
    const read = () => [kernel1, kernel2].map((v) => Array.from(v.dataSync()));
    const probe: Callback[] = [
      { name: "BeforeDecay", order: -1e9, beforeUpdate: (ctx) => void pairs.push({ step: ctx.state.step, before: read(), after: [] }) },
      { name: "AfterDecay", order: 1e9, beforeUpdate: () => void (pairs.at(-1)!.after = read()) },
    ];
    const freeze: Callback = { name: "Freeze", beforeEpoch: (ctx) => void (ctx.state.epoch === 1 && (first.trainable = false)) };
    await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.5), loss: "sparseCategoricalCrossentropy", seed: 1, logger: silentLogger, callbacks: [freeze, new WeightDecay({ weightDecay: 0.04 }), ...probe] }).fit({ epochs: 2, train: fx.data(8) });
    expect(pairs.map((p) => p.step)).toEqual([0, 1, 2, 3]);
    for (const p of pairs) {
      const [r1, r2] = ratios(p) as [number[], number[]];
      r1.forEach((x) => (p.step >= 2 ? expect(x).toBe(1) : expect(x).toBeCloseTo(1 - 0.5 * 0.04, 6)));
      r2.forEach((x) => expect(x).toBeCloseTo(1 - 0.5 * 0.04, 6));
    }
    fx.dispose();
  });
});

describe("logs, messages and cost", () => {
  it("logs weight_decay per applied step; one info line with the counts at beforeFit; warns once for a large value", async () => {
    const { lines, logger } = capture();
    const { result } = await trainDense(tf.train.sgd(0.1), [new WeightDecay({ weightDecay: 0.5 })], { logger });
    expect(result.state.batchLogs["weight_decay"]).toBe(0.5);
    expect(lines).toEqual([
      { level: "warn", message: expect.stringMatching(/^WeightDecay: weightDecay 0\.5 is large for decoupled decay: .*AdamW's default is 0\.01/) },
      { level: "info", message: expect.stringMatching(/^WeightDecay: 1 of 2 variables decay \(12 of 15 parameters\); weight decay 0\.5 x the step's learning rate/) },
    ]);
    const scheduled = capture();
    await trainDense(tf.train.sgd(0.1), [new WeightDecay({ weightDecay: (s) => (s >= 2 ? 0.4 : 0.01), log: "wd" })], { logger: scheduled.logger });
    expect(scheduled.lines.filter((l) => l.level === "warn").map((l) => l.message)).toEqual([expect.stringMatching(/weightDecay 0\.4 \(at step 2\) is large/)]);
    const quiet = await trainDense(tf.train.sgd(0.1), [new WeightDecay({ weightDecay: 0.01, log: false })]);
    expect(quiet.result.state.batchLogs).not.toHaveProperty("weight_decay");
  });

  it("adds no device read: one per step with or without it", async () => {
    const fx = tinyFixture({ samples: 32 });
    const perStep: number[] = [];
    const reads = countDeviceReads();
    let start = 0;
    const bracket: Callback = { name: "Bracket", order: -1e9, beforeBatch: () => void (start = reads.count), afterBatch: () => void perStep.push(reads.count - start) };
    const fit = (callbacks: Callback[]) => new Trainer({ model: fx.model, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", callbacks, logger: silentLogger }).fit({ epochs: 1, train: fx.data(8) });
    await fit([bracket]);
    await fit([bracket, new WeightDecay({ weightDecay: 0.05 }), lrList([0.01, 0.02, 0.03, 0.04])]);
    reads.stop();
    expect(perStep).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    fx.dispose();
  });
});

describe("bad options and bad scheduled values", () => {
  it("one OptionsError naming every bad option", () => {
    const err = expectRefused(() => new WeightDecay({ weightDecay: -0.1, include: [5], exclude: "dense", predicate: 3, log: 1, weigthDecay: 1 } as never), OptionsError, "INVALID_OPTIONS", [
      /weightDecay: must be a finite number >= 0 .* got -0\.1/,
      /include\.0: must be a layer or variable name/,
      /exclude: must be an array/,
      /predicate: must be a function/,
      /log: must be the log name/,
      /unknown option "weigthDecay" \(did you mean "weightDecay"\?\)/,
    ]);
    expect(err.issues).toHaveLength(6);
  });

  it.each([
    ["NaN", { weightDecay: Number.NaN }, /weightDecay: must be a finite number >= 0 .* got NaN/],
    ["Infinity", { weightDecay: Number.POSITIVE_INFINITY }, /weightDecay: must be a finite number >= 0 .* got Infinity/],
    ["a string", { weightDecay: "0.01" }, /weightDecay: must be a number >= 0 or a function \(step\) => number, got string/],
    ["null", { weightDecay: null }, /weightDecay: must be a number >= 0 or a function .* got null/],
    ["missing", {}, /weightDecay: is required/],
    ["an empty name", { weightDecay: 0.1, exclude: [""] }, /exclude\.0: must be a layer or variable name/],
    ["an empty log name", { weightDecay: 0.1, log: "" }, /log: must be the log name/],
  ])("refuses %s, naming the option", (_, options, culprit) => {
    expectRefused(() => new WeightDecay(options as WeightDecayOptions), OptionsError, "INVALID_OPTIONS", culprit);
  });

  it("a pattern that matches nothing: an OptionsError at beforeFit listing the variables; nothing changes", async () => {
    const fx = tinyFixture({ samples: 16 });
    const trainer = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [new WeightDecay({ weightDecay: 0.1, exclude: ["dense_99", /bias/] })] });
    await trainer.fit({ epochs: 1, train: fx.data(16) }).catch(() => undefined); // warm-up: the first fit makes the trainer's own tensors
    const names = fx.model.trainableWeights.map((w) => w.name);
    await expectRejected(() => trainer.fit({ epochs: 1, train: fx.data(16) }), OptionsError, "INVALID_OPTIONS", ['exclude.0: "dense_99" matches no layer or trainable variable', ...names], { model: fx.model });
    fx.dispose();
  });

  it("a schedule that returns NaN, a negative value or a non-number: a WeightDecayError naming the step, before that step changes anything", async () => {
    for (const [bad, shown] of [[Number.NaN, "NaN"], [-1, "-1"], ["0.1", "string"]] as const) {
      let good: number[][] = [];
      const keep: Callback = { name: "Keep", beforeBatch: (ctx) => void (ctx.state.step === 2 && (good = weightsOf(ctx.model))) };
      const fx = tinyFixture({ samples: 32 });
      const decay = new WeightDecay({ weightDecay: (s) => (s === 2 ? (bad as number) : 0.1) });
      const err = await new Trainer({ model: fx.model, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [decay, keep] }).fit({ epochs: 1, train: fx.data(8) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WeightDecayError);
      expect(err).toMatchObject({ code: "INVALID_WEIGHT_DECAY", step: 2 });
      expect((err as Error).message).toBe(`WeightDecay: the weightDecay schedule gave ${shown} at step 2; it must return a finite number >= 0`);
      expect(weightsOf(fx.model)).toEqual(good);
      fx.dispose();
    }
  });

  it("learningRate * weightDecay >= 1 would zero or flip the weights: refused at the first step, nothing changed, no tensor left", async () => {
    const fx = tinyFixture({ samples: 16 });
    const trainer = new Trainer({ model: fx.model, optimizer: tf.train.sgd(2), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [new WeightDecay({ weightDecay: 0.5 })] });
    await trainer.fit({ epochs: 1, train: fx.data(16) }).catch(() => undefined);
    const err = await expectRejected(() => trainer.fit({ epochs: 1, train: fx.data(16) }), WeightDecayError, "INVALID_WEIGHT_DECAY", "learningRate * weightDecay is 1 (2 * 0.5) at step 0", { model: fx.model });
    expect(err.step).toBe(0);
    fx.dispose();
  });
});

describe("no tensor leaks", () => {
  it("constant and scheduled, sgd and adam: on success, with a throw in every hook of another plugin, on cancel, on a bad scheduled value", async () => {
    for (const [optimizer, weightDecay] of [[() => tf.train.sgd(0.1), 0.05], [() => tf.train.adam(0.01), (s: number) => 0.05 / (1 + s)]] as const) {
      const fx = tinyFixture({ samples: 16, withBatchNormAndDropout: true });
      const opt = optimizer();
      const run = (extra: Callback[], wd: WeightDecayOptions["weightDecay"] = weightDecay) =>
        new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", seed: 3, callbacks: [new WeightDecay({ weightDecay: wd }), lrList([0.1, 0.05, 0.02, 0.01]), ...extra], logger: silentLogger }).fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) });
      await expectNoLeaks(() => run([]));
      for (const { plugin: failing } of failingPlugins()) await expectNoLeaks(() => run([failing]).catch(() => undefined), { warmup: 1, iterations: 2 });
      await expectNoLeaks(() => run([], (s) => (s === 1 ? Number.NaN : 0.1)).catch(() => undefined));
      opt.dispose();
      fx.dispose();
    }
  });
});
