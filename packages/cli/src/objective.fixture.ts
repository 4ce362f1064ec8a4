/**
 * The objective module the CLI tests run (`fitloop tune --objective src/objective.fixture.ts`): a
 * tiny real tfjs classifier on the cpu backend, 6 epochs of 4 batches on four gaussian blobs,
 * reporting val_loss per epoch (TrialReporter: pruning) and, with --checkpoints, checkpointing
 * every epoch (trialCheckpoint: a retried trial resumes). Environment:
 *   FITLOOP_EPOCH_LOG=<file>       appends `trial N retry_of M epoch E pid P` as each epoch starts
 *   SLOW_EPOCH_MS=<ms>             sleeps that long at the start of each epoch (the kill test)
 *   FITLOOP_CHEAP_OBJECTIVE=1      no tfjs: 6 "epochs" of a formula in the params (the many-workers test)
 */
import { appendFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, seeded, silentLogger, tensorData, useBackend, type Callback } from "@fitloop/core";
import { TrialReporter, int, logUniform, medianPruner, type Params, type Trial } from "@fitloop/recipes";
import { trialCheckpoint } from "@fitloop/recipes/node";

export const space = { lr: logUniform(1e-3, 0.3), units: int(4, 32) };
export const trials = 6;
export const direction = "minimize";
export const pruner = medianPruner({ startupTrials: 4, warmupSteps: 2 });
export const EPOCHS = 6;

type S = typeof space;
const epochLog = process.env["FITLOOP_EPOCH_LOG"];
const slowEpochMs = Number(process.env["SLOW_EPOCH_MS"] ?? 0);

function logEpoch(trial: Trial<S>, epoch: number): void {
  if (epochLog) appendFileSync(epochLog, `trial ${trial.number} retry_of ${trial.retryOf ?? "-"} epoch ${epoch} pid ${process.pid}\n`);
}

/** Four gaussian blobs in 8 dimensions: 256 points to train on (4 batches of 64), 64 to validate. */
let data: { train: { xs: tf.Tensor; ys: tf.Tensor }; val: { xs: tf.Tensor; ys: tf.Tensor } } | undefined;
async function blobs() {
  if (data) return data;
  await useBackend("cpu", { logger: silentLogger });
  const make = (n: number, seed: number) =>
    seeded(seed, () => {
      const ys = tf.tensor1d(Array.from({ length: n }, (_, i) => i % 4));
      return { xs: tf.add(tf.mul(tf.oneHot(tf.cast(ys, "int32"), 8), 1.5), tf.randomNormal([n, 8])), ys };
    });
  data = { train: make(256, 1), val: make(64, 2) };
  return data;
}

/** Without tfjs: the same reports and pruning, for tests about sharing rather than training. */
async function cheapObjective({ lr, units }: Params<S>, trial: Trial<S>): Promise<number> {
  let value = Number.NaN;
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    logEpoch(trial, epoch);
    await sleep(slowEpochMs || 15);
    value = (Math.log10(lr) + 1.5) ** 2 + 8 / units + 1 / (epoch + 1);
    await trial.report(value, epoch);
    if (await trial.shouldPrune()) {
      trial.prune(`pruned at epoch ${epoch}`);
      break;
    }
  }
  return value;
}

export async function objective(params: Params<S>, trial: Trial<S>): Promise<number> {
  if (process.env["FITLOOP_CHEAP_OBJECTIVE"] === "1") return cheapObjective(params, trial);
  const { train, val } = await blobs();
  const model = seeded(trial.seed, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [8], units: params.units, activation: "relu" }));
    m.add(tfl.layers.dense({ units: 4, activation: "softmax" }));
    return m;
  });
  const checkpoint = trial.checkpointDir !== undefined ? await trialCheckpoint(trial) : undefined;
  const epochs: Callback = {
    name: "EpochLog",
    beforeEpoch: async (ctx) => {
      logEpoch(trial, ctx.state.epoch);
      if (slowEpochMs) await sleep(slowEpochMs);
    },
  };
  const trainer = new Trainer({
    model,
    optimizer: tf.train.adam(params.lr),
    loss: "sparseCategoricalCrossentropy",
    seed: trial.seed,
    logger: silentLogger,
    callbacks: [...(checkpoint ? [checkpoint.callback] : []), new TrialReporter(trial), epochs],
  });
  try {
    const r = await trainer.fit({
      epochs: EPOCHS,
      train: tensorData(train.xs, train.ys, { batchSize: 64, seed: trial.seed }),
      validation: tensorData(val.xs, val.ys, { batchSize: 64 }),
      ...(checkpoint?.resumeFrom ? { resumeFrom: checkpoint.resumeFrom } : {}),
    });
    return r.state.history.at(-1)?.logs["val_loss"] ?? Number.NaN;
  } finally {
    model.dispose();
  }
}
