import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-wasm";
import { useWasm } from "./index.js";
import { seeded } from "./testing.fixture.js";

/**
 * The package helping plain tfjs (no fitloop loop): `model.fit` of a small CNN on the wasm backend
 * fails with stock tfjs-wasm (it has no Conv2DBackpropFilter) and trains once `useWasm()` ran.
 */
function cnn(): tfl.LayersModel {
  return seeded(3, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, activation: "relu" }));
    m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
    m.add(tfl.layers.flatten());
    m.add(tfl.layers.dense({ units: 2, activation: "softmax" }));
    m.compile({ optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy" });
    return m;
  });
}

/** Bright left half for class 0, bright right half for class 1: learnable in a few epochs. */
function data(): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
  const n = 32;
  const xs = new Float32Array(n * 64);
  for (let s = 0; s < n; s++) for (let p = 0; p < 64; p++) xs[s * 64 + p] = (p % 8 < 4) === (s % 2 === 0) ? 1 : 0.1 * ((s * 7 + p) % 5);
  return { xs: tf.tensor4d(xs, [n, 8, 8, 1]), ys: tf.tensor2d(Array.from({ length: n }, (_, s) => [s % 2])) };
}

describe("model.fit of a CNN on wasm", () => {
  it("fails with stock tfjs-wasm (no Conv2DBackpropFilter), and trains with @fitloop/wasm", async () => {
    await tf.setBackend("wasm");
    await tf.ready();
    const { xs, ys } = data();
    const stock = cnn();
    await expect(stock.fit(xs, ys, { epochs: 1, batchSize: 8, verbose: 0 })).rejects.toThrow(/Conv2DBackpropFilter/);
    stock.dispose();

    expect(await useWasm({ threads: false })).toBe("wasm");
    const model = cnn();
    const history = await model.fit(xs, ys, { epochs: 15, batchSize: 8, verbose: 0 });
    const loss = history.history["loss"] as number[];
    expect(loss.every(Number.isFinite)).toBe(true);
    expect(loss.at(-1)!).toBeLessThan(loss[0]! * 0.5);
    const acc = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(model.predict(xs) as tf.Tensor, -1), tf.cast(tf.reshape(ys, [-1]), "int32")), "float32")).dataSync()[0]!);
    expect(acc).toBe(1);
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
