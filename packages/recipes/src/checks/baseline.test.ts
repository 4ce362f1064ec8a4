import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError } from "@fitloop/core";
import { expectNoLeaks, expectRefused } from "@fitloop/core/testing";
import { noisyRegression } from "@fitloop/datasets";
import * as tfl from "@tensorflow/tfjs-layers";
import { seeded } from "@fitloop/core";
import { inputIndependentBaseline } from "./index.js";
import { collapsed, mlp, mnistBatch, shuffled, weightBits } from "./models.fixture.js";

const loss = "sparseCategoricalCrossentropy" as const;
// 384 digits to train on, 128 held out; 50 steps of 32 (~4 epochs): enough to separate healthy from broken
const budget = { loss, steps: 50 } as const;
const data = mnistBatch(512, 7);
afterAll(() => data.dispose());

describe("inputIndependentBaseline", () => {
  it("a healthy MLP on real digits beats zeroed inputs and the label priors by far on held-out digits", () => {
    const model = mlp();
    const v = inputIndependentBaseline(model, data, budget);
    expect(v.status).toBe("pass");
    expect(v.numbers["trainSamples"]).toBe(384);
    expect(v.numbers["heldOutSamples"]).toBe(128);
    expect(v.numbers["realAccuracy"]).toBeGreaterThan(0.6);
    expect(v.numbers["gain"]).toBeGreaterThan(0.3);
    // zeroed inputs can only learn the priors: about chance
    expect(v.numbers["zeroAccuracy"]).toBeLessThan(0.2);
    expect(v.numbers["baselineLoss"]).toBe(Math.min(v.numbers["zeroLoss"]!, v.numbers["priorLoss"]!));
    expect(v.details!.realCurve).toHaveLength(50);
    expect(v.details!.zeroCurve).toHaveLength(50);
    model.dispose();
  });

  it("planted bug: a model that multiplies its input by 0 does exactly as well on zeros, and fails", () => {
    const model = mlp({ planted: "ignoresInputs" });
    const v = inputIndependentBaseline(model, data, { loss, steps: 10 }); // identical runs: any budget shows it
    expect(v.status).toBe("fail");
    expect(v.numbers["realLoss"]).toBe(v.numbers["zeroLoss"]); // the same weights, batches and (zero) signal
    expect(v.summary).toMatch(/no better; the model ignores its inputs/);
    model.dispose();
  });

  it("planted bug: shuffled labels are caught (memorised in training, no better than the priors held out)", () => {
    const model = mlp();
    const ys = shuffled(data.ys);
    const v = inputIndependentBaseline(model, { xs: data.xs, ys }, budget);
    expect(v.status).toBe("fail");
    expect(v.numbers["gain"]).toBeLessThanOrEqual(0);
    ys.dispose();
    model.dispose();
  });

  it("planted bug: a label mapping that collapses every class into one is caught (the priors already predict it)", () => {
    const model = mlp();
    const ys = collapsed(data.ys);
    const v = inputIndependentBaseline(model, { xs: data.xs, ys }, budget);
    expect(v.status).toBe("fail");
    expect(v.numbers["priorLoss"]).toBeLessThan(1e-3);
    ys.dispose();
    model.dispose();
  });

  it("regression (mean squared error) on a synthetic linear problem: real inputs win", () => {
    const ds = noisyRegression({ samples: 256, features: 4, noise: 0.1, seed: 3 });
    const xs = tf.tensor2d(ds.x, [256, 4]);
    const ys = tf.tensor2d(ds.y, [256, 1]);
    const model = seeded(2, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ inputShape: [4], units: 16, activation: "relu" }));
      m.add(tfl.layers.dense({ units: 1 }));
      return m;
    });
    const v = inputIndependentBaseline(model, { xs, ys }, { loss: "meanSquaredError", steps: 150, learningRate: 1e-2 });
    expect(v.status).toBe("pass");
    expect(v.numbers["realAccuracy"]).toBeUndefined();
    tf.dispose([xs, ys]);
    model.dispose();
  });

  it("leaves the model bit for bit as it was and leaks no tensor", async () => {
    const model = mlp({ dropout: 0.3, batchNorm: true });
    const before = weightBits(model);
    await expectNoLeaks(() => inputIndependentBaseline(model, data, { loss, steps: 3 }), { warmup: 1, iterations: 2 });
    expect(weightBits(model)).toEqual(before);
    model.dispose();
  });

  it("refuses bad options with a typed error", () => {
    const model = mlp();
    expectRefused(() => inputIndependentBaseline(model, data, { loss, heldOut: 1 }), OptionsError, "INVALID_OPTIONS", "heldOut", { model });
    expectRefused(() => inputIndependentBaseline(model, data, { loss, seed: 0.5 }), OptionsError, "INVALID_OPTIONS", "seed", { model });
    model.dispose();
  });
});
