import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, silentLogger } from "@fitloop/core";
import { tinyFixture } from "@fitloop/core/testing";
import { findLearningRate, type FindLearningRateOptions } from "./index.js";
import { bits } from "./helpers.fixture.js";

const issuesOf = async (options: unknown): Promise<OptionsError> => {
  const err = await findLearningRate(options as FindLearningRateOptions).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(OptionsError);
  return err as OptionsError;
};

describe("findLearningRate options", () => {
  it("one OptionsError lists every bad option, by name, with what is accepted", async () => {
    const err = await issuesOf({
      model: {},
      optimizer: "adam",
      loss: "hinge",
      train: [1, 2],
      metrics: ["f1"],
      callbacks: [3],
      startLr: 0,
      endLr: Number.POSITIVE_INFINITY,
      steps: 200.5,
      mode: "log",
      smoothing: -0.1,
      stopDivergence: 1,
      divergenceFactor: 0.5,
      suggest: "best",
      confidence: { minPoints: 1, minDrop: 2, maxNoise: 0, extra: true },
      seed: 0.5,
      logger: console.log,
      numIt: 100,
    });
    expect(err.owner).toBe("findLearningRate");
    const paths = err.issues.map((i) => i.path);
    for (const p of ["model", "optimizer", "loss", "train", "metrics.0", "callbacks.0", "startLr", "endLr", "steps", "mode", "smoothing", "stopDivergence", "divergenceFactor", "suggest", "confidence.minPoints", "confidence.minDrop", "confidence.maxNoise", "seed", "logger"]) {
      expect(paths, p).toContain(p);
    }
    expect(err.message).toMatch(/unknown option "numIt"; accepted: model, optimizer, loss, /);
    expect(err.message).toMatch(/suggest: must be one of valley, steep, minimum, slide/);
    expect(err.message).toMatch(/mode: must be "exponential" \(fastai: start \* \(end\/start\)\^\(i\/steps\)\) or "linear"/);
  });

  it("endLr must be above startLr; the defaults are fastai's", async () => {
    const fx = tinyFixture({ samples: 16 });
    const base = { model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy" as const, train: fx.data(8), logger: silentLogger };
    const err = await issuesOf({ ...base, startLr: 1e-2, endLr: 1e-3 });
    expect(err.issues).toEqual([{ path: "endLr", message: "must be larger than startLr (0.01), got 0.001" }]);
    const before = bits(fx.model.getWeights().flatMap((w) => Array.from(w.dataSync())));
    const r = await findLearningRate({ ...base, stopDivergence: false });
    expect(r.steps).toBe(100);
    expect(r.curve.lr[0]).toBe(1e-7);
    expect(r.curve.lr[99]! / 10 ** (-7 + 8 * 0.99)).toBeCloseTo(1, 12);
    expect(bits(fx.model.getWeights().flatMap((w) => Array.from(w.dataSync())))).toEqual(before);
    fx.dispose();
  });
});
