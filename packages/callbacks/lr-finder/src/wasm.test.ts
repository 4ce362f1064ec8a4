import { beforeAll, describe, expect, it } from "vitest";
import "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs-core";
import { Trainer, silentLogger, useBackend } from "@fitloop/core";
import { expectNoLeaks, tinyFixture } from "@fitloop/core/testing";
import { findLearningRate } from "./index.js";
import { stateBits } from "./helpers.fixture.js";

describe("findLearningRate on the wasm backend (fitloop's kernels, incl. its Adam)", () => {
  beforeAll(async () => {
    await useBackend("wasm");
  });

  it("sweeps, suggests, restores the model and Adam's state bit for bit, and leaks nothing", async () => {
    expect(tf.getBackend()).toBe("wasm");
    const fx = tinyFixture({ samples: 64, withBatchNormAndDropout: true });
    const opt = tf.train.adam(0.01);
    const run = () => findLearningRate({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", train: fx.data(8), startLr: 1e-4, endLr: 10, steps: 60, logger: silentLogger });
    const fresh = await stateBits(fx.model, opt);
    const r = await run();
    expect(await stateBits(fx.model, opt)).toEqual(fresh);
    expect(r.steps).toBeGreaterThan(30);
    expect(r.suggestions.valley!.lr).toBeGreaterThan(1e-4);
    expect(r.curve.smoothed.every((v, i) => i >= r.steps - 1 || Number.isFinite(v))).toBe(true);
    // with slots, after some training
    await new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", seed: 1, logger: silentLogger }).fit({ epochs: 2, train: fx.data(8) });
    const trained = await stateBits(fx.model, opt);
    expect(trained).not.toEqual(fresh);
    await expectNoLeaks(run, { warmup: 1, iterations: 2 });
    expect(await stateBits(fx.model, opt)).toEqual(trained);
    fx.dispose();
  });
});
