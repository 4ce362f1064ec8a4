import * as tfl from "@tensorflow/tfjs-layers";
import { seeded } from "@fitloop/core";

export type ModelKind = "cnn" | "mlp";
export const MODEL_KINDS: readonly ModelKind[] = ["cnn", "mlp"];

/**
 * cnn: two conv blocks (3x3 conv with ReLU, then BatchNorm, 2x2 max-pool; 32 then 64 filters), dense 128,
 * dropout 0.3, softmax. About 225k parameters.
 * mlp: 784-256-128-10 with dropout 0.2 (the quick configuration the test runs).
 */
export function buildModel(kind: ModelKind, seed: number): tfl.LayersModel {
  return seeded(seed, () => {
    const m = tfl.sequential();
    if (kind === "cnn") {
      m.add(tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: "relu" }));
      m.add(tfl.layers.batchNormalization({ momentum: 0.9 }));
      m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
      m.add(tfl.layers.conv2d({ filters: 64, kernelSize: 3, activation: "relu" }));
      m.add(tfl.layers.batchNormalization({ momentum: 0.9 }));
      m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
      m.add(tfl.layers.flatten());
      m.add(tfl.layers.dense({ units: 128, activation: "relu" }));
      m.add(tfl.layers.dropout({ rate: 0.3 }));
    } else {
      m.add(tfl.layers.dense({ inputShape: [784], units: 256, activation: "relu" }));
      m.add(tfl.layers.dropout({ rate: 0.2 }));
      m.add(tfl.layers.dense({ units: 128, activation: "relu" }));
    }
    m.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
    return m;
  });
}
