import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, captureWeights, loadWeights, resolveLoss, seeded, silentLogger } from "@fitloop/core";
import { DataLoader, fitNormalizer, splitDataset } from "@fitloop/datasets";
import { loadEmbeddedMnist } from "@fitloop/datasets/node";
import { findLearningRate } from "./index.js";

/**
 * Does `valley` find a good learning rate? The problem: an MLP 784-32-10 on 1,500 of the embedded
 * MNIST digits, Adam, batches of 32, 2 epochs (94 steps). The best learning rate for that budget comes
 * from full trainings over a log grid (quarter decades), each from the same initial weights; the
 * finder then starts from those weights too.
 *
 * Measured (cpu backend; deterministic, so this test prints the same table): the loss of the final
 * weights on the whole training split, for each grid point:
 *
 *   lr     3.0e-4 5.6e-4 1.0e-3 1.8e-3 3.2e-3 5.6e-3 1.0e-2 1.8e-2 3.2e-2
 *   loss    0.992  0.616  0.419  0.325  0.271  0.236  0.220  0.356  0.596
 *   best 1e-2; valley 5.62e-3 (x1.78), steep 6.31e-3, minimum 1.00e-2, slide 0.794; confidence ok
 *
 * Over six seeds (data order and initial weights, 0-5) with these settings, valley was within
 * x1.00-x1.78 of the best (best 3.2e-3 to 1e-2). With fastai's default startLr of 1e-7 it was x1.3-x10
 * *below* the best on the same seeds: the first 38 of its 100 steps then run below 1e-4, and the
 * smoothing's lag (about 50 steps) spans 4 decades of the sweep; see the README. With plain SGD
 * (best 0.18 for this budget, seeds 0-2) valley was x10-x13 below the best even from 1e-4 (steep was
 * within x1.1-x2.9), so this test uses Adam, fastai's default optimizer (where valley is normally used).
 *
 * About 10 s on the cpu backend on 2 cores.
 */
const GRID = [3e-4, 5.6e-4, 1e-3, 1.8e-3, 3.2e-3, 5.6e-3, 1e-2, 1.8e-2, 3.2e-2];

describe("valley against the best learning rate of full trainings", () => {
  it("lands within a factor of 3 of the learning rate with the lowest final training loss", async () => {
    const digits = loadEmbeddedMnist();
    const { train } = splitDataset(digits, { fractions: { train: 0.15, rest: 0.85 }, seed: 1 });
    const data = fitNormalizer(train, { per: "global" }).apply(train);
    const loader = new DataLoader(data, { batchSize: 32, seed: 2, flatten: true, prefetch: 0 });
    const model = seeded(3, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ inputShape: [784], units: 32, activation: "relu" }));
      m.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
      return m;
    });
    const init = await captureWeights(model);
    const xs = tf.tensor2d(data.x, [data.size, 784]);
    const ys = tf.tensor1d(Float32Array.from(data.y));
    const lossFn = resolveLoss("sparseCategoricalCrossentropy");

    const finals: number[] = [];
    for (const lr of GRID) {
      loadWeights(model, init);
      const optimizer = tf.train.adam(lr);
      await new Trainer({ model, optimizer, loss: "sparseCategoricalCrossentropy", seed: 4, logger: silentLogger }).fit({ epochs: 2, train: loader });
      // the loss of the final weights on the whole training split
      finals.push(tf.tidy(() => tf.mean(lossFn(ys, model.apply(xs) as tf.Tensor)).dataSync()[0]!));
      optimizer.dispose();
    }
    const best = GRID[finals.indexOf(Math.min(...finals))]!;

    loadWeights(model, init);
    const optimizer = tf.train.adam(1e-3);
    const result = await findLearningRate({ model, optimizer, loss: "sparseCategoricalCrossentropy", train: loader, startLr: 1e-4 });
    const valley = result.lr!;
    const ratio = Math.max(valley / best, best / valley);
    console.log(
      [
        `lr      ${GRID.map((g) => g.toExponential(1).padStart(7)).join("")}`,
        `loss    ${finals.map((l) => l.toFixed(3).padStart(7)).join("")}`,
        `best ${best}, valley ${valley.toPrecision(3)} (x${ratio.toFixed(2)}), steep ${result.suggestions.steep!.lr.toPrecision(3)}, minimum ${result.suggestions.minimum!.lr.toPrecision(3)}, slide ${result.suggestions.slide!.lr.toPrecision(3)}; ${result.stopReason} after ${result.steps} steps; confidence ${result.confidence.verdict}`,
      ].join("\n"),
    );
    expect(result.confidence.verdict).toBe("ok");
    expect(ratio).toBeLessThanOrEqual(3);
    tf.dispose([xs, ys]);
    optimizer.dispose();
    model.dispose();
  });
});
