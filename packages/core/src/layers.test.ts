import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, seeded, silentLogger, tensorData } from "./index.js";
import { tinyFixture } from "./testing/index.js";

describe("BatchNormalization and Dropout behave as in model.fit", () => {
  it("BatchNorm moving statistics change during training", async () => {
    const fx = tinyFixture({ samples: 32, withBatchNormAndDropout: true });
    const bn = fx.model.layers.find((l) => l.getClassName() === "BatchNormalization")!;
    const moving = () => bn.getWeights().slice(2).map((w) => Array.from(w.dataSync())); // movingMean, movingVariance
    const [mean0, var0] = moving();
    const t = new Trainer({ model: fx.model, optimizer: tf.train.adam(1e-2), loss: "sparseCategoricalCrossentropy", logger: silentLogger });
    await t.fit({ epochs: 2, train: fx.data(8) });
    const [mean1, var1] = moving();
    expect(mean0!.every((v) => v === 0)).toBe(true);
    expect(var0!.every((v) => v === 1)).toBe(true);
    expect(mean1!.some((v) => Math.abs(v) > 1e-3)).toBe(true);
    expect(var1!.some((v) => Math.abs(v - 1) > 1e-3)).toBe(true);
    fx.dispose();
  });

  it("matches model.fit step for step (same data, SGD, no dropout)", async () => {
    const build = () =>
      seeded(7, () => {
        const m = tfl.sequential();
        m.add(tfl.layers.dense({ inputShape: [4], units: 6, activation: "relu" }));
        m.add(tfl.layers.batchNormalization({ momentum: 0.9 }));
        m.add(tfl.layers.dense({ units: 3, activation: "softmax" }));
        return m;
      });
    const fx = tinyFixture({ samples: 24 });
    const a = build();
    const b = build();
    await new Trainer({ model: a, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger }).fit({
      epochs: 2,
      train: tensorData(fx.xs, fx.ys, { batchSize: 8, shuffle: false }),
    });
    b.compile({ optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy" });
    await b.fit(fx.xs, fx.ys, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    const wa = a.getWeights().map((w) => Array.from(w.dataSync()));
    const wb = b.getWeights().map((w) => Array.from(w.dataSync()));
    wa.forEach((arr, i) => arr.forEach((v, j) => expect(v).toBeCloseTo(wb[i]![j]!, 5)));
    a.dispose();
    b.dispose();
    fx.dispose();
  });

  it("dropout is active in training and off in validation", async () => {
    const model = seeded(3, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ inputShape: [4], units: 16, activation: "relu" }));
      m.add(tfl.layers.dropout({ rate: 0.9 }));
      m.add(tfl.layers.dense({ units: 3, activation: "softmax" }));
      return m;
    });
    const fx = tinyFixture({ samples: 16 });
    const trainOutputs: number[][] = [];
    const valLosses: number[] = [];
    const t = new Trainer({
      model,
      optimizer: tf.train.sgd(0), // lr 0: weights fixed, so only dropout can change outputs
      loss: "sparseCategoricalCrossentropy",
      logger: silentLogger,
      callbacks: [
        { afterForward: (ctx) => void trainOutputs.push(Array.from(ctx.outputs!.dataSync())) },
        { name: "val", afterValidate: (ctx) => void valLosses.push(ctx.logs["val_loss"]!) },
      ],
    });
    const fixed = tensorData(fx.xs, fx.ys, { batchSize: 16, shuffle: false });
    await t.fit({ epochs: 3, train: fixed, validation: fixed });
    expect(trainOutputs[0]).not.toEqual(trainOutputs[1]); // different dropout masks in training
    model.compile({ optimizer: "sgd", loss: "sparseCategoricalCrossentropy" });
    const evaluated = model.evaluate(fx.xs, fx.ys, { batchSize: 16 }) as tf.Scalar;
    expect(valLosses[0]).toBe(valLosses[1]);
    expect(valLosses[0]).toBeCloseTo(evaluated.dataSync()[0]!, 5);
    evaluated.dispose();
    model.dispose();
    fx.dispose();
  });
});

describe("labels", () => {
  it("sparse labels may be int32 or float32 and give the same loss", async () => {
    const fx = tinyFixture({ samples: 12 });
    const losses: number[] = [];
    for (const ys of [fx.ys, tf.cast(fx.ys, "int32")]) {
      const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], logger: silentLogger });
      const r = await t.fit({ epochs: 1, train: tensorData(fx.xs, ys, { batchSize: 12, shuffle: false }) });
      losses.push(r.state.history[0]!.logs["loss"]!);
    }
    expect(losses[1]).toBe(losses[0]);
    fx.dispose();
  });
});
