import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { Trainer, silentLogger, useBackend, type Callback } from "@fitloop/core";
import { expectNoLeaks, failingPlugins, tinyFixture, weightsOf } from "@fitloop/core/testing";
import { WeightDecay } from "./index.js";

/** A seeded run of the BatchNorm + Dropout fixture with Adam + WeightDecay (AdamW); its final weights. */
async function adamw(extra: Callback[] = []): Promise<number[][]> {
  const fx = tinyFixture({ samples: 32, withBatchNormAndDropout: true });
  const opt = tf.train.adam(0.02);
  try {
    await new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", seed: 5, logger: silentLogger, callbacks: [new WeightDecay({ weightDecay: 0.1 }), ...extra] }).fit({ epochs: 2, train: fx.data(8) });
    return weightsOf(fx.model);
  } finally {
    opt.dispose();
    fx.dispose();
  }
}

describe("on the wasm backend", () => {
  it("trains to the cpu backend's weights (float tolerance) and leaves no tensor behind, also when another plugin fails or cancels", async () => {
    const onCpu = await adamw();
    await useBackend("wasm");
    expect(tf.getBackend()).toBe("wasm");
    const onWasm = await adamw();
    onWasm.forEach((w, i) => {
      const scale = Math.max(...onCpu[i]!.map(Math.abs));
      w.forEach((v, j) => expect(Math.abs(v - onCpu[i]![j]!), `weight ${i}[${j}]`).toBeLessThan(1e-5 * scale));
    });
    await expectNoLeaks(() => adamw(), { warmup: 1, iterations: 2 });
    const failing = failingPlugins().filter((f) => ["beforeUpdate", "afterStep", "cancel"].includes(f.where));
    for (const { plugin } of failing) await expectNoLeaks(() => adamw([plugin]).catch(() => undefined), { warmup: 1, iterations: 2 });
  });
});
