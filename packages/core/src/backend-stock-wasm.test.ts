import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-wasm";
import { BackendError, seeded, silentLogger, tensorData, Trainer } from "./index.js";
import { weightsOf } from "./testing/index.js";

/**
 * Stock tfjs-wasm (no `@fitloop/wasm` registered in this process: each test file has its own) cannot
 * train a CNN. The error a user gets names the fix instead of tfjs's "Kernel ... not registered".
 */
describe("a CNN on stock tfjs-wasm", () => {
  it("fails with a BackendError that says npm install @fitloop/wasm; the model is unchanged; an MLP still trains", async () => {
    await tf.setBackend("wasm");
    await tf.ready();
    expect(tf.getKernel("Conv2DBackpropFilter", "wasm")).toBeUndefined();
    const xs = seeded(1, () => tf.randomUniform([8, 6, 6, 1]));
    const ys = tf.tensor1d([0, 1, 0, 1, 0, 1, 0, 1]);
    const model = seeded(2, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3 }));
      m.add(tfl.layers.flatten());
      m.add(tfl.layers.dense({ units: 2, activation: "softmax" }));
      return m;
    });
    const before = weightsOf(model);
    const trainer = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger });
    const err = await trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 4 }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toContain("Conv2DBackpropFilter");
    expect((err as Error).message).toContain("npm install @fitloop/wasm");
    expect(((err as Error).cause as Error).message).toMatch(/not registered/);
    expect(weightsOf(model)).toEqual(before);

    const mlp = seeded(3, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.flatten({ inputShape: [6, 6, 1] }));
      m.add(tfl.layers.dense({ units: 2, activation: "softmax" }));
      return m;
    });
    const { outcome } = await new Trainer({ model: mlp, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger }).fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 4 }) });
    expect(outcome.status).toBe("completed");
    tf.dispose([xs, ys]);
    model.dispose();
    mlp.dispose();
    await tf.setBackend("cpu");
  });
});
