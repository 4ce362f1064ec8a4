import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { DataError, ShapeMismatchError, Trainer, arrayData, seeded, silentLogger, tensorData, type Batch, type Callback, type DataSource, type LossName } from "./index.js";
import { countDeviceReads } from "./testing/index.js";
import { expectRejected, smallModel, weightsOf } from "./adversarial/harness.fixture.js";

/** Six batches of 4 samples (4 features, labels 0..2); `edit` may spoil one of them. */
function batches(edit?: (b: number, xs: number[][], ys: number[]) => void, regression = false): Batch[] {
  return Array.from({ length: 6 }, (_, b) => {
    const xs = Array.from({ length: 4 }, (_, i) => [b + i, b - i, (b * i) % 3, 1]);
    const ys = [0, 1, 2, b % 3];
    edit?.(b, xs, ys);
    // regression targets have the model's output shape [n, 1]
    return { xs: tf.tensor2d(xs), ys: regression ? tf.tensor2d(ys, [4, 1]) : tf.tensor1d(ys) };
  });
}

function trainer(model: tfl.LayersModel, extra: { loss?: LossName; callbacks?: Callback[]; every?: number } = {}): Trainer {
  return new Trainer({
    model,
    optimizer: tf.train.sgd(0.05),
    loss: extra.loss ?? "sparseCategoricalCrossentropy",
    logger: silentLogger,
    ...(extra.callbacks ? { callbacks: extra.callbacks } : {}),
    ...(extra.every !== undefined ? { dataChecks: { every: extra.every } } : {}),
  });
}

/** The weights after training on the first `n` batches of `list` only (one epoch). */
async function weightsAfter(list: Batch[], n: number): Promise<number[][]> {
  const m = smallModel();
  await trainer(m).fit({ epochs: 1, train: arrayData(list.slice(0, n)) });
  const w = weightsOf(m);
  m.dispose();
  return w;
}

describe("per-batch data checks on streaming sources (dataChecks)", () => {
  it("NaN in a later batch's inputs: refused before its update, naming epoch, batch and sample; the earlier updates stand; nothing leaks", async () => {
    const list = batches((b, xs) => b === 2 && (xs[3]![1] = Number.NaN));
    const expected = await weightsAfter(list, 2);
    const m = smallModel();
    const t = trainer(m);
    const before = tf.memory().numTensors;
    const err = await t.fit({ epochs: 1, train: arrayData(list) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    const e = err as DataError;
    expect(e.code).toBe("NON_FINITE_INPUT");
    expect(e.message).toContain("train batch 2 of epoch 0");
    expect(e.message).toContain("sample 3 of the batch");
    expect(e.message).toContain("feature 1");
    expect(e.batch).toEqual({ role: "train", epoch: 0, index: 2 });
    expect(e.sampleIndex).toBe(3);
    expect(tf.memory().numTensors).toBe(before);
    expect(weightsOf(m)).toEqual(expected);
    m.dispose();
    tf.dispose(list.flatMap((b) => [b.xs, b.ys]));
  });

  it("Infinity in the inputs of the second epoch's first batch is found too", async () => {
    const good = batches();
    const bad = batches((b, xs) => b === 0 && (xs[0]![0] = Number.POSITIVE_INFINITY));
    const source: DataSource = { batchesPerEpoch: 6, batches: (c) => (c.epoch === 0 ? arrayData(good) : arrayData(bad)).batches(c) };
    const m = smallModel();
    const err = await trainer(m).fit({ epochs: 2, train: source }).catch((e: unknown) => e);
    expect((err as DataError).code).toBe("NON_FINITE_INPUT");
    expect((err as Error).message).toContain("train batch 0 of epoch 1");
    expect((err as Error).message).toContain("Infinity");
    m.dispose();
    tf.dispose([...good, ...bad].flatMap((b) => [b.xs, b.ys]));
  });

  const targetCases: [string, LossName, (b: number, xs: number[][], ys: number[]) => void, string, string, number][] = [
    ["a label past the classes", "sparseCategoricalCrossentropy", (b, _x, ys) => b === 3 && (ys[1] = 5), "LABEL_OUT_OF_RANGE", "target 5", 1],
    ["a negative label", "sparseCategoricalCrossentropy", (b, _x, ys) => b === 3 && (ys[2] = -1), "LABEL_OUT_OF_RANGE", "target -1", 2],
    ["a fractional label", "sparseCategoricalCrossentropy", (b, _x, ys) => b === 3 && (ys[0] = 1.5), "LABEL_OUT_OF_RANGE", "target 1.5", 0],
    ["a NaN label", "sparseCategoricalCrossentropy", (b, _x, ys) => b === 3 && (ys[3] = Number.NaN), "LABEL_OUT_OF_RANGE", "target NaN", 3],
    ["a NaN regression target (MSE)", "meanSquaredError", (b, _x, ys) => b === 3 && (ys[1] = Number.NaN), "NON_FINITE_TARGET", "target NaN", 1],
    ["an Infinity regression target (MAE)", "meanAbsoluteError", (b, _x, ys) => b === 3 && (ys[2] = Number.POSITIVE_INFINITY), "NON_FINITE_TARGET", "target Infinity", 2],
  ];
  for (const [name, loss, edit, code, value, sample] of targetCases) {
    it(`${name} in batch 3 (${loss}): ${code} naming the batch and sample, before its update`, async () => {
      const regression = loss !== "sparseCategoricalCrossentropy";
      const list = batches(edit, regression);
      const make = () => (regression ? seeded(1, () => { const r = tfl.sequential(); r.add(tfl.layers.dense({ inputShape: [4], units: 1 })); return r; }) : smallModel());
      const m = make();
      // reference: the same model trained on the 3 clean batches only
      const ref = make();
      await trainer(ref, { loss }).fit({ epochs: 1, train: arrayData(list.slice(0, 3)) });
      const train = arrayData(list);
      const t = trainer(m, { loss });
      const err = await expectRejected(() => t.fit({ epochs: 1, train }), DataError, code, ["train batch 3 of epoch 0", `sample ${sample} of the batch`, value]);
      expect(err.sampleIndex).toBe(sample);
      expect(weightsOf(m)).toEqual(weightsOf(ref));
      m.dispose();
      ref.dispose();
      tf.dispose(list.flatMap((b) => [b.xs, b.ys]));
    });
  }

  it("a custom loss defines its own targets: NaN there (a mask) is not refused", async () => {
    const list = batches((b, _x, ys) => b === 1 && (ys[0] = Number.NaN));
    const m = smallModel();
    const masked = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.tidy(() => tf.mean(tf.mul(tf.sum(yPred, -1), tf.cast(tf.logicalNot(tf.isNaN(yTrue)), "float32"))));
    const t = new Trainer({ model: m, optimizer: tf.train.sgd(0.05), loss: masked, logger: silentLogger });
    const { outcome } = await t.fit({ epochs: 1, train: arrayData(list) });
    expect(outcome.status).toBe("completed");
    m.dispose();
    tf.dispose(list.flatMap((b) => [b.xs, b.ys]));
  });

  it("every: 2 checks the values of batches 0, 2, 4 only; every: 0 not at all after the pre-flight (documented trade-off)", async () => {
    const at1 = batches((b, xs) => b === 1 && (xs[0]![0] = Number.NaN));
    const m1 = smallModel();
    const r1 = await trainer(m1, { every: 2 }).fit({ epochs: 1, train: arrayData(at1) });
    expect(r1.outcome.status).toBe("completed"); // batch 1 is not checked: it trained (NaN loss)
    expect(Number.isNaN(r1.state.history[0]!.logs["loss"]!)).toBe(true);
    const at2 = batches((b, xs) => b === 2 && (xs[0]![0] = Number.NaN));
    const m2 = smallModel();
    await expect(trainer(m2, { every: 2 }).fit({ epochs: 1, train: arrayData(at2) })).rejects.toThrow(/train batch 2 of epoch 0/);
    const m3 = smallModel();
    const r3 = await trainer(m3, { every: 0 }).fit({ epochs: 1, train: arrayData(at2) });
    expect(r3.outcome.status).toBe("completed");
    for (const m of [m1, m2, m3]) m.dispose();
    tf.dispose([...at1, ...at2].flatMap((b) => [b.xs, b.ys]));
  });

  it("the value checks add no device read: one read per step with or without them", async () => {
    const list = batches();
    const reads: number[] = [];
    for (const every of [0, 1]) {
      const m = smallModel();
      const counter = countDeviceReads();
      await trainer(m, { every }).fit({ epochs: 1, train: arrayData(list) });
      counter.stop();
      reads.push(counter.count);
      m.dispose();
    }
    expect(reads[1]).toBe(reads[0]);
    expect(reads[0]).toBeLessThanOrEqual(6 + 2); // one per step, plus the pre-flight's reads
    tf.dispose(list.flatMap((b) => [b.xs, b.ys]));
  });

  it("NaN in a streaming validation source's second batch: names the validation batch and epoch", async () => {
    const train = batches();
    const val = batches((b, xs) => b === 1 && (xs[2]![3] = Number.NaN));
    const m = smallModel();
    const t = trainer(m);
    const before = tf.memory().numTensors;
    const err = await t.fit({ epochs: 1, train: arrayData(train), validation: arrayData(val) }).catch((e: unknown) => e);
    expect((err as DataError).code).toBe("NON_FINITE_INPUT");
    expect((err as Error).message).toContain("validation batch 1 of epoch 0");
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
    tf.dispose([...train, ...val].flatMap((b) => [b.xs, b.ys]));
  });
});

describe("per-batch structure checks (every batch, on the host, before any hook sees it)", () => {
  const cases: [string, (b: Batch) => unknown, typeof DataError | typeof ShapeMismatchError, string, string][] = [
    ["inputs of another width", (b) => ({ xs: tf.concat([b.xs, b.xs], 1), ys: b.ys.clone() }), ShapeMismatchError, "SHAPE_MISMATCH", "[4,8]"],
    ["fewer labels than samples", (b) => ({ xs: b.xs.clone(), ys: tf.slice(b.ys, 0, 3) }), DataError, "LENGTH_MISMATCH", "ys has 3"],
    ["labels of another shape than the first batch's", (b) => ({ xs: b.xs.clone(), ys: tf.reshape(b.ys, [4, 1]) }), ShapeMismatchError, "SHAPE_MISMATCH", "labels have shape [4,1]"],
    ["xs not a tensor", (b) => ({ xs: [[1, 2, 3, 4]], ys: b.ys.clone() }), DataError, "INVALID_BATCH", "xs is not a tensor"],
    ["ys missing", (b) => ({ xs: b.xs.clone() }), DataError, "INVALID_BATCH", "ys is not a tensor"],
    ["null instead of a batch", () => null, DataError, "INVALID_BATCH", "got null"],
    ["a disposed tensor", (b) => { const xs = b.xs.clone(); xs.dispose(); return { xs, ys: b.ys.clone() }; }, DataError, "INVALID_BATCH", "xs was already disposed"],
    ["an empty batch", () => ({ xs: tf.zeros([0, 4]), ys: tf.zeros([0]) }), DataError, "EMPTY_DATA", "no samples"],
  ];
  for (const [name, spoil, type, code, culprit] of cases) {
    it(`${name} in batch 2: ${code} naming the batch; batch 2's hooks never run; nothing leaks`, async () => {
      const list = batches();
      const expected = await weightsAfter(list, 2);
      const source: DataSource = {
        batchesPerEpoch: 6,
        *batches(cursor) {
          for (let b = cursor.batchIndex; b < 6; b++) yield (b === 2 ? spoil(list[b]!) : { xs: list[b]!.xs.clone(), ys: list[b]!.ys.clone() }) as Batch;
        },
      };
      const m = smallModel();
      const seen: number[] = [];
      const t = trainer(m, { callbacks: [{ beforeBatch: (ctx) => void seen.push(ctx.state.batchIndex) }] });
      const before = tf.memory().numTensors;
      const err = await t.fit({ epochs: 1, train: source }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(type);
      expect((err as DataError).code).toBe(code);
      expect((err as Error).message).toContain("train batch 2 of epoch 0");
      expect((err as Error).message).toContain(culprit);
      expect(seen).toEqual([0, 1]);
      expect(tf.memory().numTensors).toBe(before);
      expect(weightsOf(m)).toEqual(expected);
      m.dispose();
      tf.dispose(list.flatMap((b) => [b.xs, b.ys]));
    });
  }
});

describe("pre-flight", () => {
  it("NaN/Inf regression targets are refused before the first step, naming the sample (MSE and MAE)", async () => {
    for (const loss of ["meanSquaredError", "meanAbsoluteError"] as const) {
      const m = seeded(1, () => { const r = tfl.sequential(); r.add(tfl.layers.dense({ inputShape: [2], units: 1 })); return r; });
      const xs = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
      const ys = tf.tensor2d([[1], [Number.NaN], [3]]);
      const t = new Trainer({ model: m, optimizer: tf.train.sgd(0.01), loss, logger: silentLogger });
      await expectRejected(() => t.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 2 }) }), DataError, "NON_FINITE_TARGET", ["sample 1", "NaN", loss], { model: m });
      tf.dispose([xs, ys]);
      m.dispose();
    }
  });

  it("releasePeek() is called after the scan, whether it passed or failed", async () => {
    for (const valid of [true, false]) {
      const xs = tf.tensor2d([[1, 2, 3, 4], [valid ? 5 : Number.NaN, 6, 7, 8]]);
      const ys = tf.tensor1d([0, 1]);
      let released = 0;
      const source: DataSource = {
        size: 2,
        batchesPerEpoch: 1,
        peekAll: () => ({ xs, ys }),
        releasePeek: () => void released++,
        *batches() {
          yield { xs: xs.clone(), ys: ys.clone() };
        },
      };
      const m = smallModel();
      const run = trainer(m).fit({ epochs: 1, train: source });
      if (valid) await run;
      else await expect(run).rejects.toThrow(/sample 1/);
      expect(released).toBe(1);
      m.dispose();
      tf.dispose([xs, ys]);
    }
  });
});

describe("a batch size larger than the data", () => {
  it("is one smaller batch, for training and validation (as Keras and PyTorch's DataLoader); the validation loss is the full-set loss", async () => {
    const xs = seeded(4, () => tf.randomNormal([10, 4]));
    const ys = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
    const train = tensorData(xs, ys, { batchSize: 64 });
    expect(train.batchesPerEpoch).toBe(1);
    const m = smallModel();
    const { state } = await trainer(m).fit({ epochs: 1, train, validation: tensorData(xs, ys, { batchSize: 1000, shuffle: false }) });
    const full = tf.tidy(() => tf.mean(tfl.metrics.categoricalCrossentropy(tf.oneHot(tf.cast(ys, "int32"), 3), m.predict(xs) as tf.Tensor)).dataSync()[0]!);
    expect(state.history[0]!.logs["val_loss"]).toBeCloseTo(full, 5);
    m.dispose();
    tf.dispose([xs, ys]);
  });
});
