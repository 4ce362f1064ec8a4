import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { StateError, Trainer, captureWeights, loadOptimizerStateDict, loadWeights, optimizerStateDict, silentLogger, trainableVariables, type Callback } from "@fitloop/core";
import { expectNoLeaks, failingPlugins, tinyFixture, type TinyFixture } from "@fitloop/core/testing";
import { DataLoader, gaussianBlobs } from "@fitloop/datasets";
import { findLearningRate, type FindLearningRateOptions } from "./index.js";
import { bits, counter, stateBits, withSeededMathRandom } from "./helpers.fixture.js";

const OPTIMIZERS: [string, () => tf.Optimizer][] = [
  ["sgd", () => tf.train.sgd(0.05)],
  ["momentum", () => tf.train.momentum(0.05, 0.9)],
  ["adam", () => tf.train.adam(0.01)],
];

/** The tiny fixture with BatchNorm (moving statistics: weights that are not trainable) and Dropout (randomness). */
const fixture = () => tinyFixture({ samples: 32, withBatchNormAndDropout: true });

/** A sweep that goes far enough to diverge (tiny model, 30 steps). */
const finder = (fx: TinyFixture, optimizer: tf.Optimizer, extra: Partial<FindLearningRateOptions> = {}) =>
  findLearningRate({ model: fx.model, optimizer, loss: "sparseCategoricalCrossentropy", train: fx.data(8), startLr: 1e-4, endLr: 100, steps: 30, logger: silentLogger, ...extra });

/** Brings the optimizer to a state with slots (and Adam's accumulators past their start). */
const pretrain = (fx: TinyFixture, optimizer: tf.Optimizer) => new Trainer({ model: fx.model, optimizer, loss: "sparseCategoricalCrossentropy", seed: 9, logger: silentLogger }).fit({ epochs: 2, train: fx.data(8) });

describe("findLearningRate restores the model and optimizer bit for bit", () => {
  for (const [name, make] of OPTIMIZERS) {
    for (const pre of ["fresh (no slots yet)", "with slots after training"]) {
      it(`${name}, ${pre}: every weight (BatchNorm statistics too), slot, accumulator, iteration count, learning rate and momentum`, async () => {
        const fx = fixture();
        const opt = make();
        if (pre.startsWith("with")) await pretrain(fx, opt);
        const before = await stateBits(fx.model, opt);
        const r = await finder(fx, opt);
        expect(r.steps).toBeGreaterThan(5); // it trained: the weights did change in between
        expect(await stateBits(fx.model, opt)).toEqual(before);
        fx.dispose();
      });
    }
  }

  it("also when a plugin throws in the middle of the sweep (the error is rethrown) or cancels it", async () => {
    for (const [, make] of OPTIMIZERS) {
      const fx = fixture();
      const opt = make();
      await pretrain(fx, opt);
      const before = await stateBits(fx.model, opt);
      const boom: Callback = { name: "Boom", afterStep: (ctx) => { if (ctx.state.step === 7) throw new Error("boom at step 7"); } };
      await expect(finder(fx, opt, { callbacks: [boom] })).rejects.toThrow("boom at step 7");
      expect(await stateBits(fx.model, opt)).toEqual(before);
      const cancel = failingPlugins({ when: (ctx) => ctx.state.step === 7 }).find((f) => f.where === "cancel")!.plugin;
      const r = await finder(fx, opt, { callbacks: [cancel] });
      expect(r).toMatchObject({ stopReason: "stopped", steps: 7 }); // the 7th step was recorded (afterStep), then afterBatch cancelled
      expect(await stateBits(fx.model, opt)).toEqual(before);
      fx.dispose();
    }
  });

  it("a later fit gives bit-identical weights to the same fit without the finder first (optimizer, RNG and data restored)", async () => {
    for (const [name, make] of OPTIMIZERS) {
      // The same model, optimizer and global Math.random stream in both arms; the later fit is unseeded, so its
      // dropout draws from Math.random: a finder that advanced Math.random would change its masks.
      const arm = async (runFinder: (fx: TinyFixture, opt: tf.Optimizer) => Promise<unknown>) => {
        const fx = fixture();
        const opt = make();
        await pretrain(fx, opt);
        const { next } = await withSeededMathRandom(11, async () => {
          await runFinder(fx, opt);
          await new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", logger: silentLogger }).fit({ epochs: 2, train: fx.data(8) });
        });
        const state = await stateBits(fx.model, opt);
        fx.dispose();
        return { state, next };
      };
      const without = await arm(async () => {});
      const withFinder = await arm((fx, opt) => finder(fx, opt));
      expect(withFinder.state, name).toEqual(without.state);
      expect(withFinder.next).toBe(without.next);
      // negative control: the same sweep by an unseeded trainer, weights and optimizer put back by hand, only Math.random advanced
      const control = await arm(async (fx, opt) => {
        const weights = await captureWeights(fx.model);
        const saved = await optimizerStateDict(opt, trainableVariables(fx.model));
        await new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", logger: silentLogger }).fit({ epochs: 1, train: fx.data(8) });
        loadWeights(fx.model, weights);
        loadOptimizerStateDict(opt, saved, trainableVariables(fx.model));
      });
      expect(control.state, `${name} control`).not.toEqual(without.state);
    }
  });

  it("never touches the global Math.random", async () => {
    const fx = fixture();
    const original = Math.random;
    let calls = 0;
    Math.random = () => (calls++, original());
    try {
      await finder(fx, tf.train.adam(0.01));
    } finally {
      Math.random = original;
    }
    expect(calls).toBe(0);
    fx.dispose();
  });

  it("puts back the state of stateful plugins in `callbacks`", async () => {
    const fx = fixture();
    const c = counter();
    c.n = 41;
    const r = await finder(fx, tf.train.sgd(0.1), { callbacks: [c] });
    expect(r.steps).toBeGreaterThan(5);
    expect(c.n).toBe(41);
    fx.dispose();
  });

  it("an optimizer fitloop cannot save fails before anything changes", async () => {
    class Custom extends tf.Optimizer {
      applyGradients(): void {}
      getConfig() {
        return {};
      }
    }
    const fx = fixture();
    const before = bits((await captureWeights(fx.model)).flatMap((w) => Array.from(w.values)));
    await expect(finder(fx, new Custom())).rejects.toThrow(StateError);
    expect(bits((await captureWeights(fx.model)).flatMap((w) => Array.from(w.values)))).toEqual(before);
    fx.dispose();
  });
});

describe("no tensor leaks", () => {
  it.each(OPTIMIZERS)("%s: the whole call, fresh and with slots", async (_name, make) => {
    const fx = fixture();
    const opt = make();
    await expectNoLeaks(() => finder(fx, opt));
    await pretrain(fx, opt);
    await expectNoLeaks(() => finder(fx, opt));
    fx.dispose();
  });

  it("with a prefetching DataLoader (@fitloop/datasets) that the sweep leaves mid-epoch", async () => {
    const fx = fixture();
    const train = new DataLoader(gaussianBlobs({ samples: 64, classes: 3, features: 4, seed: 1 }), { batchSize: 8, seed: 2, prefetch: 2 });
    const opt = tf.train.adam(0.01);
    const before = await stateBits(fx.model, opt);
    await expectNoLeaks(() => finder(fx, opt, { train, steps: 13, stopDivergence: false }));
    expect(await stateBits(fx.model, opt)).toEqual(before);
    fx.dispose();
  });

  it("with a throw in every hook of another plugin, and on CancelFit", async () => {
    const fx = fixture();
    const opt = tf.train.adam(0.01);
    for (const { where, plugin } of failingPlugins({ when: (ctx) => ctx.state.step >= 3 || ctx.event === "beforeFit" })) {
      const before = await stateBits(fx.model, opt);
      await expectNoLeaks(() => finder(fx, opt, { callbacks: [plugin] }).catch(() => undefined), { warmup: 1, iterations: 2 });
      expect(await stateBits(fx.model, opt), where).toEqual(before);
    }
    fx.dispose();
  });
});
