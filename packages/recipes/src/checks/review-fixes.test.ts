import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { OptionsError, seeded, ShapeMismatchError, type LossFn } from "@fitloop/core";
import { expectNoLeaks, expectRefused, expectRejected } from "@fitloop/core/testing";
import { checkBatchIndependence, checkGradients, inputIndependentBaseline, overfitOneBatch, sanityCheck, verifyInitLoss } from "./index.js";
import { mlp, mnist, mnistBatch, weightBits } from "./models.fixture.js";

const loss = "sparseCategoricalCrossentropy" as const;
const data = mnistBatch(64, 5);
afterAll(() => data.dispose());

/** Dense(8) -> BatchNormalization -> Activation(relu) -> Dense(3, softmax): BN cancels the first bias. */
const denseBn = (seed: number) =>
  seeded(seed, () =>
    tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [784], units: 8 }), tfl.layers.batchNormalization(), tfl.layers.activation({ activation: "relu" }), tfl.layers.dense({ units: 3, activation: "softmax" })] }),
  );

/** Same rows as `data`, one input value NaN. */
const withNaN = () => {
  const x = data.xs.dataSync().slice();
  x[3 * 784 + 400] = NaN;
  return { xs: tf.tensor2d(x, data.xs.shape), ys: data.ys };
};

/** A sparse cross-entropy that throws on its `at`-th call. */
const throwingLoss = (at: number): LossFn => {
  let calls = 0;
  return (yTrue, yPred) => {
    if (++calls === at) throw new Error("loss exploded");
    return tf.tidy(() => tf.neg(tf.sum(tf.mul(tf.oneHot(tf.cast(tf.reshape(yTrue, [-1]), "int32"), yPred.shape[1]!), tf.log(tf.add(yPred, 1e-7))), -1)));
  };
};

describe("checkGradients: a gradient that is zero on both sides", () => {
  it("Dense(8) -> BatchNormalization -> ReLU -> Dense(3, softmax), seeds 0..2: passes, the cancelled Dense bias reported as a zero gradient", () => {
    const ys = tf.tidy(() => tf.mod(data.ys, 3));
    for (const seed of [0, 1, 2]) {
      const model = denseBn(seed);
      const v = checkGradients(model, { xs: data.xs, ys }, { loss });
      expect(v.status, v.summary).toBe("pass");
      const zero = v.details!.variables.filter((x) => x.zero);
      expect(zero.map((x) => x.name.split("/")[1])).toEqual(["bias"]);
      expect(zero[0]!.name).toBe(v.details!.variables[0]!.name.replace("kernel", "bias"));
      expect(v.numbers["zeroGradients"]).toBe(1);
      expect(v.summary).toContain("zero gradient on both sides");
      model.dispose();
    }
    ys.dispose();
  });
});

describe("non-finite data is a failure with its own reason", () => {
  it("checkGradients fails on a NaN loss (it passed with relative error 0)", () => {
    const model = mlp();
    const bad = withNaN();
    const v = checkGradients(model, bad, { loss });
    expect(v.status).toBe("fail");
    expect(v.summary).toMatch(/not finite/);
    bad.xs.dispose();
    model.dispose();
  });

  it("checkBatchIndependence and inputIndependentBaseline name the NaN, not ignored inputs or shuffled labels", () => {
    const model = mlp();
    const bad = withNaN();
    const ind = checkBatchIndependence(model, bad);
    expect(ind.status).toBe("fail");
    expect(ind.summary).toMatch(/not finite/);
    expect(ind.summary).not.toMatch(/ignores its inputs/);
    const base = inputIndependentBaseline(model, bad, { loss, steps: 5 });
    expect(base.status).toBe("fail");
    expect(base.summary).toMatch(/not finite/);
    expect(base.summary).not.toMatch(/shuffled labels/);
    bad.xs.dispose();
    model.dispose();
  });

  it("sanityCheck stops after the data report finds NaN inputs: the other checks are skipped with the reason", async () => {
    const ds = mnist();
    const x = ds.x.slice();
    x.fill(NaN, 0, 784 * 600);
    const model = mlp();
    const r = await sanityCheck(model, { ...ds, x }, { loss, samples: 64, print: false });
    expect(r.verdicts[0]!.check).toBe("dataReport");
    expect(r.verdicts[0]!.status).toBe("fail");
    for (const v of r.verdicts.slice(1)) expect(v.summary).toMatch(/^skipped: .*NaN\/Inf/);
    expect(r.verdicts).toHaveLength(6);
    expect(r.status).toBe("fail");
    model.dispose();
  });
});

describe("regression with un-centred targets (y = 0.5 sum(x) + 5) on a healthy model", () => {
  const n = 256;
  const xs = seeded(4, () => tf.randomNormal([n, 4]));
  const ys = tf.tidy(() => tf.add(tf.mul(tf.sum(xs, 1, true), 0.5), 5));
  const model = seeded(5, () => tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 16, activation: "relu" }), tfl.layers.dense({ units: 1 })] }));
  afterAll(() => {
    tf.dispose([xs, ys]);
    model.dispose();
  });

  it("verifyInitLoss warns and names the targets (not the output layer), with the loss of predicting 0", () => {
    const v = verifyInitLoss(model, { xs, ys }, { loss: "meanSquaredError" });
    expect(v.status).toBe("warn");
    expect(v.summary).toMatch(/not centred/);
    expect(v.summary).toMatch(/priorBiasInit/);
    expect(v.summary).not.toMatch(/logits/);
    expect(v.numbers["zeroPredictionLoss"]).toBeGreaterThan(20);
    expect(v.numbers["targetMean"]).toBeCloseTo(5, 0);
  });

  it("inputIndependentBaseline passes: real inputs beat the zero-input run (the target mean is out of a short training's reach)", () => {
    const v = inputIndependentBaseline(model, { xs, ys }, { loss: "meanSquaredError" });
    expect(v.status, v.summary).toBe("pass");
    expect(v.numbers["baselineLoss"]).toBe(v.numbers["zeroLoss"]);
  });
});

describe("labels that do not fit the output are refused up front", () => {
  const sig = seeded(1, () => tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [784], units: 1, activation: "sigmoid" })] }));
  afterAll(() => sig.dispose());

  it("binary cross-entropy with labels [n] for an output [n, 1]: a ShapeMismatchError naming both shapes, nothing run", () => {
    const ys = tf.tidy(() => tf.cast(tf.greater(data.ys, 4), "float32"));
    for (const fn of [() => verifyInitLoss(sig, { xs: data.xs, ys }, { loss: "binaryCrossentropy" }), () => overfitOneBatch(sig, { xs: data.xs, ys }, { loss: "binaryCrossentropy" }), () => checkGradients(sig, { xs: data.xs, ys }, { loss: "binaryCrossentropy" })]) {
      expectRefused(fn, ShapeMismatchError, "SHAPE_MISMATCH", ["[64]", "[n, 1]"], { model: sig });
    }
    ys.dispose();
  });

  it("MSE with [n] against [n, 1] (which broadcasts to [n, n]) is refused too", () => {
    expectRefused(() => inputIndependentBaseline(sig, data, { loss: "meanSquaredError" }), ShapeMismatchError, "SHAPE_MISMATCH", ["[64]", "[n, 1]"], { model: sig });
  });
});

describe("a check that throws partway leaves no tensor behind", () => {
  it("overfitOneBatch, inputIndependentBaseline and checkGradients with a loss that throws on its 6th call", async () => {
    const model = mlp();
    const before = weightBits(model);
    for (const run of [
      (l: LossFn) => overfitOneBatch(model, data, { loss: l }),
      (l: LossFn) => inputIndependentBaseline(model, data, { loss: l, steps: 10 }),
      (l: LossFn) => checkGradients(model, data, { loss: l }),
    ]) {
      await expectNoLeaks(() => expect(() => run(throwingLoss(6))).toThrow("loss exploded"), { warmup: 1, iterations: 3 });
    }
    expect(weightBits(model)).toEqual(before);
    model.dispose();
  });

  it("checkBatchIndependence with a layer that throws under the gradient tape", async () => {
    let calls = 0;
    class Boom extends tfl.layers.Layer {
      static readonly className = "BoomForLeakTest";
      override call(x: tf.Tensor | tf.Tensor[]): tf.Tensor {
        if (++calls % 2 === 0) throw new Error("layer exploded");
        return tf.relu(Array.isArray(x) ? x[0]! : x);
      }
    }
    const model = seeded(1, () => tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [784], units: 8 }), new Boom({}), tfl.layers.dense({ units: 10, activation: "softmax" })] }));
    await expectNoLeaks(() => expect(() => checkBatchIndependence(model, data)).toThrow("layer exploded"), { warmup: 1, iterations: 3 });
    model.dispose();
  });
});

describe("sanityCheck validates its arguments first", () => {
  it("something that is not a model: an OptionsError naming model, before the data report", async () => {
    let reported = false;
    const e = await expectRejected(() => sanityCheck({} as tfl.LayersModel, mnist(), { loss, print: () => (reported = true) }), OptionsError, "INVALID_OPTIONS", "model");
    expect(e.message).toMatch(/tfjs-layers model/);
    expect(reported).toBe(false);
  });
});

describe("lesser findings", () => {
  it("LSTM dropout and recurrentDropout are 0 while a check runs, and put back", () => {
    const xs = seeded(2, () => tf.randomNormal([16, 5, 3]));
    const ys = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 3));
    const model = seeded(3, () => tfl.sequential({ layers: [tfl.layers.lstm({ inputShape: [5, 3], units: 4, dropout: 0.5, recurrentDropout: 0.5, recurrentInitializer: "zeros" }), tfl.layers.dense({ units: 3, activation: "softmax" })] }));
    const v = checkGradients(model, { xs, ys }, { loss });
    expect(v.status, v.summary).toBe("pass");
    const cell = (model.layers[0] as unknown as { cell: { dropout: number; recurrentDropout: number } }).cell;
    expect([cell.dropout, cell.recurrentDropout]).toEqual([0.5, 0.5]);
    tf.dispose([xs, ys]);
    model.dispose();
  });

  it("inputIndependentBaseline on a tiny held-out set warns that it is too few to judge", () => {
    const model = mlp();
    const small = { xs: tf.slice(data.xs, 0, 8), ys: tf.slice(data.ys, 0, 8) };
    const v = inputIndependentBaseline(model, small, { loss, steps: 5, heldOut: 0.1 });
    expect(v.status).toBe("warn");
    expect(v.summary).toMatch(/only 1 held-out sample: too few/);
    tf.dispose([small.xs, small.ys]);
    model.dispose();
  });
});
