import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, loadOptimizerStateDict, optimizerStateDict, seeded, silentLogger, type Callback, type TrainerStateDict } from "@fitloop/core";
import { expectNoLeaks } from "@fitloop/core/testing";
import { DataLoader, Normalizer, fitNormalizer, gaussianNoise, randomShift, splitDataset, twoSpirals, xor, type ArrayDataset } from "./index.js";

/** Spirals drawn as 4x4 one-channel "images" (the two coordinates spread over pixels), so image transforms apply. */
function spiralImages(): ArrayDataset {
  const s = twoSpirals({ samples: 96, seed: 3 });
  const x = new Float32Array(s.size * 16);
  for (let i = 0; i < s.size; i++) for (let p = 0; p < 16; p++) x[i * 16 + p] = s.x[2 * i + (p % 2)]! * (1 + (p >> 2));
  return { ...s, x, sampleShape: [4, 4, 1] };
}

function buildModel(seed: number): tfl.LayersModel {
  return seeded(seed, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [16], units: 12, activation: "relu" }));
    m.add(tfl.layers.dense({ units: 2, activation: "softmax" }));
    return m;
  });
}

const loaderFor = (ds: ArrayDataset, norm: Normalizer) =>
  new DataLoader(ds, { batchSize: 16, seed: 21, flatten: true, transforms: [randomShift({ maxShift: 1 }), gaussianNoise({ std: 0.05 }), norm.transform()] });

const weightsOf = (m: tfl.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));

describe("DataLoader with the fitloop Trainer", () => {
  const data = spiralImages();

  it("stop mid-epoch, resume in a 'fresh process' (new loader, new normalizer from the checkpoint): bit-identical weights", async () => {
    const norm = fitNormalizer(data, { stateKey: "x" });
    const full = buildModel(1);
    await new Trainer({ model: full, optimizer: tf.train.adam(1e-2), loss: "sparseCategoricalCrossentropy", seed: 5, logger: silentLogger, callbacks: [norm] }).fit({
      epochs: 3,
      train: loaderFor(data, norm),
    });

    // Run 1: stops after batch 2 of epoch 1 and saves everything.
    const model = buildModel(1);
    const opt = tf.train.adam(1e-2);
    let saved: TrainerStateDict | undefined;
    const interrupt: Callback = {
      name: "interrupt",
      afterBatch: (ctx) => {
        if (ctx.state.epoch === 1 && ctx.state.batchIndex === 2) {
          ctx.requestStop("interrupt");
          saved = t1.stateDict();
        }
      },
    };
    const t1 = new Trainer({ model, optimizer: opt, loss: "sparseCategoricalCrossentropy", seed: 5, logger: silentLogger, callbacks: [norm, interrupt] });
    await t1.fit({ epochs: 3, train: loaderFor(data, norm) });
    expect(saved!.train.cursor).toEqual({ epoch: 1, batchIndex: 3 });
    const optState = await optimizerStateDict(opt, model.trainableWeights.map((w) => w.read() as tf.Variable));

    // Run 2: new model, optimizer, normalizer (unfitted: its statistics come from the checkpoint) and loader.
    const model2 = buildModel(99);
    const weights = model.getWeights().map((w) => tf.tensor(w.dataSync(), w.shape));
    model2.setWeights(weights);
    tf.dispose(weights);
    const opt2 = tf.train.adam(1e-2);
    loadOptimizerStateDict(opt2, optState, model2.trainableWeights.map((w) => w.read() as tf.Variable));
    const norm2 = new Normalizer({ stateKey: "x" });
    const t2 = new Trainer({ model: model2, optimizer: opt2, loss: "sparseCategoricalCrossentropy", seed: 0, logger: silentLogger, callbacks: [norm2] });
    t2.loadStateDict(saved!);
    await t2.fit({ epochs: 3, train: loaderFor(data, norm2) });
    expect(weightsOf(model2)).toEqual(weightsOf(full));
    [full, model, model2].forEach((m) => m.dispose());
  });

  it("training with validation, prefetch and augmentation leaks no tensors, and learns", async () => {
    const splits = splitDataset(xor({ samples: 256, seed: 1 }), { fractions: { train: 0.75, validation: 0.25 }, seed: 1 });
    const model = seeded(2, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ inputShape: [2], units: 8, activation: "tanh" }));
      m.add(tfl.layers.dense({ units: 2, activation: "softmax" }));
      return m;
    });
    const trainer = new Trainer({ model, optimizer: tf.train.adam(0.05), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], logger: silentLogger });
    const train = new DataLoader(splits.train, { batchSize: 32, seed: 1, prefetch: 2, transforms: [gaussianNoise({ std: 0.05 })] });
    const validation = new DataLoader(splits.validation, { batchSize: 64, shuffle: false });
    await expectNoLeaks(() => trainer.fit({ epochs: 3, train, validation }), { warmup: 1, iterations: 3 });
    const r = await trainer.fit({ epochs: 10, train, validation });
    expect(r.state.history.at(-1)!.logs["val_acc"]).toBeGreaterThan(0.95);
    model.dispose();
  });
});
