/**
 * Shared parts of core's adversarial suites (state, failure paths, silent mistakes, data): the
 * refusal assertions of `@fitloop/core/testing` (typed error, culprit named, numTensors and weights
 * unchanged) and a small seeded model, data and trainer.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { seeded } from "../rng.js";
import { silentLogger } from "../logger.js";
import { Trainer, type TrainerOptions } from "../trainer.js";
import { tensorData } from "../data.js";

export { expectRefused, expectRejected, weightsOf, type Culprit, type ErrorClass } from "../testing/refusals.js";

/** A small seeded classifier: 4 inputs, 8 hidden, 3 classes (softmax). */
export function smallModel(seed = 1, inputs = 4, classes = 3): tfl.LayersModel {
  return seeded(seed, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [inputs], units: 8, activation: "relu" }));
    m.add(tfl.layers.dense({ units: classes, activation: "softmax" }));
    return m;
  });
}

/** 24 samples of 4 features with labels 0..2, as tensors the caller disposes. */
export function smallData(samples = 24, seed = 2): { xs: tf.Tensor2D; ys: tf.Tensor1D } {
  return seeded(seed, () => ({
    xs: tf.randomNormal([samples, 4]) as tf.Tensor2D,
    ys: tf.tensor1d(Array.from({ length: samples }, (_, i) => i % 3)),
  }));
}

/**
 * A trainer on `smallModel` (Adam, sparse cross-entropy, silent logger) and its data. The
 * optimizer is created, and a throwaway step is not taken: counts taken after this call include
 * everything the trainer holds.
 */
export function smallRun(options: Partial<TrainerOptions> = {}) {
  const model = options.model ?? smallModel();
  const data = smallData();
  const trainer = new Trainer({ model, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", logger: silentLogger, ...options });
  return {
    model,
    trainer,
    xs: data.xs,
    ys: data.ys,
    train: (batchSize = 8) => tensorData(data.xs, data.ys, { batchSize, seed: 3 }),
    dispose() {
      model.dispose();
      tf.dispose([data.xs, data.ys]);
    },
  };
}
