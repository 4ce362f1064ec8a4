import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { OptionsError, seeded } from "@fitloop/core";
import { expectNoLeaks, expectRefused } from "@fitloop/core/testing";
import { checkBatchIndependence } from "./index.js";
import { mlp, mnistBatch, weightBits } from "./models.fixture.js";

const data = mnistBatch(16);
afterAll(() => data.dispose());

describe("checkBatchIndependence", () => {
  it("a healthy MLP (sequential, and functional with BatchNorm and dropout) passes: cross-sample gradients exactly 0", () => {
    for (const model of [mlp(), mlp({ functional: true, batchNorm: true, dropout: 0.5 })]) {
      const v = checkBatchIndependence(model, data);
      expect(v.status).toBe("pass");
      expect(v.numbers["crossGradient"]).toBe(0);
      expect(v.numbers["ownGradient"]).toBeGreaterThan(0);
      expect(v.details!.probes.map((p) => p.sample)).toEqual([0, 4, 7]); // first, middle, last of 8
      model.dispose();
    }
  });

  it("planted bug: a layer that subtracts the batch mean is caught, naming the samples it mixes with", () => {
    const model = mlp({ planted: "mixesBatch" });
    const v = checkBatchIndependence(model, data);
    expect(v.status).toBe("fail");
    expect(v.numbers["crossGradient"]).toBeGreaterThan(1e-4);
    expect(v.details!.probes[0]!.mixedWith).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(v.summary).toMatch(/^inference mode: sample 0's output has gradient up to .* on 7 other samples' inputs .*: a layer mixes information across the batch$/);
    model.dispose();
  });

  it("BatchNorm mixes the batch in training mode only: training: true shows it, inference passes", () => {
    const model = mlp({ batchNorm: true });
    expect(checkBatchIndependence(model, data).status).toBe("pass");
    expect(checkBatchIndependence(model, data, { training: true }).status).toBe("fail");
    model.dispose();
  });

  it("a reshape across the batch axis (a flatten that folds samples together) is caught", () => {
    const model2 = seeded(3, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.inputLayer({ inputShape: [784] }));
      m.add(new PairRows({}));
      m.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
      return m;
    });
    const v = checkBatchIndependence(model2, data, { batchSize: 8 });
    expect(v.status).toBe("fail");
    expect(v.details!.probes[0]!.mixedWith).toEqual([1]);
    model2.dispose();
  });

  it("a model that ignores its inputs gets a warning: zero gradient on its own input too", () => {
    const model = mlp({ planted: "ignoresInputs" });
    const v = checkBatchIndependence(model, data);
    expect(v.status).toBe("warn");
    expect(v.summary).toMatch(/ignores its inputs/);
    model.dispose();
  });

  it("leaves the model bit for bit as it was and leaks no tensor", async () => {
    const model = mlp({ batchNorm: true, dropout: 0.3 });
    const before = weightBits(model);
    await expectNoLeaks(() => checkBatchIndependence(model, data, { training: true }));
    await expectNoLeaks(() => checkBatchIndependence(model, data));
    expect(weightBits(model)).toEqual(before);
    model.dispose();
  });

  it("refuses bad options; labels are not needed", () => {
    const model = mlp();
    expectRefused(() => checkBatchIndependence(model, { xs: data.xs }, { batchSize: 1 }), OptionsError, "INVALID_OPTIONS", "batchSize", { model });
    expectRefused(() => checkBatchIndependence(model, { xs: data.xs }, { training: "yes" } as never), OptionsError, "INVALID_OPTIONS", "training", { model });
    expect(checkBatchIndependence(model, { xs: data.xs }).status).toBe("pass");
    model.dispose();
  });
});

/** Swaps information between neighbouring samples (0<->1, 2<->3, ...) by reshaping across the batch axis. */
class PairRows extends tfl.layers.Layer {
  static readonly className = "PairRows";
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      const [n, f] = x.shape as [number, number];
      // the bug: averaging features over a [n/2, 2, f] view mixes samples 2k and 2k+1
      const pairs = tf.reshape(x, [n / 2, 2, f]);
      return tf.reshape(tf.add(pairs, tf.mean(pairs, 1, true)), [n, f]);
    });
  }
}
