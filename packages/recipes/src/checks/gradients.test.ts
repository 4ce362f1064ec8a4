import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, ShapeMismatchError } from "@fitloop/core";
import { expectNoLeaks, expectRefused } from "@fitloop/core/testing";
import { checkGradients } from "./index.js";
import { mlp, mnistBatch, weightBits } from "./models.fixture.js";

const loss = "sparseCategoricalCrossentropy" as const;
const data = mnistBatch(16, 5);
afterAll(() => data.dispose());

describe("checkGradients", () => {
  it("a healthy MLP on real digits: float32 central differences agree with backprop to ~1e-4 per variable", () => {
    for (const seed of [1, 2]) {
      const model = mlp({ seed });
      const v = checkGradients(model, data, { loss });
      expect(v.status).toBe("pass");
      expect(v.numbers["maxRelativeError"]).toBeLessThan(2e-3);
      expect(v.details!.variables.map((x) => x.name.split("/")[1])).toEqual(["kernel", "bias", "kernel", "bias"]);
      for (const x of v.details!.variables) {
        expect(v.numbers[`relErr:${x.name}`]).toBe(x.relativeError);
        expect(x.coordinates + x.skipped).toBe(10);
        expect(x.analyticNorm).toBeGreaterThan(0);
      }
      model.dispose();
    }
  });

  it("BatchNorm (training mode) and dropout (off for the check) pass too", () => {
    const model = mlp({ batchNorm: true, dropout: 0.5 });
    const v = checkGradients(model, data, { loss });
    expect(v.status).toBe("pass");
    expect(v.details!.variables).toHaveLength(6); // dense kernel/bias, gamma, beta, dense kernel/bias
    model.dispose();
  });

  it("planted bug: a tf.customGrad tanh whose gradient forgets the square is caught on the weights before it", () => {
    const model = mlp({ planted: "wrongGradient" });
    const v = checkGradients(model, data, { loss });
    expect(v.status).toBe("fail");
    const [k1, b1, k2, b2] = v.details!.variables;
    expect(k1!.relativeError).toBeGreaterThan(0.1); // before the bad tanh
    expect(b1!.relativeError).toBeGreaterThan(0.1);
    expect(k2!.relativeError).toBeLessThan(1e-2); // after it: backprop is right there
    expect(b2!.relativeError).toBeLessThan(1e-2);
    expect(v.summary).toContain(k1!.name);
    model.dispose();
  });

  it("a kink inside the step (ReLU exactly at 0: a model fed only zeros) is skipped, not reported as a wrong gradient", () => {
    const model = mlp({ planted: "ignoresInputs" });
    const v = checkGradients(model, data, { loss });
    expect(v.status).toBe("pass");
    expect(v.numbers["kinksSkipped"]).toBeGreaterThan(0);
    expect(v.summary).toMatch(/coordinates? at a kink skipped/);
    model.dispose();
  });

  it("leaves the model bit for bit as it was and leaks no tensor", async () => {
    const model = mlp({ batchNorm: true });
    const before = weightBits(model);
    await expectNoLeaks(() => checkGradients(model, data, { loss, coordinates: 2 }), { warmup: 1, iterations: 2 });
    expect(weightBits(model)).toEqual(before);
    model.dispose();
  });

  it("refuses bad options with a typed error", () => {
    const model = mlp();
    expectRefused(() => checkGradients(model, data, { loss, epsilon: 0, coordinates: 0 }), OptionsError, "INVALID_OPTIONS", ["epsilon", "coordinates"], { model });
    const ys = tf.zeros([3]);
    expectRefused(() => checkGradients(model, { xs: data.xs, ys }, { loss }), ShapeMismatchError, "SHAPE_MISMATCH", "16 samples but data.ys has 3", { model });
    ys.dispose();
    model.dispose();
  });
});
