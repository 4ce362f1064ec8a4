import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelEpoch, CancelFit, OptionsError, ORDER, StateError, silentLogger, Trainer, type Callback, type DataSource, type RunSnapshot, type StateDict, type TrainerStateDict } from "@fitloop/core";
import { expectNoLeaks, expectRefused, expectRejected, failingPlugins, stateWithPlugins, type TinyFixture } from "@fitloop/core/testing";
import { mlp, stream } from "./harness.fixture.js";
import { GradAccumulation, optimizerSteps } from "./index.js";

describe("options", () => {
  it("bad options are one OptionsError naming each option, thrown by the constructor (before any work)", () => {
    const bad: [unknown, string[]][] = [
      [{ steps: 0 }, ["steps: must be an integer >= 1"]],
      [{ steps: 2.5 }, ["steps: must be an integer >= 1"]],
      [{ steps: "4" }, ["steps: must be an integer >= 1"]],
      [{}, ["steps: must be an integer >= 1"]],
      [{ steps: 4, partial: "last" }, ['partial: must be "step"']],
      [{ steps: 4, stepz: 2 }, ['unknown option "stepz"', "accepted: steps, partial, name, stateKey"]],
      [{ steps: -1, partial: 1, name: "" }, ["steps: must be", "partial: must be", "name: must be a non-empty string"]],
    ];
    for (const [options, culprits] of bad) expectRefused(() => new GradAccumulation(options as never), OptionsError, "INVALID_OPTIONS", culprits);
    expect(new GradAccumulation({ steps: 4 }).options).toEqual({ steps: 4, partial: "step" });
  });

  it("optimizerSteps: ceil or floor of batches / steps per epoch, and an OptionsError for what cannot be counted", () => {
    expect(optimizerSteps({ epochs: 3, batchesPerEpoch: 7, steps: 4 })).toBe(6);
    expect(optimizerSteps({ epochs: 3, batchesPerEpoch: 7, steps: 4, partial: "drop" })).toBe(3);
    expect(optimizerSteps({ epochs: 2, batchesPerEpoch: 8, steps: 4, partial: "drop" })).toBe(4);
    expect(optimizerSteps({ epochs: 5, batchesPerEpoch: 3, steps: 1 })).toBe(15);
    expect(optimizerSteps({ epochs: 5, batchesPerEpoch: 3, steps: 8, partial: "drop" })).toBe(0);
    expectRefused(() => optimizerSteps({ epochs: 1.5, batchesPerEpoch: -1, steps: 0, partial: "x" } as never), OptionsError, "INVALID_OPTIONS", ["epochs:", "batchesPerEpoch:", "steps:", "partial:"]);
    expectRefused(() => optimizerSteps({ epochs: 1, batchesPerEpoch: Number.NaN, steps: 4 }), OptionsError, "INVALID_OPTIONS", "batchesPerEpoch: must be an integer >= 0");
  });
});

/** A real mid-group state (2 micro-batches of 16 in a group of 4) from the MLP of the tests. */
async function midGroupState(): Promise<{ group: StateDict; snapshot: RunSnapshot }> {
  const fx = mlp(112);
  let snapshot: RunSnapshot | undefined;
  const saver: Callback = { name: "Saver", batchCheckpoint: async (ctx) => void (ctx.state.globalBatch === 2 && (snapshot = structuredClone(await ctx.snapshot()))) };
  await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [new GradAccumulation({ steps: 4 }), saver], logger: silentLogger }).fit({ epochs: 1, train: fx.data(16) });
  fx.dispose();
  return { group: snapshot!.trainer.plugins["grad-accumulation"]!, snapshot: snapshot! };
}

type Sum = { name: string; shape: number[]; values: Float32Array };
const withSums = (g: StateDict, edit: (sums: Sum[]) => unknown[]): StateDict => ({ ...g, sums: edit(structuredClone(g["sums"] as Sum[])) as never });

describe("saved state", () => {
  it("each kind of bad state is a StateError naming the problem; the plugin keeps the state it had", async () => {
    const { group } = await midGroupState();
    const p = new GradAccumulation({ steps: 4 });
    p.loadStateDict(group);
    const cases: [string, unknown, string | RegExp][] = [
      ["not an object", null, "must be { microBatches, samples, sums }, got null"],
      ["an array", [], "got an array of 0"],
      ["unknown key", { ...group, extra: 1 }, "extra: unknown key"],
      ["missing key", { microBatches: 2, samples: 32 }, "sums: missing"],
      ["negative index", { ...group, microBatches: -1 }, "microBatches: must be an integer >= 0, got -1"],
      ["fractional index", { ...group, microBatches: 1.5 }, "microBatches: must be an integer >= 0, got 1.5"],
      ["NaN index", { ...group, microBatches: Number.NaN }, "microBatches: must be an integer >= 0, got NaN"],
      ["index >= N", { ...group, microBatches: 4 }, "microBatches: is 4, but a group has 4 micro-batches (steps)"],
      ["negative samples", { ...group, samples: -16 }, "samples: must be an integer >= 0, got -16"],
      ["NaN samples", { ...group, samples: Number.NaN }, "samples: must be an integer >= 0, got NaN"],
      ["infinite samples", { ...group, samples: Number.POSITIVE_INFINITY }, "samples: must be an integer >= 0, got Infinity"],
      ["fewer samples than micro-batches", { ...group, samples: 1 }, "samples: is 1, fewer than the 2 micro-batches"],
      ["empty group with samples", { microBatches: 0, samples: 32, sums: [] }, "microBatches: is 0 (no group in progress), but samples is 32"],
      ["group without sums", { ...group, sums: [] }, "sums: is empty, but 2 micro-batches were accumulated"],
      ["sums not an array", { ...group, sums: {} }, "sums: must be an array of { name, shape, values }, got object"],
      ["a sum not an object", withSums(group, (s) => [...s.slice(1), 3]), "sums[3]: must be { name, shape, values }, got 3"],
      ["a sum without a name", withSums(group, (s) => s.map((x, i) => (i === 1 ? { ...x, name: "" } : x))), 'sums[1].name: must be the gradient\'s variable name, got ""'],
      ["a bad shape", withSums(group, (s) => s.map((x, i) => (i === 0 ? { ...x, shape: [4, -16] } : x))), "sums[0].shape: must be an array of integers >= 0"],
      ["values a plain array", withSums(group, (s) => s.map((x, i) => (i === 2 ? { ...x, values: Array.from(x.values) } : x))), "sums[2].values: must be a Float32Array, got an array of 48"],
      ["values through JSON.stringify", withSums(group, (s) => s.map((x, i) => (i === 2 ? { ...x, values: JSON.parse(JSON.stringify(x.values)) as unknown } : x))), "store states with encodeState/decodeState"],
      ["values of another type", withSums(group, (s) => s.map((x, i) => (i === 3 ? { ...x, values: new Int32Array(3) } : x))), "sums[3].values: must be a Float32Array, got a Int32Array"],
      ["values cut short", withSums(group, (s) => s.map((x, i) => (i === 0 ? { ...x, values: x.values.slice(1) } : x))), "sums[0].values: has 63 values, but its shape [4, 16] holds 64"],
      ["a name twice", withSums(group, (s) => s.map((x, i) => (i === 3 ? { ...x, name: s[1]!.name } : x))), "appears twice"],
      ["an unknown key in a sum", withSums(group, (s) => s.map((x, i) => (i === 0 ? { ...x, dtype: "float32" } : x))), "sums[0].dtype: unknown key"],
    ];
    for (const [label, state, culprit] of cases) {
      const e = expectRefused(() => p.loadStateDict(state as StateDict), StateError, "STATE_MISMATCH", ["GradAccumulation: the saved state is invalid", culprit]);
      expect(e.issues.length, label).toBeGreaterThan(0);
      expect(p.stateDict(), label).toEqual(group);
    }
    // sums may hold NaN: a poisoned micro-batch is a real state (the group's step is where guards catch it)
    p.loadStateDict(withSums(group, (s) => s.map((x, i) => (i === 0 ? { ...x, values: x.values.map(() => Number.NaN) } : x))));
    expect(p.accumulated).toEqual({ microBatches: 2, samples: 32 });
  });

  it("sums that do not fit the model, or a group that would span epochs, are refused when the run starts, before any step", async () => {
    const { group } = await midGroupState();
    const at = (batchIndex: number, plugin: StateDict): TrainerStateDict => {
      const s = stateWithPlugins({ "grad-accumulation": plugin });
      return { ...s, train: { ...s.train, batchIndex, globalBatch: batchIndex, cursor: { epoch: 0, batchIndex } } };
    };
    const fx = mlp(112);
    const opt = tf.train.sgd(0.1); // made outside the refused calls: its learning-rate scalar is a tensor
    const fit = (state: TrainerStateDict) => () => {
      const t = new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [new GradAccumulation({ steps: 4 })], logger: silentLogger });
      t.loadStateDict(state);
      return t.fit({ epochs: 1, train: fx.data(16) });
    };
    const refused: [StateDict, number, string[]][] = [
      [withSums(group, (s) => s.slice(0, 3)), 2, ["the saved gradient sums do not match the model's trainable weights", "sums: 3 sums saved, the model has 4 trainable weights"]],
      [withSums(group, (s) => s.map((x, i) => (i === 2 ? { ...x, name: "decoder/kernel" } : x))), 2, ['sums[2].name: is "decoder/kernel", but trainable weight 2 is']],
      [withSums(group, (s) => s.map((x, i) => (i === 0 ? { ...x, shape: [16, 4] } : x))), 2, ["sums[0].shape: is [16, 4], but", "is [4, 16]"]],
      [group, 1, ["the saved group does not fit the run's position", "2 micro-batches accumulated, but the run resumes at batch 1 of epoch 0: a group does not span epochs"]],
    ];
    for (const [state, batch, culprits] of refused) await expectRejected(fit(at(batch, state)), StateError, "STATE_MISMATCH", culprits, { model: fx.model });
    // names are compared without tfjs's counters: this fixture's variables are numbered differently from the saver's
    const ok = await fit(at(2, group))();
    expect(ok.state.step).toBe(2);
    fx.dispose();
  });
});

describe("no tensor leaks", () => {
  const plugin = () => new GradAccumulation({ steps: 4 });
  const fitWith = (fx: TinyFixture, p: GradAccumulation, extra: Callback[], train?: DataSource, opt: tf.Optimizer = tf.train.adam(0.01)) =>
    new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [p, ...extra], logger: silentLogger }).fit({ epochs: 2, train: train ?? fx.data(16), validation: fx.data(112) });

  it("success (partial step and drop), and a stream whose leftover is dropped", async () => {
    const fx = mlp(112);
    const opt = tf.train.adam(0.01);
    for (const p of [plugin(), new GradAccumulation({ steps: 4, partial: "drop" }), new GradAccumulation({ steps: 1 })]) await expectNoLeaks(() => fitWith(fx, p, [], undefined, opt));
    await expectNoLeaks(() => fitWith(fx, plugin(), [], stream(16)(fx), opt));
    fx.dispose();
  });

  it("a throw in every hook of another plugin, at the first call and in the middle of a group", async () => {
    const fx = mlp(112);
    const opt = tf.train.adam(0.01);
    // from global batch 9 (epoch 1, batch 2) on: the group holds 2 micro-batches there
    for (const failing of [...failingPlugins(), ...failingPlugins({ when: (ctx) => ctx.state.globalBatch >= 9 })]) {
      const p = plugin();
      await expectNoLeaks(() => fitWith(fx, p, [failing.plugin], undefined, opt).catch(() => undefined), { warmup: 1, iterations: 2 });
    }
    fx.dispose();
  });

  it("CancelFit and CancelEpoch mid-group: the cancelled epoch's group is dropped with a warning, the next epoch starts clean", async () => {
    const fx = mlp(112);
    const opt = tf.train.adam(0.01);
    // by epoch and batch index: core does not count a batch whose afterBatch threw in globalBatch
    const throwAt = (event: "afterGradients" | "afterBatch", epoch: number, batch: number, error: () => Error, order = 0): Callback => ({
      name: "Thrower",
      order,
      [event]: (ctx: { state: { epoch: number; batchIndex: number } }) => {
        if (ctx.state.epoch === epoch && ctx.state.batchIndex === batch) throw error();
      },
    });
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
    await expectNoLeaks(() => fitWith(fx, plugin(), [throwAt("afterBatch", 1, 2, () => new CancelFit("test"))], undefined, opt));
    // cancelled after this micro-batch was added but before its step: the cursor would replay it, so the group is dropped
    const late = plugin();
    const r0 = await new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [late, throwAt("afterGradients", 1, 2, () => new CancelFit("test"), ORDER.GUARD)], logger }).fit({ epochs: 2, train: fx.data(16) });
    expect(r0.outcome.status).toBe("cancelled");
    expect(late.accumulated).toEqual({ microBatches: 0, samples: 0 });
    expect(warnings).toEqual(["GradAccumulation: the run ended (cancelled) in the middle of a micro-batch; dropped the group in progress (3 micro-batch(es), 48 samples)"]);
    await expectNoLeaks(() => fitWith(fx, late, [throwAt("afterGradients", 1, 2, () => new CancelFit("test"), ORDER.GUARD)], undefined, opt));
    warnings.length = 0;
    const cancelEpoch = throwAt("afterBatch", 0, 1, () => new CancelEpoch("test"));
    const p = plugin();
    const closing: (number | undefined)[] = [];
    const watch: Callback = { name: "Watch", afterBatch: (ctx) => void closing.push(ctx.logs["effective_batch"]) };
    const r = await new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [p, cancelEpoch, watch], logger }).fit({ epochs: 2, train: fx.data(16) });
    expect(warnings).toEqual(["GradAccumulation: epoch 0 was cut short; dropped its partial group of 2 micro-batch(es) (32 samples)"]);
    expect(closing).toEqual([undefined, undefined, undefined, undefined, undefined, 64, undefined, undefined, 48]);
    expect(r.state.step).toBe(2);
    await expectNoLeaks(() => fitWith(fx, plugin(), [cancelEpoch], undefined, opt));
    fx.dispose();
  });

  it("resuming from a mid-group snapshot (the group rebuilt on the device) and a run stopped mid-group (kept on the host)", async () => {
    const { snapshot } = await midGroupState();
    const fx = mlp(112);
    const opt = tf.train.sgd(0.1);
    await expectNoLeaks(() => new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [plugin()], logger: silentLogger }).fit({ epochs: 1, train: fx.data(16), resumeFrom: structuredClone(snapshot) }));
    const stop: Callback = { name: "Stop", afterBatch: (ctx) => void (ctx.state.globalBatch === 1 && ctx.requestStop("test")) };
    const p = plugin();
    await expectNoLeaks(() => fitWith(fx, p, [stop], undefined, opt));
    expect(p.accumulated).toEqual({ microBatches: 2, samples: 32 });
    fx.dispose();
  });
});
