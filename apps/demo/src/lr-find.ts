import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { findLearningRate, type RangeTestResult } from "@fitloop/lr-finder";
import type { DemoData } from "./data.js";

/**
 * The LR range test (fastai's lr_find) with the optimizer the recipe trains with (Adam, epsilon
 * 1e-8), from 1e-4 (the finder's advice for short sweeps) towards 10. The model and every plugin's
 * state are put back afterwards, bit for bit.
 */
export async function runLrFinder(model: tfl.LayersModel, data: DemoData, seed: number): Promise<RangeTestResult> {
  const optimizer = tf.train.adam(1e-3, 0.9, 0.999, 1e-8);
  try {
    const found = await findLearningRate({ model, optimizer, loss: "sparseCategoricalCrossentropy", train: data.trainData, callbacks: [data.norm], startLr: 1e-4, seed });
    const s = found.suggestions;
    const fmt = (x: { lr: number } | undefined) => (x ? x.lr.toExponential(2) : "-");
    console.log(`LR finder: ${found.stopReason} after ${found.steps} steps; suggestions valley ${fmt(s.valley)}, steep ${fmt(s.steep)}, minimum ${fmt(s.minimum)}, slide ${fmt(s.slide)}; confidence ${found.confidence.verdict}`);
    for (const reason of found.confidence.reasons) console.log(`  ${reason}`);
    return found;
  } finally {
    optimizer.dispose();
  }
}
