/**
 * One side of the fresh-process resume test (resume.test.ts), run with tsx in its own process:
 *
 *   tsx resume-child.fixture.ts <mode> <dir> <out.json>
 *     full    trains 2K steps, writes the final weights and history to out.json
 *     first   trains, checkpointing every K steps into <dir>, and stops at step K (mid-epoch)
 *     second  a new process: resumes from <dir>'s latest checkpoint and trains to 2K steps
 *     no-slots / no-rng   as second, with the optimizer slots zeroed / the RNG state dropped (negative controls)
 *
 * The run has dropout (seeded), augmentation (shift + noise, seeded per batch), a normaliser fitted on
 * the training split (plugin state), an LR schedule (warmup then cosine) and early stopping (its
 * counters and best weights in the checkpoint), on 600 of the embedded MNIST digits, cpu backend.
 */
import "reflect-metadata";
import "@tensorflow/tfjs-backend-cpu";
import { writeFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, seeded, silentLogger, type Callback, type RunSnapshot } from "@fitloop/core";
import { DataLoader, fitNormalizer, gaussianNoise, randomShift, splitDataset, subset } from "@fitloop/datasets";
import { loadEmbeddedMnist } from "@fitloop/datasets/node";
import { Scheduler, cosineAnnealingLR, linearWarmup, sequence } from "@fitloop/lr-schedule";
import { EarlyStopping } from "@fitloop/early-stopping";
import { Checkpoint, resumeFrom } from "../index.js";
import { FileStore } from "../node/index.js";

const [mode, dir, out] = process.argv.slice(2) as [string, string, string];
const K = 15; // 10 batches per epoch: step 15 is epoch 1, batch 5
const EPOCHS = 3; // 30 steps = 2K

await tf.setBackend("cpu");
const digits = loadEmbeddedMnist();
const small = subset(digits, Array.from({ length: 1000 }, (_, i) => i * 10));
const { train, validation } = splitDataset(small, { fractions: { train: 0.6, validation: 0.4 }, seed: 3 });
const norm = fitNormalizer(train, { per: "channel" });
const trainData = new DataLoader(train, { batchSize: 60, seed: 7, flatten: true, transforms: [randomShift({ maxShift: 2 }), gaussianNoise({ std: 0.05, clip: [0, 1] }), norm.transform()] });
const valData = new DataLoader(validation, { batchSize: 200, shuffle: false, flatten: true, transforms: [norm.transform()] });
const model = seeded(11, () => {
  const m = tfl.sequential();
  m.add(tfl.layers.dense({ inputShape: [784], units: 32, activation: "relu" }));
  m.add(tfl.layers.dropout({ rate: 0.3 }));
  m.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
  return m;
});
const lr = sequence([linearWarmup({ peak: 0.01, steps: 5 }), cosineAnnealingLR({ baseLr: 0.01, tMax: 25, etaMin: 1e-4 })], [5]);
const plugins = (): Callback[] => [norm, new Scheduler({ lr }), new EarlyStopping({ monitor: "val_loss", patience: 10, restoreBestWeights: false })];
const store = new FileStore(dir);

let resume: RunSnapshot | undefined;
if (mode !== "full" && mode !== "first") {
  const snap = await resumeFrom(store);
  // zeroed, not dropped: core refuses a stepped optimizer's state without its slots
  if (mode === "no-slots") resume = { ...snap, optimizer: { ...snap.optimizer, slots: Object.fromEntries(Object.entries(snap.optimizer.slots).map(([k, list]) => [k, list.map((s) => ({ ...s, values: new Float32Array(s.values.length) }))])) } };
  else if (mode === "no-rng") resume = { ...snap, trainer: { ...snap.trainer, rng: null } };
  else resume = snap;
}
const extra: Callback[] =
  mode === "first" ? [new Checkpoint({ store, every: { steps: K }, saveLast: false }), { name: "Interrupt", afterBatch: (ctx) => void (ctx.state.step === K && ctx.requestStop("interrupted")) }] : [];
const trainer = new Trainer({ model, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], seed: 5, callbacks: [...plugins(), ...extra], logger: silentLogger });
const result = await trainer.fit({ epochs: EPOCHS, train: trainData, validation: valData, ...(resume ? { resumeFrom: resume } : {}) });
writeFileSync(out, JSON.stringify({ step: result.state.step, weights: model.getWeights().map((w) => Array.from(w.dataSync())), history: result.state.history }));
