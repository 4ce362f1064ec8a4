import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, StateError, type Callback, type StateDict } from "@fitloop/core";
import { countDeviceReads, expectNoLeaks, expectRefused, expectRejected, failingPlugins, stateWithPlugins, tinyFixture, type TinyFixture } from "@fitloop/core/testing";
import { EMA, SWA, type AveragingPlugin } from "./index.js";
import { trainer } from "./helpers.fixture.js";

const fixture = () => tinyFixture({ samples: 16, withBatchNormAndDropout: true }); // 2 batches of 8

describe("options: one OptionsError naming every bad option", () => {
  it.each([
    ["EMA", () => new EMA({ decay: 1.5, every: 0, warmup: { power: -1, gamma: 0 }, evaluate: "both", typo: 1 } as never), ["decay: must be in (0, 1)", "every: must be an integer >= 1", "warmup.power: must be > 0", "warmup.gamma: must be > 0", 'evaluate: must be "average"', 'unknown option "typo"']],
    ["EMA", () => new EMA({ decay: 0.9, halfLife: 100, updateBatchNorm: "sometimes", batchNormBatches: 0 } as never), ["halfLife: give decay or halfLife, not both", 'updateBatchNorm: must be "never", "end" or "validation"', "batchNormBatches: must be an integer >= 1"]],
    ["EMA", () => new EMA({} as never), ["decay: is required (or halfLife)"]],
    ["EMA", () => new EMA({ decay: Number.NaN, warmup: 3 } as never), ["decay: must be a number in (0, 1)", "warmup: must be true, false or { power, gamma }"]],
    ["EMA", () => new EMA({ halfLife: 1e-9 }), ["halfLife: gives a decay of 0 per update"]],
    ["SWA", () => new SWA({ start: -1, every: { epochs: 0 }, lr: 0, applyAtEnd: "yes" } as never), ["start: must be an epoch (integer >= 0) or a fraction of the run in (0, 1)", "every.epochs: must be an integer >= 1", "lr.value: must be a learning rate > 0", "applyAtEnd: must be a boolean"]],
    ["SWA", () => new SWA({ start: 1.5, every: { epochs: 1, steps: 2 }, lr: { value: 0.1, annealEpochs: -1, strategy: "exp" } } as never), ["start: must be an epoch", "every: give exactly one of { epochs: n } or { steps: n }", "lr.annealEpochs: must be an integer >= 0", 'lr.strategy: must be "cos" or "linear"']],
    ["SWA", () => new SWA({ every: 3, lr: "fast" } as never), ["every: must be { epochs: n } or { steps: n }", "lr: must be a learning rate > 0 or { value, annealEpochs, strategy }"]],
  ])("%s %#", (owner, make, culprits) => {
    const e = expectRefused(make, OptionsError, "INVALID_OPTIONS", [`Invalid options for ${owner}`, ...culprits]);
    expect(e.issues).toHaveLength(culprits.length); // nothing else, nothing twice
  });

  it("a start beyond the run is refused when the run starts, before any step, naming the run's epochs", async () => {
    const fx = fixture();
    const t = trainer(fx, [new SWA({ start: 3 })]);
    await expectRejected(() => t.fit({ epochs: 3, train: fx.data(8) }), OptionsError, "INVALID_OPTIONS", ["start: is epoch 3, but the run's epochs are 0..2"], { model: fx.model });
    const swa = new SWA({ start: 0.9 });
    await trainer(fx, [swa]).fit({ epochs: 1, train: fx.data(8) }); // a fraction is always inside the run: floor(0.9 * 1) = epoch 0
    expect(swa.updates).toBe(1);
    fx.dispose();
  });
});

describe("saved states", () => {
  const f32 = (n: number) => new Float32Array(n);
  const w = (name: string, shape: number[]) => ({ name, shape, values: f32(shape.reduce((a, b) => a * b, 1)) });

  it("malformed: a typed StateError naming every bad key, before anything changes", () => {
    const cases: [() => AveragingPlugin, unknown, (string | RegExp)[]][] = [
      [() => new EMA({ decay: 0.9 }), null, ["(state)"]],
      [() => new EMA({ decay: 0.9 }), { kind: "swa", count: 0, weights: null, lrStart: null }, ['kind: must be "ema"', 'Unrecognized key: "lrStart"']],
      [() => new EMA({ decay: 0.9 }), { kind: "ema", count: -1, weights: null }, ["count: must be an integer >= 0"]],
      [() => new EMA({ decay: 0.9 }), { kind: "ema", count: 1.5, weights: null }, ["count: must be an integer >= 0"]],
      [() => new EMA({ decay: 0.9 }), { kind: "ema", count: 2, weights: null }, ["weights: count is 2 but there is no average"]],
      [() => new EMA({ decay: 0.9 }), { kind: "ema", count: 0, weights: [w("a", [2])] }, ["weights: count is 0 but an average is saved"]],
      [() => new EMA({ decay: 0.9 }), { kind: "ema", count: 1, weights: [{ name: "a", shape: [2], values: [1, 2] }] }, ["weights.0.values: must be a Float32Array"]],
      [() => new EMA({ decay: 0.9 }), { kind: "ema", count: 1, weights: [{ name: "a", shape: [2, 2], values: f32(3) }] }, ["weights.0: has a number of values that does not match its shape"]],
      [() => new SWA(), { kind: "swa", count: 0, weights: null, lrStart: -1 }, ["lrStart: must be a finite learning rate >= 0 or null"]],
      [() => new SWA(), { kind: "swa", count: 0, weights: null }, ["lrStart"]],
    ];
    for (const [make, state, culprits] of cases) {
      const p = make();
      const before = p.stateDict();
      expectRefused(() => p.loadStateDict(state as StateDict), StateError, "STATE_MISMATCH", [`${p.name}: the saved state is invalid`, ...culprits]);
      expect(p.stateDict()).toEqual(before);
    }
  });

  it("not this model's: refused when the run starts, before any step, weights and tensors unchanged", async () => {
    const fx = fixture();
    const names = fx.model.weights.map((v) => v.name);
    const shapes = fx.model.weights.map((v) => [...v.shape] as number[]);
    const all = () => names.map((n, i) => w(n, shapes[i]!));
    const swapped = all();
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!]; // gamma and beta (both [8]) in each other's place
    const nan = all();
    nan[1]!.values[3] = Number.NaN;
    const reshaped = all();
    reshaped[0] = { ...reshaped[0]!, shape: [8, 4] };
    const cases: [StateDict, (string | RegExp)[]][] = [
      [{ kind: "ema", count: 3, weights: all().slice(1) }, ["7 averaged weights saved, this plugin averages 8", 'another "buffers" option']],
      [{ kind: "ema", count: 3, weights: swapped }, [/weights\[2\]: is ".*beta", the model's weight 2 is ".*gamma"/]],
      [{ kind: "ema", count: 3, weights: nan }, ["weights[1].values: ", "holds NaN at index 3: an average must be finite"]],
      [{ kind: "ema", count: 3, weights: reshaped }, [/weights\[0\]: .*kernel is \[8, 4\], the model's .*kernel is \[4, 8\]/]],
    ];
    const optimizer = tf.train.sgd(0.1);
    for (const [state, culprits] of cases) {
      const t = trainer(fx, [new EMA({ decay: 0.9 })], { optimizer });
      t.loadStateDict(stateWithPlugins({ ema: state }));
      await expectRejected(() => t.fit({ epochs: 1, train: fx.data(8) }), StateError, "STATE_MISMATCH", ["EMA: the saved average does not match the model", ...culprits], { model: fx.model });
    }
    // SWA averages the trainable weights only: a state with every weight was saved with buffers: true
    const t = trainer(fx, [new SWA({ start: 0 })], { optimizer });
    t.loadStateDict(stateWithPlugins({ swa: { kind: "swa", count: 1, weights: all(), lrStart: null } }));
    await expectRejected(() => t.fit({ epochs: 1, train: fx.data(8) }), StateError, "STATE_MISMATCH", "8 averaged weights saved, this plugin averages 6", { model: fx.model });
    fx.dispose();
  });
});

describe("no tensor leaks, no device reads", () => {
  const plugins: [string, () => AveragingPlugin][] = [
    ["EMA", () => new EMA({ decay: 0.9, warmup: true, updateBatchNorm: "end" })],
    ["SWA", () => new SWA({ start: 0, every: { steps: 1 }, lr: 0.05, updateBatchNorm: "validation" })],
  ];

  it.each(plugins)("%s: on success, a throw in every hook of another plugin, CancelFit, bad state; an instance is never disposed and holds no tensor after a run", async (_, make) => {
    const fx = fixture();
    const optimizer = tf.train.adam(0.01);
    const run = (extra: Callback[], state?: StateDict) => {
      const p = make();
      const t = trainer(fx, [p, ...extra], { optimizer });
      if (state) t.loadStateDict(stateWithPlugins({ [p.stateKey]: state }));
      return t.fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) }).catch(() => undefined);
    };
    await expectNoLeaks(() => run([]));
    // at epoch 1, once the plugin holds an average (and in beforeFit, before it does)
    for (const { plugin: failing } of failingPlugins({ when: (ctx) => ctx.state.epoch === 1 || ctx.event === "beforeFit" })) {
      await expectNoLeaks(() => run([failing]), { warmup: 1, iterations: 2 });
    }
    await expectNoLeaks(() => run([], { bad: 1 }));
    await expectNoLeaks(() => run([], { kind: make().stateDict()["kind"]!, count: 1, weights: [{ name: "x", shape: [1], values: new Float32Array(1) }], ...(make() instanceof SWA ? { lrStart: null } : {}) }));
    fx.dispose();
  });

  it.each(plugins)("%s: the tensor count is constant over a long run (300 steps) once the average exists", async (_, make) => {
    const fx = tinyFixture({ samples: 16 });
    const counts: number[] = [];
    const counter: Callback = { name: "Counter", batchCheckpoint: () => void counts.push(tf.memory().numTensors) };
    await trainer(fx, [make(), counter], { optimizer: tf.train.momentum(0.01, 0.9) }).fit({ epochs: 150, train: fx.data(8), validation: fx.data(16) });
    expect(counts).toHaveLength(300);
    expect(new Set(counts.slice(1)).size).toBe(1); // the momentum slots and the average appear at the first step
    fx.dispose();
  });

  it.each(plugins)("%s adds no device read to a training step", async (_, make) => {
    const fx = tinyFixture({ samples: 32 });
    const perStep: number[] = [];
    const reads = countDeviceReads();
    let start = 0;
    const bracket: Callback = { name: "Bracket", order: -1e9, beforeBatch: () => void (start = reads.count), afterBatch: () => void perStep.push(reads.count - start) };
    await trainer(fx, [bracket]).fit({ epochs: 1, train: fx.data(8) });
    await trainer(fx, [bracket, make()]).fit({ epochs: 1, train: fx.data(8) });
    reads.stop();
    expect(perStep).toEqual([1, 1, 1, 1, 1, 1, 1, 1]); // the loss read only
    fx.dispose();
  });

  it("one instance over several fits: a new fit starts a new average; a resumed one keeps it", async () => {
    const fx = tinyFixture({ samples: 16 });
    const ema = new EMA({ decay: 0.5 });
    const t = trainer(fx, [ema]);
    await t.fit({ epochs: 2, train: fx.data(8) });
    expect(ema.updates).toBe(4);
    await t.fit({ epochs: 1, train: fx.data(8) });
    expect(ema.updates).toBe(2); // Keras' on_train_begin: starts over
    const snap = await t.snapshot();
    const u = trainer(fx, [ema]);
    await u.fit({ epochs: 2, train: fx.data(8), resumeFrom: structuredClone(snap) });
    expect(ema.updates).toBe(4);
    fx.dispose();
  });
});
