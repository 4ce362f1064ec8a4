import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError } from "@fitloop/core";
import { expectNoLeaks, expectRefused } from "@fitloop/core/testing";
import { overfitOneBatch } from "./index.js";
import { compiledWithSteppedAdam, mlp, mnistBatch, optimizerBits, shuffled, weightBits } from "./models.fixture.js";

const loss = "sparseCategoricalCrossentropy" as const;
const data = mnistBatch(64);
afterAll(() => data.dispose());

describe("overfitOneBatch", () => {
  it("a healthy MLP memorises 16 real digits: loss below 2% of its start, early stop, the curve reported", () => {
    const model = mlp();
    const v = overfitOneBatch(model, data, { loss });
    expect(v.status).toBe("pass");
    const curve = v.details!.curve;
    expect(curve[0]).toBeCloseTo(v.numbers["initialLoss"]!, 12);
    expect(curve.at(-1)).toBe(v.numbers["finalLoss"]);
    expect(v.numbers["ratio"]).toBeLessThanOrEqual(0.02);
    expect(v.numbers["steps"]).toBeLessThan(100); // stopped at the target, not after 200 steps
    expect(curve.length).toBe(v.numbers["steps"]! + 1);
    expect(v.numbers["accuracy"]).toBe(1);
    expect(v.numbers["batchSize"]).toBe(16);
    model.dispose();
  });

  it("planted bug: a model that multiplies its input by 0 cannot memorise the batch and fails", () => {
    const model = mlp({ planted: "ignoresInputs" });
    const v = overfitOneBatch(model, data, { loss, steps: 100 });
    expect(v.status).toBe("fail");
    expect(v.numbers["steps"]).toBe(100);
    expect(v.numbers["ratio"]).toBeGreaterThan(0.5);
    expect(v.summary).toMatch(/cannot memorise one batch; inputs ignored/);
    model.dispose();
  });

  it("regularisation off: dropout 0.5 and a strong L2 penalty do not stop it; the dropout rate is put back", () => {
    const model = mlp({ dropout: 0.5, l2: 1 });
    const v = overfitOneBatch(model, data, { loss });
    expect(v.status).toBe("pass");
    // deterministic: with dropout at rate 0 nothing is random, so a second run gives the same curve
    expect(overfitOneBatch(model, data, { loss }).details!.curve).toEqual(v.details!.curve);
    expect((model.layers.find((l) => l.getClassName() === "Dropout") as unknown as { rate: number }).rate).toBe(0.5);
    model.dispose();
  });

  it("does not catch shuffled labels: one batch is memorised whatever its labels (the baseline check does)", () => {
    const model = mlp();
    const ys = shuffled(data.ys);
    expect(overfitOneBatch(model, { xs: data.xs, ys }, { loss }).status).toBe("pass");
    ys.dispose();
    model.dispose();
  });

  it("a functional model with BatchNorm (training mode) passes too", () => {
    const model = mlp({ functional: true, batchNorm: true });
    expect(overfitOneBatch(model, data, { loss }).status).toBe("pass");
    model.dispose();
  });

  it("a curve that falls but not far enough is a warning; a non-finite loss fails", () => {
    const model = mlp();
    const slow = overfitOneBatch(model, data, { loss, steps: 8, warnAt: 0.9 });
    expect(slow.status).toBe("warn");
    expect(slow.summary).toMatch(/fell but not to 2%/);
    const exploding = overfitOneBatch(model, data, { loss: (_t, p) => tf.div(tf.sum(p, -1), 0), steps: 3 });
    expect(exploding.status).toBe("fail");
    model.dispose();
  });

  it("leaves model and compiled optimizer bit for bit as they were, and leaks no tensor", async () => {
    const model = mlp({ batchNorm: true, dropout: 0.2 });
    const optimizer = compiledWithSteppedAdam(model, data.xs, data.ys);
    const [weights, slots] = [weightBits(model), await optimizerBits(optimizer)];
    await expectNoLeaks(() => overfitOneBatch(model, data, { loss, steps: 5 }), { warmup: 1, iterations: 3 });
    expect(weightBits(model)).toEqual(weights);
    expect(await optimizerBits(optimizer)).toEqual(slots);
    optimizer.dispose();
    model.dispose();
  });

  it("refuses bad options with one typed error listing every problem", () => {
    const model = mlp();
    const e = expectRefused(() => overfitOneBatch(model, data, { loss, steps: 0, target: 2, learningRate: -1 }), OptionsError, "INVALID_OPTIONS", ["steps", "target", "learningRate"], { model });
    expect(e.issues).toHaveLength(3);
    model.dispose();
  });
});
