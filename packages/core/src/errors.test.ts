import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { DataError, OptionsError, ShapeMismatchError, Trainer, silentLogger, tensorData, type Callback, type DataSource, type TrainerOptions } from "./index.js";
import { tinyFixture } from "./testing/index.js";

/** Runs fit and returns the error, checking that no hook ran and no weight changed. */
async function failsBeforeFirstStep(opts: Partial<TrainerOptions>, train: (fx: ReturnType<typeof tinyFixture>) => DataSource, validation?: (fx: ReturnType<typeof tinyFixture>) => DataSource): Promise<unknown> {
  const fx = tinyFixture({ samples: 12 });
  const calls: string[] = [];
  const spy: Callback = { name: "spy", beforeFit: () => void calls.push("beforeFit"), beforeBatch: () => void calls.push("batch") };
  const before = fx.model.getWeights().map((w) => Array.from(w.dataSync()));
  let error: unknown;
  try {
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [spy], ...opts });
    await t.fit({ epochs: 1, train: train(fx), ...(validation ? { validation: validation(fx) } : {}) });
  } catch (e) {
    error = e;
  }
  expect(calls).toEqual([]);
  expect(fx.model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
  fx.dispose();
  return error;
}

describe("bad input fails before the first step with a typed error", () => {
  it("wrong option types: every problem listed, each naming the option", async () => {
    const fx = tinyFixture();
    let err: unknown;
    try {
      new Trainer({ model: fx.model, optimizer: "adam" as unknown as tf.Optimizer, loss: "crossentropy" as "meanSquaredError", seed: 1.5 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OptionsError);
    const paths = (err as OptionsError).issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(["optimizer", "loss", "seed"]));
    expect((err as Error).message).toMatch(/optimizer: must be a tfjs optimizer instance/);
    expect((err as Error).message).toMatch(/loss: must be one of sparseCategoricalCrossentropy/);
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "meanSquaredError" });
    await expect(t.fit({ epochs: 0, train: fx.data(4) })).rejects.toThrow(/epochs: must be >= 1/);
    await expect(t.fit({ epochs: 1, train: [] as unknown as DataSource })).rejects.toThrow(/train: must be a data source/);
    fx.dispose();
  });

  it("model output shape that does not match the labels", async () => {
    const err = await failsBeforeFirstStep({ loss: "categoricalCrossentropy" }, (fx) => tensorData(fx.xs, fx.ys, { batchSize: 4 }));
    expect(err).toBeInstanceOf(ShapeMismatchError);
    expect((err as Error).message).toMatch(/labels have shape \[12\] but the model outputs \[batch,3\].*use sparseCategoricalCrossentropy or one-hot/);
  });

  it("inputs that do not match the model's input shape", async () => {
    const err = await failsBeforeFirstStep({}, (fx) => tensorData(tf.zeros([12, 5]), fx.ys, { batchSize: 4 }));
    expect(err).toBeInstanceOf(ShapeMismatchError);
    expect((err as Error).message).toMatch(/train inputs have shape \[12,5\] but the model expects \[batch,4\]/);
  });

  it("labels out of range name the sample", async () => {
    const err = await failsBeforeFirstStep({}, (fx) => {
      const ys = fx.ys.arraySync();
      ys[7] = 3;
      return tensorData(fx.xs, tf.tensor1d(ys), { batchSize: 4 });
    });
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).code).toBe("LABEL_OUT_OF_RANGE");
    expect((err as DataError).sampleIndex).toBe(7);
    expect((err as Error).message).toMatch(/train label of sample 7 is 3; the model outputs 3 classes/);
  });

  it("NaN in inputs names the sample and feature (validation data too)", async () => {
    const err = await failsBeforeFirstStep(
      {},
      (fx) => fx.data(4),
      (fx) => {
        const xs = fx.xs.arraySync();
        xs[5]![2] = Number.NaN;
        return tensorData(tf.tensor2d(xs), fx.ys, { batchSize: 4 });
      },
    );
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).code).toBe("NON_FINITE_INPUT");
    expect((err as Error).message).toMatch(/validation input sample 5 contains NaN at feature 2/);
  });

  it("an empty data source (streaming, no batches)", async () => {
    const empty: DataSource = { batches: () => [] };
    const err = await failsBeforeFirstStep({}, () => empty);
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).code).toBe("EMPTY_DATA");
    expect(() => tensorData(tf.zeros([0, 4]), tf.zeros([0]), { batchSize: 4 })).toThrow(/0 samples/);
  });

  it("a streaming source is checked on its first batch", async () => {
    const stream = (fx: ReturnType<typeof tinyFixture>): DataSource => ({
      async *batches() {
        yield { xs: tf.fill([4, 4], Number.POSITIVE_INFINITY), ys: tf.slice(fx.ys, 0, 4) };
      },
    });
    const err = await failsBeforeFirstStep({}, stream);
    expect((err as DataError).code).toBe("NON_FINITE_INPUT");
    expect((err as Error).message).toMatch(/sample 0 contains Infinity/);
  });

  it("batch size larger than the data: refused only with dropLast (it would drop every sample); a non-integer seed", () => {
    const fx = tinyFixture({ samples: 12 });
    expect(() => tensorData(fx.xs, fx.ys, { batchSize: 64, dropLast: true })).toThrow(/batchSize 64 is larger than the data \(12 samples\) and dropLast/);
    expect(() => tensorData(fx.xs, fx.ys, { batchSize: 4, seed: 0.5 })).toThrow(OptionsError);
    expect(() => tensorData(fx.xs, fx.ys, { batchSize: 4, seed: 0.5 })).toThrow(/seed: must be an integer/);
    fx.dispose();
  });
});
