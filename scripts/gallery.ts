/**
 * The plot gallery in docs/gallery: a real short run on the embedded MNIST digits, drawn by
 * @fitloop/report. An MLP on 8,000 digits (1,000 held out), wasm backend: the LR range test first
 * (its curve and suggestion), then 4 epochs of 1cycle at the suggested rate (learning rate and
 * Adam's beta1 cycle per step) with gradient clipping by global norm (grad_norm per step) and
 * validation after every epoch. Writes the PNGs, the HTML report and docs/gallery/README.md.
 *
 *   pnpm run docs:gallery
 */
import "reflect-metadata";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, seeded, useBackend } from "../packages/core/src/index.js";
import { DataLoader, fitNormalizer, splitDataset } from "../packages/datasets/src/index.js";
import { loadEmbeddedMnist } from "../packages/datasets/src/node/index.js";
import { findLearningRate } from "../packages/callbacks/lr-finder/src/index.js";
import { Scheduler, oneCycleLR } from "../packages/callbacks/lr-schedule/src/index.js";
import { GradClip } from "../packages/callbacks/grad-clip/src/index.js";
import { Report, formatNumber } from "../packages/callbacks/report/src/index.js";

const started = performance.now();
const out = join(dirname(fileURLToPath(import.meta.url)), "..", "docs", "gallery");
const seed = 7;
const epochs = 4;
const maxNorm = 2;

const backend = await useBackend("wasm");
const digits = loadEmbeddedMnist();
const { train, validation } = splitDataset(digits, { fractions: { train: 0.8, validation: 0.1, rest: 0.1 }, seed });
const norm = fitNormalizer(train, { per: "global" });
const trainData = new DataLoader(train, { batchSize: 64, seed, flatten: true, transforms: [norm.transform()] });
const valData = new DataLoader(validation, { batchSize: 500, shuffle: false, flatten: true, transforms: [norm.transform()] });
const model = seeded(seed, () => {
  const m = tfl.sequential({ name: "mlp" });
  m.add(tfl.layers.dense({ inputShape: [784], units: 128, activation: "relu" }));
  m.add(tfl.layers.dropout({ rate: 0.2 }));
  m.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
  return m;
});
const optimizer = tf.train.adam(1e-3);

// The range test puts the model and the optimizer back exactly afterwards.
const found = await findLearningRate({ model, optimizer, loss: "sparseCategoricalCrossentropy", train: trainData, callbacks: [norm], startLr: 1e-4, seed });
console.log(`LR range test: ${found.stopReason} after ${found.steps} steps; valley ${found.lr?.toExponential(2)} (confidence ${found.confidence.verdict})`);
const maxLr = found.lr !== undefined && found.confidence.verdict === "ok" ? found.lr : 3e-3;

const cycle = oneCycleLR({ maxLr, epochs, stepsPerEpoch: trainData.batchesPerEpoch });
const report = new Report({
  dir: out,
  formats: ["png", "html"],
  title: "fitloop gallery: an MLP on the embedded MNIST digits",
  lrFinder: found,
  gradNormLimit: maxNorm,
  config: {
    data: `${train.size} embedded MNIST digits to train, ${validation.size} to validate (global normalisation)`,
    plugins: `Normalizer, Scheduler(1cycle, maxLr ${maxLr.toExponential(2)}, beta1 0.95 -> 0.85 -> 0.95), GradClip(globalNorm, max ${maxNorm}), Report`,
    seed,
  },
});
const trainer = new Trainer({
  model,
  optimizer,
  loss: "sparseCategoricalCrossentropy",
  metrics: ["acc"],
  seed,
  callbacks: [norm, new Scheduler(cycle), new GradClip({ max: maxNorm }), report],
});
const { state, outcome } = await trainer.fit({ epochs, train: trainData, validation: valData });
const last = state.history.at(-1)!.logs;
for (const { epoch, logs } of state.history) {
  console.log(`epoch ${epoch + 1}: loss ${logs["loss"]!.toFixed(3)} acc ${logs["acc"]!.toFixed(3)} val_loss ${logs["val_loss"]!.toFixed(3)} val_acc ${logs["val_acc"]!.toFixed(3)} grad_norm ${logs["grad_norm"]!.toFixed(2)} clipped ${(100 * logs["grad_clipped"]!).toFixed(0)}%`);
}

const pct = (v: number | undefined) => `${(100 * (v ?? Number.NaN)).toFixed(1)} %`;
const readme = `# Plot gallery

Made by [\`@fitloop/report\`](../../packages/callbacks/report) from a real run, regenerated with
\`pnpm run docs:gallery\` (\`scripts/gallery.ts\`, about 15 seconds on the wasm backend): an MLP
(784-128-10, dropout 0.2, Adam) on ${train.size} of the embedded MNIST digits, ${validation.size} held out.
First the learning-rate range test (\`@fitloop/lr-finder\`), then ${epochs} epochs of 1cycle at the
suggested rate (\`@fitloop/lr-schedule\`) with gradient clipping by global norm at ${maxNorm}
(\`@fitloop/grad-clip\`). The run ${outcome.status}: validation accuracy ${pct(last["val_acc"])}, validation loss
${formatNumber(last["val_loss"])}, on the ${backend} backend.

The whole report, with the final metrics and the run's configuration, is one self-contained HTML
file: [report.html](report.html) (download it and open it; it loads nothing from anywhere).

## Loss

Training and validation loss in one plot: the loss of every batch (light), its mean over each epoch
(drawn at the epoch's middle, since it averages over the epoch) and the validation loss measured at
each epoch's end.

![Training and validation loss](loss.png)

## Accuracy

The first metric, training and validation, drawn the same way.

![Training and validation accuracy](metric.png)

## Learning rate and momentum

What every step ran with: the 1cycle schedule raises the learning rate to ${maxLr.toExponential(2)} while it
lowers Adam's beta1, then anneals both back.

![Learning rate and momentum per step](lr.png)

## Gradient norm

The global L2 norm of the gradients before clipping (\`grad_norm\`, logged by GradClip), per step
and as a moving average. Clipping at ${maxNorm} engaged on ${pct(state.history[0]!.logs["grad_clipped"])} of the steps of the first epoch
and ${pct(last["grad_clipped"])} of the last.

![Gradient norm per step](grad-norm.png)

## Learning-rate range test

Loss against the learning rate of a ${found.steps}-step sweep (${found.stopReason}), the smoothed curve, and
the suggestion (fastai's valley, ${found.lr?.toExponential(2)}) marked with its confidence verdict
(${found.confidence.verdict}).

![Learning-rate range test](lr-finder.png)
`;
writeFileSync(join(out, "README.md"), readme);
console.log(`wrote ${report.written.length + 1} files to ${out} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
