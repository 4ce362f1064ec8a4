import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { DataError, OptionsError, ShapeMismatchError, resolveLoss, seeded, type LossName } from "@fitloop/core";
import { expectNoLeaks } from "@fitloop/core/testing";
import { initialize, priorBiasInit, type PriorBiasOptions, type PriorSource } from "./index.js";

const mlp = (outputs: number, activation: "softmax" | "sigmoid" | "linear", separateActivation = false) =>
  seeded(1, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [8], units: 32, activation: "relu" }));
    m.add(tfl.layers.dense({ name: "head", units: outputs, activation: separateActivation ? "linear" : activation }));
    if (separateActivation) m.add(tfl.layers.activation({ activation }));
    initialize(m, { seed: 1 });
    return m;
  });
const lossOf = (m: tfl.LayersModel, loss: LossName, xs: tf.Tensor, ys: tf.Tensor) => tf.tidy(() => tf.mean(resolveLoss(loss)(ys, m.predict(xs) as tf.Tensor)).dataSync()[0]!);
const entropy = (p: number[]) => -p.reduce((s, q) => s + q * Math.log(q), 0);

// An imbalanced 3-class problem: 80 % / 15 % / 5 %, with features that carry the class.
const n = 1000;
const labels = Array.from({ length: n }, (_, i) => (i % 20 < 16 ? 0 : i % 20 < 19 ? 1 : 2));
const xs = seeded(3, () => tf.add(tf.randomNormal([n, 8]), tf.oneHot(tf.tensor1d(labels, "int32"), 8)));

describe("priorBiasInit: training starts at the loss of the priors", () => {
  it("softmax on an imbalanced problem: bias log p, and the first loss is the priors' entropy", () => {
    const ys = tf.tensor1d(labels);
    const m = mlp(3, "softmax");
    const before = lossOf(m, "sparseCategoricalCrossentropy", xs, ys);
    const r = priorBiasInit(m, { labels: ys });
    const after = lossOf(m, "sparseCategoricalCrossentropy", xs, ys);
    const h = entropy([0.8, 0.15, 0.05]);
    expect(r.kind).toBe("softmax"); // from the output activation
    expect(r.priors).toEqual([0.8, 0.15, 0.05]);
    r.bias.forEach((b, i) => expect(b).toBeCloseTo(Math.log([0.8, 0.15, 0.05][i]!), 12));
    expect(r.expectedLoss).toBeCloseTo(h, 12);
    expect(before - h).toBeGreaterThan(0.5); // a Glorot head over ReLU features starts far above it
    expect(Math.abs(after - h)).toBeLessThan(0.01);
    // kernelScale 0: exactly the entropy; 1: the bias alone is not enough
    const exact = mlp(3, "softmax");
    priorBiasInit(exact, { priors: [0.8, 0.15, 0.05] }, { kernelScale: 0 });
    expect(lossOf(exact, "sparseCategoricalCrossentropy", xs, ys)).toBeCloseTo(h, 5);
    const untouched = mlp(3, "softmax");
    priorBiasInit(untouched, { labels }, { kernelScale: 1 });
    expect(lossOf(untouched, "sparseCategoricalCrossentropy", xs, ys) - h).toBeGreaterThan(0.1);
    expect(String(r)).toMatch(/^priorBiasInit: head \(softmax\) bias \[-0\.2231, -1\.897, -2\.996\] from priors \[0\.8, 0\.15, 0\.05\]; the loss at the priors is 0\.6129; kernel x 0\.1$/);
    [m, exact, untouched].forEach((x) => x.dispose());
    ys.dispose();
  });

  it("the bias of a Dense followed by an Activation layer; one-hot labels count as class frequencies", () => {
    const m = mlp(3, "softmax", true);
    const oneHot = tf.oneHot(tf.tensor1d(labels, "int32"), 3);
    const r = priorBiasInit(m, { labels: oneHot });
    expect(r.layer).toBe("head");
    r.priors.forEach((p, i) => expect(p).toBeCloseTo([0.8, 0.15, 0.05][i]!, 6));
    expect(Math.abs(lossOf(m, "categoricalCrossentropy", xs, oneHot) - entropy([0.8, 0.15, 0.05]))).toBeLessThan(0.01);
    m.dispose();
    oneHot.dispose();
  });

  it("sigmoid: bias log(p/(1-p)) per unit, the first loss the mean binary entropy", () => {
    const binary = labels.map((c) => (c === 2 ? 1 : 0)); // 5 % positives
    const m = mlp(1, "sigmoid");
    const ys = tf.tensor2d(binary, [n, 1]);
    const r = priorBiasInit(m, { labels: ys });
    expect(r.bias[0]).toBeCloseTo(Math.log(0.05 / 0.95), 6);
    expect(Math.abs(lossOf(m, "binaryCrossentropy", xs, ys) - entropy([0.05, 0.95]))).toBeLessThan(0.01);
    const multi = mlp(2, "sigmoid");
    const r2 = priorBiasInit(multi, { priors: [0.3, 0.9] });
    expect(r2.bias[1]).toBeCloseTo(Math.log(9), 6);
    expect(r2.expectedLoss).toBeCloseTo((entropy([0.3, 0.7]) + entropy([0.9, 0.1])) / 2, 12);
    [m, multi].forEach((x) => x.dispose());
    ys.dispose();
  });

  it("regression: bias = the target mean, the first MSE the targets' variance (kind is required for a linear output)", () => {
    const targets = seeded(4, () => tf.add(tf.mul(tf.randomNormal([n, 1]), 2), 5));
    const m = mlp(1, "linear");
    const before = lossOf(m, "meanSquaredError", xs, targets);
    const r = priorBiasInit(m, { labels: targets }, { kind: "regression" });
    const mean = tf.tidy(() => tf.mean(targets).dataSync()[0]!);
    expect(r.bias[0]).toBeCloseTo(mean, 5);
    expect(before).toBeGreaterThan(10); // the mean (5) squared and more, against a variance of 4
    expect(lossOf(m, "meanSquaredError", xs, targets) / r.expectedLoss! - 1).toBeLessThan(0.02);
    expect(priorBiasInit(m, { mean: 5 }, { kind: "regression" }).expectedLoss).toBeUndefined();
    m.dispose();
    targets.dispose();
  });

  it("refuses what does not fit, with typed errors naming the culprit", () => {
    const soft = mlp(3, "softmax");
    const lin = mlp(1, "linear");
    const optionsError = (m: tfl.LayersModel, source: PriorSource, o: PriorBiasOptions | Record<string, unknown> = {}) => {
      try {
        priorBiasInit(m, source, o as PriorBiasOptions);
      } catch (e) {
        expect(e).toBeInstanceOf(OptionsError);
        return (e as OptionsError).issues.map((i) => `${i.path}: ${i.message}`).join("\n");
      }
      throw new Error("accepted");
    };
    expect(optionsError(lin, { mean: 1 })).toMatch(/^kind: is required: the output activation of "head" is linear/);
    expect(optionsError(soft, { priors: [0.5, 0.5, 0] }, { kind: "sigmoid" })).toMatch(/^kind: "sigmoid" does not fit the output activation softmax/);
    expect(optionsError(soft, { priors: [0.5, 0.2, 0.1] })).toMatch(/^priors: must sum to 1/);
    expect(optionsError(soft, { priors: [0.5, 0.5] })).toMatch(/^priors: has 2 values but the output has 3 units/);
    expect(optionsError(soft, { mean: 1 })).toMatch(/^mean: is for "regression"/);
    expect(optionsError(soft, { labels }, { layer: "nope" })).toMatch(/^layer: no layer named "nope"/);
    expect(optionsError(soft, { labels }, { kernelScal: 0 })).toMatch(/did you mean "kernelScale"/);
    expect(() => priorBiasInit(soft, { labels: [0, 1, 3] })).toThrow(expect.objectContaining({ code: "LABEL_OUT_OF_RANGE", sampleIndex: 2 }));
    expect(() => priorBiasInit(soft, { labels: [0, 1, 3] })).toThrow(DataError);
    const wide = tf.zeros([4, 5]);
    expect(() => priorBiasInit(soft, { labels: wide })).toThrow(ShapeMismatchError);
    wide.dispose();
    const noBias = seeded(1, () => tfl.sequential({ layers: [tfl.layers.dense({ name: "nb", inputShape: [2], units: 2, useBias: false, activation: "softmax" })] }));
    expect(optionsError(noBias, { priors: [0.5, 0.5] })).toMatch(/^layer: layer "nb" \(Dense\) has no bias/);
    [soft, lin, noBias].forEach((x) => x.dispose());
  });

  it("leaks no tensor", async () => {
    const m = mlp(3, "softmax");
    const ys = tf.tensor1d(labels);
    await expectNoLeaks(() => priorBiasInit(m, { labels: ys }));
    m.dispose();
    ys.dispose();
  });
});
