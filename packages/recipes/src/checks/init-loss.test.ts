import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { DataError, OptionsError, ShapeMismatchError } from "@fitloop/core";
import { expectNoLeaks, expectRefused } from "@fitloop/core/testing";
import { priorLoss, verifyInitLoss } from "./index.js";
import { collapsed, mlp, mnistBatch, setOutputBias, weightBits } from "./models.fixture.js";

const loss = "sparseCategoricalCrossentropy" as const;
const data = mnistBatch(256);
afterAll(() => data.dispose());

describe("verifyInitLoss", () => {
  it("a healthy MLP on real digits starts near log 10 = 2.303 and passes", () => {
    const model = mlp();
    const v = verifyInitLoss(model, data, { loss });
    expect(v.status).toBe("pass");
    expect(v.numbers["uniformLoss"]).toBeCloseTo(Math.log(10), 12);
    expect(Math.abs(v.numbers["initLoss"]! - Math.log(10))).toBeLessThan(0.25);
    expect(v.numbers["priorLoss"]).toBeGreaterThan(2.25); // 256 digits: nearly balanced
    expect(v.details!.priors!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(v.summary).toMatch(/^init loss 2\.\d+ vs expected 2\.303/);
    model.dispose();
  });

  it("planted bug: an output bias of +10 on one class is caught (init loss ~4x the expected 2.303)", () => {
    const model = mlp();
    setOutputBias(model, 3, 10);
    const v = verifyInitLoss(model, data, { loss });
    expect(v.status).toBe("fail");
    expect(v.numbers["initLoss"]).toBeGreaterThan(7);
    expect(v.numbers["excess"]).toBeGreaterThan(1);
    expect(v.summary).toMatch(/too high; a badly initialised output layer/);
    model.dispose();
  });

  it("planted bug: a broken label mapping that sends every label to class 0 is caught (prior entropy 0)", () => {
    const model = mlp();
    const ys = collapsed(data.ys);
    const v = verifyInitLoss(model, { xs: data.xs, ys }, { loss });
    expect(v.status).toBe("fail");
    expect(v.numbers["priorLoss"]).toBe(0);
    expect(v.summary).toMatch(/every label is class 0/);
    ys.dispose();
    model.dispose();
  });

  it("the prior is the loss of the best constant prediction, for every named loss (hand-computed)", () => {
    const sparse = tf.tensor1d([0, 0, 0, 1]);
    const p = priorLoss("sparseCategoricalCrossentropy", sparse, 3)!;
    expect(p.prior).toBeCloseTo(-(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25)), 12);
    expect(p.uniform).toBeCloseTo(Math.log(3), 12);
    expect(p.priors).toEqual([0.75, 0.25, 0]);
    const oneHot = tf.tensor2d([[1, 0], [0, 1]]);
    expect(priorLoss("categoricalCrossentropy", oneHot, 2)!.prior).toBeCloseTo(Math.log(2), 12);
    const binary = tf.tensor2d([[1], [1], [1], [0]]);
    expect(priorLoss("binaryCrossentropy", binary, 1)!.prior).toBeCloseTo(-(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25)), 12);
    const targets = tf.tensor2d([[1], [2], [3], [10]]);
    expect(priorLoss("meanSquaredError", targets, 1)!.prior).toBeCloseTo(((3 ** 2 + 2 ** 2 + 1 + 6 ** 2) / 4), 12); // mean 4
    expect(priorLoss("meanAbsoluteError", targets, 1)!.prior).toBeCloseTo((1.5 + 0.5 + 0.5 + 7.5) / 4, 12); // median 2.5
    expect(priorLoss((t, q) => tf.sub(t, q), targets, 1)).toBeUndefined();
    tf.dispose([sparse, oneHot, binary, targets]);
  });

  it("imbalanced labels: passes at uniform output and says what an output bias of log(priors) would give", () => {
    const model = mlp();
    const ys = tf.tensor1d(Array.from({ length: 256 }, (_, i) => (i % 8 === 0 ? 1 : 0)));
    const v = verifyInitLoss(model, { xs: data.xs, ys }, { loss });
    expect(v.status).toBe("pass");
    expect(v.summary).toMatch(/imbalanced: an output bias of log\(priors\) would start at 0\.3768/);
    expect(v.summary).toMatch(/8 classes have no label in this batch/);
    ys.dispose();
    model.dispose();
  });

  it("a custom loss has no known prior: warn unless options.prior is given", () => {
    const model = mlp();
    const custom = (t: tf.Tensor, p: tf.Tensor) => tf.neg(tf.sum(tf.mul(tf.oneHot(tf.cast(t, "int32"), 10), tf.log(p)), -1));
    expect(verifyInitLoss(model, data, { loss: custom }).status).toBe("warn");
    const v = verifyInitLoss(model, data, { loss: custom, prior: Math.log(10) });
    expect(v.status).toBe("pass");
    expect(v.numbers["expectedLoss"]).toBeCloseTo(Math.log(10), 12);
    model.dispose();
  });

  it("leaves the model bit for bit as it was (BatchNorm statistics, dropout rate) and leaks no tensor", async () => {
    const model = mlp({ batchNorm: true, dropout: 0.5 });
    const before = weightBits(model);
    await expectNoLeaks(() => verifyInitLoss(model, data, { loss }));
    expect(weightBits(model)).toEqual(before);
    expect((model.layers.find((l) => l.getClassName() === "Dropout") as unknown as { rate: number }).rate).toBe(0.5);
    model.dispose();
  });

  it("refuses bad options and data with typed errors, before any work", () => {
    const model = mlp();
    expectRefused(() => verifyInitLoss(model, data, { loss, tolerence: 1 } as never), OptionsError, "INVALID_OPTIONS", ['"tolerence"', 'did you mean "tolerance"'], { model });
    expectRefused(() => verifyInitLoss(model, data, { loss: "crossEntropy" as never }), OptionsError, "INVALID_OPTIONS", "loss", { model });
    expectRefused(() => verifyInitLoss(model, data, { loss, tolerance: -1 }), OptionsError, "INVALID_OPTIONS", "tolerance", { model });
    const flat = tf.zeros([4, 28, 28]);
    expectRefused(() => verifyInitLoss(model, { xs: flat, ys: data.ys }, { loss }), ShapeMismatchError, "SHAPE_MISMATCH", "[4, 28, 28]", { model });
    flat.dispose();
    const empty = tf.zeros([0, 784]);
    expectRefused(() => verifyInitLoss(model, { xs: empty, ys: data.ys }, { loss }), DataError, "EMPTY_DATA", "0 samples", { model });
    empty.dispose();
    const gone = tf.zeros([4, 784]);
    gone.dispose();
    expectRefused(() => verifyInitLoss(model, { xs: gone, ys: data.ys }, { loss }), OptionsError, "INVALID_OPTIONS", "data.xs", { model });
    model.dispose();
  });
});
