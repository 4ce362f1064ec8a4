/**
 * The run the page shows: two interleaved spirals, a small MLP, fitloop's Trainer with early
 * stopping on val_loss (best weights restored) and a warmup + cosine learning-rate schedule. Nothing
 * here knows about the DOM, so the same code trains in Node (`tsx`) as in the browser.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, resolveLoss, seeded, type Callback, type EpochRecord, type FitOutcome } from "@fitloop/core";
import { dataLoader, splitDataset, twoSpirals } from "@fitloop/datasets";
import { EarlyStopping, type EarlyStoppingResult } from "@fitloop/early-stopping";
import { Scheduler, cosineAnnealingLR, linearWarmup, sequence } from "@fitloop/lr-schedule";
import { MAX_EPOCHS, MIN_DELTA, PATIENCE } from "./config.js";

const PEAK_LR = 0.03;
const WARMUP_EPOCHS = 3;

export interface TrainingRun {
  readonly outcome: FitOutcome;
  readonly history: readonly EpochRecord[];
  /** What the EarlyStopping plugin decided (stop epoch, best epoch and value, reason, kind). */
  readonly earlyStopping: EarlyStoppingResult;
  /** val_loss of the model after the run: the best epoch's weights, which the plugin restored. */
  readonly restoredValLoss: number;
}

/** Builds the problem and trains it; `extraCallbacks` (live curves, ...) are added to the run's plugins. */
export async function trainSpirals(extraCallbacks: readonly Callback[] = []): Promise<TrainingRun> {
  // One turn with some noise: the MLP learns it in a few dozen epochs, then val_loss flattens out.
  const spirals = twoSpirals({ samples: 600, noise: 0.08, turns: 1, seed: 11 });
  const { train, validation } = splitDataset(spirals, { fractions: { train: 0.5, validation: 0.5 }, seed: 12 });
  const model = seeded(13, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [2], units: 64, activation: "relu" }));
    m.add(tfl.layers.dense({ units: 64, activation: "relu" }));
    m.add(tfl.layers.dense({ units: 2, activation: "softmax" }));
    return m;
  });

  const earlyStopping = new EarlyStopping({ monitor: "val_loss", patience: PATIENCE, minDelta: MIN_DELTA, restoreBestWeights: true });
  // Per epoch: a short linear warmup, then a cosine decay over the rest of the budget.
  const lr = sequence(
    [linearWarmup({ peak: PEAK_LR, steps: WARMUP_EPOCHS, start: PEAK_LR / 10 }), cosineAnnealingLR({ baseLr: PEAK_LR, tMax: MAX_EPOCHS - WARMUP_EPOCHS, etaMin: PEAK_LR / 100 })],
    [WARMUP_EPOCHS],
  );
  const trainer = new Trainer({
    model,
    optimizer: tf.train.adam(PEAK_LR),
    loss: "sparseCategoricalCrossentropy",
    metrics: ["acc"],
    seed: 14,
    callbacks: [earlyStopping, new Scheduler({ lr, interval: "epoch" }), ...extraCallbacks],
  });
  try {
    const { outcome, state } = await trainer.fit({
      epochs: MAX_EPOCHS,
      train: dataLoader(train, { batchSize: 64, seed: 15 }),
      validation: dataLoader(validation, { batchSize: 300, shuffle: false }),
    });
    return { outcome, history: state.history.map((r) => ({ epoch: r.epoch, logs: { ...r.logs } })), earlyStopping: earlyStopping.result, restoredValLoss: validationLoss(model, validation.x, validation.y) };
  } finally {
    earlyStopping.dispose(); // its copy of the best weights
    model.dispose();
    trainer.optimizer.dispose();
  }
}

/** The loss of the current weights on the whole validation set, in one pass. */
function validationLoss(model: tfl.LayersModel, x: Float32Array, y: Float32Array | Int32Array): number {
  return tf.tidy(() => {
    const xs = tf.tensor2d(x, [x.length / 2, 2]);
    const ys = tf.tensor1d(y, "float32");
    const loss = tf.mean(resolveLoss("sparseCategoricalCrossentropy")(ys, model.predict(xs) as tf.Tensor));
    return loss.dataSync()[0] ?? Number.NaN;
  });
}
