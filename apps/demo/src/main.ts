import "reflect-metadata";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, epochPermutation, seeded, tensorData, useBackend, type BackendName, type Callback } from "@fitloop/core";
import { loadEmbeddedDigits } from "./embedded-mnist.js";

const { values } = parseArgs({
  options: {
    epochs: { type: "string", default: "3" },
    backend: { type: "string", default: "wasm" },
    model: { type: "string", default: "mlp" },
    batch: { type: "string", default: "64" },
    seed: { type: "string", default: "42" },
  },
});
const epochs = Number(values.epochs);
const batchSize = Number(values.batch);
const seed = Number(values.seed);

const backend = await useBackend(values.backend as BackendName);
const digits = loadEmbeddedDigits();
console.log(`fitloop demo: ${digits.count} embedded MNIST digits, backend ${backend}, model ${values.model}, ${epochs} epochs, batch ${batchSize}`);

// Shuffle once (the files are ordered by digit), then hold out 1,000 digits for validation.
const order = epochPermutation(digits.count, seed, -1);
const take = (from: number, to: number) => {
  const idx = order.subarray(from, to);
  const x = new Float32Array(idx.length * 784);
  const y = new Float32Array(idx.length);
  idx.forEach((src, i) => {
    x.set(digits.images.subarray(src * 784, src * 784 + 784), i * 784);
    y[i] = digits.labels[src]!;
  });
  const shape = values.model === "cnn" ? [idx.length, 28, 28, 1] : [idx.length, 784];
  return { xs: tf.tensor(x, shape), ys: tf.tensor1d(y) };
};
const train = take(0, digits.count - 1000);
const val = take(digits.count - 1000, digits.count);

const model = seeded(seed, () => {
  const m = tfl.sequential();
  if (values.model === "cnn") {
    m.add(tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 16, kernelSize: 3, activation: "relu" }));
    m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
    m.add(tfl.layers.flatten());
  } else {
    m.add(tfl.layers.dense({ inputShape: [784], units: 128, activation: "relu" }));
    m.add(tfl.layers.dropout({ rate: 0.2 }));
  }
  m.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
  return m;
});

let started = 0;
const progress: Callback = {
  name: "progress",
  beforeEpoch: () => void (started = performance.now()),
  afterEpoch: (ctx) => {
    const l = ctx.logs;
    const seconds = (performance.now() - started) / 1000;
    const rate = (train.xs.shape[0] / seconds).toFixed(0);
    console.log(
      `epoch ${ctx.state.epoch + 1}/${ctx.state.epochs}  loss ${l["loss"]!.toFixed(4)}  acc ${l["acc"]!.toFixed(4)}  ` +
        `val_loss ${l["val_loss"]!.toFixed(4)}  val_acc ${l["val_acc"]!.toFixed(4)}  ${seconds.toFixed(1)}s (${rate} samples/s)`,
    );
  },
};

const trainer = new Trainer({ model, optimizer: tf.train.adam(1e-3), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], seed, callbacks: [progress] });
const result = await trainer.fit({
  epochs,
  train: tensorData(train.xs, train.ys, { batchSize, seed }),
  validation: tensorData(val.xs, val.ys, { batchSize: 500, shuffle: false }),
});
const last = result.state.history.at(-1)!.logs;
console.log(`done: ${result.outcome.status}, validation accuracy ${(100 * last["val_acc"]!).toFixed(1)} % on 1,000 held-out digits`);
