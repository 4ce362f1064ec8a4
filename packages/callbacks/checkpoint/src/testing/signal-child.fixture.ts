/**
 * The trainer of the signal test (signal.test.ts): a small model on the cpu backend for many
 * thousands of steps with `saveOnSignal`, printing `batch <n>` after every batch and the outcome
 * at the end. The loop's awaits all resolve at once on the cpu backend: a SIGINT is only handled
 * because the loop lets the event loop run between batches (core's `yieldEveryMs`).
 */
import "reflect-metadata";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, seeded, tensorData, type Logger } from "@fitloop/core";
import { Checkpoint } from "../index.js";
import { FileStore } from "../node/index.js";

const dir = process.argv[2]!;
await tf.setBackend("cpu");
const model = seeded(1, () => {
  const m = tfl.sequential();
  m.add(tfl.layers.dense({ inputShape: [8], units: 8, activation: "relu" }));
  m.add(tfl.layers.dense({ units: 1 }));
  return m;
});
const { xs, ys } = seeded(2, () => ({ xs: tf.randomNormal([64, 8]), ys: tf.randomNormal([64, 1]) }));
const logger: Logger = { info: () => {}, warn: (m) => void process.stderr.write(`${m}\n`), error: (m) => void process.stderr.write(`${m}\n`), debug: () => {} };
let batches = 0;
const trainer = new Trainer({
  model,
  optimizer: tf.train.sgd(0.01),
  loss: "meanSquaredError",
  logger,
  callbacks: [new Checkpoint({ store: new FileStore(dir), saveOnSignal: true, every: { epochs: 1_000_000 }, saveLast: false, filename: "signal-{step}" }), { name: "Print", afterBatch: () => void process.stdout.write(`batch ${++batches}\n`) }],
});
const r = await trainer.fit({ epochs: 2_000, train: tensorData(xs, ys, { batchSize: 8 }) }); // 16,000 batches: far longer than the test waits
process.stdout.write(`outcome ${r.outcome.status} after ${batches} batches\n`);
