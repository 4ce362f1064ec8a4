/**
 * The writer of the kill test (kill.test.ts): resumes from <dir>'s latest checkpoint if there is one,
 * then trains a 4 MB layer (12 MB checkpoints with Adam's slots) on one sample forever, saving a
 * checkpoint every step (keeping 2), and prints one line per save, until it is killed. The step is
 * cheap, so most of the time is spent saving: the kills land inside writes.
 */
import "reflect-metadata";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, seeded, tensorData, type Logger } from "@fitloop/core";
import { Checkpoint, NoCheckpointError, resumeFrom } from "../index.js";
import { FileStore } from "../node/index.js";

const dir = process.argv[2]!;
await tf.setBackend("cpu");
const model = seeded(1, () => {
  const m = tfl.sequential();
  m.add(tfl.layers.dense({ inputShape: [1024], units: 1024 }));
  return m;
});
const { xs, ys } = seeded(2, () => ({ xs: tf.randomNormal([1, 1024]), ys: tf.randomNormal([1, 1024]) }));
const store = new FileStore(dir);
let resume;
try {
  resume = await resumeFrom(store);
} catch (e) {
  if (!(e instanceof NoCheckpointError)) throw e;
}
const logger: Logger = { info: (m) => void process.stdout.write(`${m}\n`), warn: (m) => void process.stderr.write(`${m}\n`), error: () => {}, debug: () => {} };
const trainer = new Trainer({ model, optimizer: tf.train.adam(1e-4), loss: "meanSquaredError", seed: 3, logger, callbacks: [new Checkpoint({ store, every: { steps: 1 }, keepLast: 2 })] });
await trainer.fit({ epochs: 1_000_000, train: tensorData(xs, ys, { batchSize: 1 }), ...(resume ? { resumeFrom: resume } : {}) });
