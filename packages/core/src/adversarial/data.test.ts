/**
 * Adversarial suite, class "data": every way data can be wrong that core can see, given to
 * `tensorData` and to `fit()` (pre-flight for in-memory sources, per-batch checks for streaming
 * ones, validation too). Each case asserts the error type and code, that the message names the
 * culprit (option, sample or batch), and that `tf.memory().numTensors` and the weights are unchanged.
 */
import { describe, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { arrayData, DataError, OptionsError, seeded, ShapeMismatchError, silentLogger, tensorData, Trainer, type Batch, type DataSource, type LossName } from "../index.js";
import { expectRefused, expectRejected, smallModel, type Culprit, type ErrorClass } from "./harness.fixture.js";
import type { FitloopError } from "../errors.js";

type Refusal = [ErrorClass<FitloopError>, string, Culprit];

describe("adversarial / data: tensorData's options and tensors", () => {
  const xs = tf.zeros([10, 4]);
  const ys = tf.zeros([10]);
  const ys9 = tf.zeros([9]);
  const none = { xs: tf.zeros([0, 4]), ys: tf.zeros([0]) };
  const cases: [string, () => unknown, ...Refusal][] = [
    ["batchSize 0", () => tensorData(xs, ys, { batchSize: 0 }), OptionsError, "INVALID_OPTIONS", ["batchSize", "got 0"]],
    ["batchSize -8", () => tensorData(xs, ys, { batchSize: -8 }), OptionsError, "INVALID_OPTIONS", ["batchSize", "-8"]],
    ["batchSize 2.5", () => tensorData(xs, ys, { batchSize: 2.5 }), OptionsError, "INVALID_OPTIONS", ["batchSize", "2.5"]],
    ["batchSize NaN", () => tensorData(xs, ys, { batchSize: Number.NaN }), OptionsError, "INVALID_OPTIONS", ["batchSize", "NaN"]],
    ["batchSize as a string", () => tensorData(xs, ys, { batchSize: "8" as unknown as number }), OptionsError, "INVALID_OPTIONS", "batchSize"],
    ["batchSize Infinity", () => tensorData(xs, ys, { batchSize: Number.POSITIVE_INFINITY }), OptionsError, "INVALID_OPTIONS", ["batchSize", "Infinity"]],
    ["seed 0.5", () => tensorData(xs, ys, { batchSize: 2, seed: 0.5 }), OptionsError, "INVALID_OPTIONS", ["seed", "0.5"]],
    ["seed beyond 2^53", () => tensorData(xs, ys, { batchSize: 2, seed: 2 ** 60 }), OptionsError, "INVALID_OPTIONS", "seed"],
    ["shuffle as a string", () => tensorData(xs, ys, { batchSize: 2, shuffle: "yes" as unknown as boolean }), OptionsError, "INVALID_OPTIONS", "shuffle"],
    ["dropLast as 1", () => tensorData(xs, ys, { batchSize: 2, dropLast: 1 as unknown as boolean }), OptionsError, "INVALID_OPTIONS", "dropLast"],
    ["batch larger than the data with dropLast", () => tensorData(xs, ys, { batchSize: 11, dropLast: true }), DataError, "BATCH_LARGER_THAN_DATA", ["batchSize 11", "10 samples", "dropLast"]],
    ["ys with fewer samples", () => tensorData(xs, ys9, { batchSize: 2 }), DataError, "LENGTH_MISMATCH", ["10 samples", "ys has 9"]],
    ["no samples", () => tensorData(none.xs, none.ys, { batchSize: 2 }), DataError, "EMPTY_DATA", "0 samples"],
  ];
  for (const [name, fn, type, code, culprit] of cases) {
    it(name, () => {
      expectRefused(fn, type, code, culprit);
    });
  }
});

/** A trainer built before counting (the optimizer's scalars exist), on a fresh small model. */
function rig(loss: LossName = "sparseCategoricalCrossentropy", units = 3) {
  const model =
    loss === "sparseCategoricalCrossentropy" || loss === "categoricalCrossentropy"
      ? smallModel(1, 4, units)
      : seeded(1, () => {
          const m = tfl.sequential();
          m.add(tfl.layers.dense({ inputShape: [4], units, activation: loss === "binaryCrossentropy" ? "sigmoid" : "linear" }));
          return m;
        });
  const trainer = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss, logger: silentLogger });
  return { model, trainer };
}

const rows = (n: number, edit?: (i: number, r: number[]) => void) =>
  Array.from({ length: n }, (_, i) => {
    const r = [i, -i, i % 2, 1];
    edit?.(i, r);
    return r;
  });

describe("adversarial / data: the pre-flight of in-memory data (before any step)", () => {
  const cases: [string, LossName, number, () => [tf.Tensor, tf.Tensor], ...Refusal][] = [
    ["NaN in an input", "sparseCategoricalCrossentropy", 3, () => [tf.tensor2d(rows(6, (i, r) => i === 4 && (r[2] = Number.NaN))), tf.tensor1d([0, 1, 2, 0, 1, 2])], DataError, "NON_FINITE_INPUT", ["sample 4", "NaN", "feature 2"]],
    ["Infinity in an input", "sparseCategoricalCrossentropy", 3, () => [tf.tensor2d(rows(6, (i, r) => i === 0 && (r[0] = Number.POSITIVE_INFINITY))), tf.tensor1d([0, 1, 2, 0, 1, 2])], DataError, "NON_FINITE_INPUT", ["sample 0", "Infinity"]],
    ["-Infinity in an input", "meanSquaredError", 1, () => [tf.tensor2d(rows(6, (i, r) => i === 5 && (r[3] = Number.NEGATIVE_INFINITY))), tf.zeros([6, 1])], DataError, "NON_FINITE_INPUT", ["sample 5", "-Infinity"]],
    ["a label = number of classes", "sparseCategoricalCrossentropy", 3, () => [tf.tensor2d(rows(6)), tf.tensor1d([0, 1, 2, 3, 1, 2])], DataError, "LABEL_OUT_OF_RANGE", ["sample 3", "3 classes"]],
    ["a negative label", "sparseCategoricalCrossentropy", 3, () => [tf.tensor2d(rows(6)), tf.tensor1d([0, -1, 2, 0, 1, 2])], DataError, "LABEL_OUT_OF_RANGE", ["sample 1", "-1"]],
    ["a fractional label", "sparseCategoricalCrossentropy", 3, () => [tf.tensor2d(rows(6)), tf.tensor1d([0, 1, 2, 0, 1.5, 2])], DataError, "LABEL_OUT_OF_RANGE", ["sample 4", "1.5"]],
    ["a NaN label", "sparseCategoricalCrossentropy", 3, () => [tf.tensor2d(rows(6)), tf.tensor1d([0, 1, Number.NaN, 0, 1, 2])], DataError, "LABEL_OUT_OF_RANGE", ["sample 2", "NaN"]],
    ["int32 labels out of range", "sparseCategoricalCrossentropy", 3, () => [tf.tensor2d(rows(6)), tf.tensor1d([0, 1, 2, 0, 9, 2], "int32")], DataError, "LABEL_OUT_OF_RANGE", ["sample 4", "9"]],
    ["sparse labels of shape [n, 2]", "sparseCategoricalCrossentropy", 3, () => [tf.tensor2d(rows(6)), tf.zeros([6, 2])], ShapeMismatchError, "SHAPE_MISMATCH", ["[6,2]", "class indices"]],
    ["class indices given to categoricalCrossentropy", "categoricalCrossentropy", 3, () => [tf.tensor2d(rows(6)), tf.tensor1d([0, 1, 2, 0, 1, 2])], ShapeMismatchError, "SHAPE_MISMATCH", ["[6]", "sparseCategoricalCrossentropy"]],
    ["one-hot of the wrong width", "categoricalCrossentropy", 3, () => [tf.tensor2d(rows(6)), tf.oneHot(tf.tensor1d([0, 1, 3, 0, 1, 2], "int32"), 4)], ShapeMismatchError, "SHAPE_MISMATCH", ["[6,4]", "[batch,3]"]],
    ["a categorical target of 2", "categoricalCrossentropy", 3, () => [tf.tensor2d(rows(6)), tf.tensor2d([[1, 0, 0], [0, 2, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])], DataError, "LABEL_OUT_OF_RANGE", ["sample 1", "[0, 1]"]],
    ["a negative binary target", "binaryCrossentropy", 1, () => [tf.tensor2d(rows(6)), tf.tensor2d([[0], [1], [0], [-1], [1], [0]])], DataError, "LABEL_OUT_OF_RANGE", ["sample 3", "-1"]],
    ["a NaN binary target", "binaryCrossentropy", 1, () => [tf.tensor2d(rows(6)), tf.tensor2d([[0], [1], [Number.NaN], [1], [1], [0]])], DataError, "LABEL_OUT_OF_RANGE", ["sample 2", "NaN"]],
    ["a NaN MSE target", "meanSquaredError", 1, () => [tf.tensor2d(rows(6)), tf.tensor2d([[0], [1], [0], [1], [Number.NaN], [0]])], DataError, "NON_FINITE_TARGET", ["sample 4", "NaN", "meanSquaredError"]],
    ["an Infinity MAE target", "meanAbsoluteError", 1, () => [tf.tensor2d(rows(6)), tf.tensor2d([[0], [Number.POSITIVE_INFINITY], [0], [1], [1], [0]])], DataError, "NON_FINITE_TARGET", ["sample 1", "Infinity", "meanAbsoluteError"]],
    ["a NaN in a multi-output regression target", "meanSquaredError", 2, () => [tf.tensor2d(rows(6)), tf.tensor2d([[0, 0], [1, 1], [0, 0], [1, 1], [1, 1], [0, Number.NaN]])], DataError, "NON_FINITE_TARGET", ["sample 5", "NaN"]],
    ["regression targets of the wrong width", "meanSquaredError", 1, () => [tf.tensor2d(rows(6)), tf.zeros([6, 3])], ShapeMismatchError, "SHAPE_MISMATCH", ["[6,3]", "[batch,1]"]],
    ["inputs of the wrong width", "sparseCategoricalCrossentropy", 3, () => [tf.zeros([6, 5]), tf.tensor1d([0, 1, 2, 0, 1, 2])], ShapeMismatchError, "SHAPE_MISMATCH", ["[6,5]", "[batch,4]"]],
    ["inputs of the wrong rank", "sparseCategoricalCrossentropy", 3, () => [tf.zeros([6, 2, 2]), tf.tensor1d([0, 1, 2, 0, 1, 2])], ShapeMismatchError, "SHAPE_MISMATCH", ["[6,2,2]", "[batch,4]"]],
  ];
  for (const [name, loss, units, data, type, code, culprit] of cases) {
    it(`${name} (${loss})`, async () => {
      const { model, trainer } = rig(loss, units);
      const [xs, ys] = data();
      for (const role of ["train", "validation"] as const) {
        const good = { xs: tf.tensor2d(rows(6)), ys: loss === "sparseCategoricalCrossentropy" ? tf.tensor1d([0, 1, 2, 0, 1, 2]) : loss === "categoricalCrossentropy" ? tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], "int32"), 3) : tf.zeros([6, units]) };
        const bad = tensorData(xs, ys, { batchSize: 4 });
        const other = tensorData(good.xs, good.ys, { batchSize: 4 });
        const options = role === "train" ? { epochs: 1, train: bad } : { epochs: 1, train: other, validation: bad };
        await expectRejected(() => trainer.fit(options), type, code, [...(Array.isArray(culprit) ? culprit : [culprit]), role], { model });
        tf.dispose([good.xs, good.ys]);
      }
      tf.dispose([xs, ys]);
      model.dispose();
    });
  }

  const sources: [string, DataSource, ...Refusal][] = [
    ["a source of size 0", { size: 0, batches: () => [] }, DataError, "EMPTY_DATA", ["train", "0 samples"]],
    ["a source with 0 batches per epoch", { batchesPerEpoch: 0, batches: () => [] }, DataError, "EMPTY_DATA", "train"],
    ["a source that yields nothing", { batches: () => [] }, DataError, "EMPTY_DATA", ["train", "no batches"]],
    ["an async source that yields nothing", { batches: () => ({ async *[Symbol.asyncIterator]() {} }) }, DataError, "EMPTY_DATA", "no batches"],
  ];
  for (const [name, source, type, code, culprit] of sources) {
    it(name, async () => {
      const { model, trainer } = rig();
      await expectRejected(() => trainer.fit({ epochs: 1, train: source }), type, code, culprit, { model });
      model.dispose();
    });
  }
});

describe("adversarial / data: streaming sources, batch by batch (dataChecks)", () => {
  /** Five clean batches of 4 and `spoiled` at index 3 (a fresh clone of everything per epoch). */
  const stream = (spoiled: () => unknown): DataSource => ({
    batchesPerEpoch: 5,
    *batches(cursor) {
      for (let b = cursor.batchIndex; b < 5; b++) yield (b === 3 ? spoiled() : { xs: tf.tensor2d(rows(4)), ys: tf.tensor1d([0, 1, 2, 0]) }) as Batch;
    },
  });
  const cases: [string, () => unknown, ...Refusal][] = [
    ["NaN input", () => ({ xs: tf.tensor2d(rows(4, (i, r) => i === 2 && (r[1] = Number.NaN))), ys: tf.tensor1d([0, 1, 2, 0]) }), DataError, "NON_FINITE_INPUT", ["train batch 3", "sample 2 of the batch", "feature 1"]],
    ["Infinity input", () => ({ xs: tf.tensor2d(rows(4, (i, r) => i === 0 && (r[0] = Number.POSITIVE_INFINITY))), ys: tf.tensor1d([0, 1, 2, 0]) }), DataError, "NON_FINITE_INPUT", ["train batch 3", "Infinity"]],
    ["label 3 of 3 classes", () => ({ xs: tf.tensor2d(rows(4)), ys: tf.tensor1d([0, 1, 3, 0]) }), DataError, "LABEL_OUT_OF_RANGE", ["train batch 3", "sample 2 of the batch", "target 3"]],
    ["negative label", () => ({ xs: tf.tensor2d(rows(4)), ys: tf.tensor1d([0, -2, 2, 0]) }), DataError, "LABEL_OUT_OF_RANGE", ["sample 1 of the batch", "target -2"]],
    ["fractional label", () => ({ xs: tf.tensor2d(rows(4)), ys: tf.tensor1d([0.25, 1, 2, 0]) }), DataError, "LABEL_OUT_OF_RANGE", ["sample 0 of the batch", "0.25"]],
    ["NaN label", () => ({ xs: tf.tensor2d(rows(4)), ys: tf.tensor1d([0, 1, 2, Number.NaN]) }), DataError, "LABEL_OUT_OF_RANGE", ["sample 3 of the batch", "NaN"]],
    ["inputs of another width", () => ({ xs: tf.zeros([4, 6]), ys: tf.tensor1d([0, 1, 2, 0]) }), ShapeMismatchError, "SHAPE_MISMATCH", ["train batch 3", "[4,6]"]],
    ["inputs of another rank", () => ({ xs: tf.zeros([4, 2, 2]), ys: tf.tensor1d([0, 1, 2, 0]) }), ShapeMismatchError, "SHAPE_MISMATCH", ["train batch 3", "[4,2,2]"]],
    ["labels of another shape", () => ({ xs: tf.tensor2d(rows(4)), ys: tf.zeros([4, 1]) }), ShapeMismatchError, "SHAPE_MISMATCH", ["train batch 3", "[4,1]"]],
    ["more labels than samples", () => ({ xs: tf.tensor2d(rows(4)), ys: tf.zeros([5]) }), DataError, "LENGTH_MISMATCH", ["train batch 3", "ys has 5"]],
    ["a scalar as xs", () => ({ xs: tf.scalar(1), ys: tf.tensor1d([0, 1, 2, 0]) }), DataError, "EMPTY_DATA", ["train batch 3", "no samples"]],
    ["an empty batch", () => ({ xs: tf.zeros([0, 4]), ys: tf.zeros([0]) }), DataError, "EMPTY_DATA", ["train batch 3", "no samples"]],
    ["xs a plain array", () => ({ xs: rows(4), ys: tf.tensor1d([0, 1, 2, 0]) }), DataError, "INVALID_BATCH", ["train batch 3", "xs is not a tensor"]],
    ["ys a typed array", () => ({ xs: tf.tensor2d(rows(4)), ys: new Float32Array(4) }), DataError, "INVALID_BATCH", ["train batch 3", "ys is not a tensor"]],
    ["undefined", () => undefined, DataError, "INVALID_BATCH", ["train batch 3", "got undefined"]],
    ["a number", () => 7, DataError, "INVALID_BATCH", ["train batch 3", "got number"]],
    ["disposed ys", () => { const ys = tf.tensor1d([0, 1, 2, 0]); ys.dispose(); return { xs: tf.tensor2d(rows(4)), ys }; }, DataError, "INVALID_BATCH", ["train batch 3", "ys was already disposed"]],
  ];
  for (const [name, spoiled, type, code, culprit] of cases) {
    it(`${name} in batch 3: refused before its hooks or its update`, async () => {
      const { model, trainer } = rig();
      // the weights after the clean batches 0..2, trained the same way
      const ref = rig();
      await ref.trainer.fit({ epochs: 1, train: { batchesPerEpoch: 3, batches: (c) => firstN(stream(() => undefined), 3, c) } });
      const before = tf.memory().numTensors;
      const err = await trainer.fit({ epochs: 1, train: stream(spoiled) }).catch((e: unknown) => e);
      expectCaught(err, type, code, culprit);
      if (tf.memory().numTensors !== before) throw new Error(`tensors left behind: ${tf.memory().numTensors - before}`);
      const same = model.getWeights().every((w, i) => tf.tidy(() => tf.all(tf.equal(w, ref.model.getWeights()[i]!)).dataSync()[0] === 1));
      if (!same) throw new Error("the refused batch changed the weights (or the clean ones did not train as in the reference)");
      model.dispose();
      ref.model.dispose();
    });
  }

  it("the same checks on a streaming validation source name the validation batch", async () => {
    const { model, trainer } = rig();
    const val: DataSource = { batchesPerEpoch: 3, *batches() { yield { xs: tf.tensor2d(rows(4)), ys: tf.tensor1d([0, 1, 2, 0]) }; yield { xs: tf.tensor2d(rows(4)), ys: tf.tensor1d([0, 1, 4, 0]) }; } };
    const train = arrayData([{ xs: tf.tensor2d(rows(4)), ys: tf.tensor1d([0, 1, 2, 0]) }]);
    const before = tf.memory().numTensors;
    const err = await trainer.fit({ epochs: 1, train, validation: val }).catch((e: unknown) => e);
    expectCaught(err, DataError, "LABEL_OUT_OF_RANGE", ["validation batch 1 of epoch 0", "class indices"]);
    if (tf.memory().numTensors !== before) throw new Error("tensors left behind");
    model.dispose();
  });
});

function* firstN(source: DataSource, n: number, cursor: { epoch: number; batchIndex: number }): Generator<Batch> {
  let k = 0;
  for (const b of source.batches(cursor) as Iterable<Batch>) {
    if (k++ >= n) break; // the source makes each batch lazily: the rest are never made
    yield b;
  }
}

function expectCaught(err: unknown, type: ErrorClass<FitloopError>, code: string, culprit: Culprit): void {
  if (!(err instanceof type)) throw new Error(`expected ${type.name}, got ${String(err)}`);
  if ((err as FitloopError).code !== code) throw new Error(`expected code ${code}, got ${(err as FitloopError).code}: ${(err as Error).message}`);
  for (const c of Array.isArray(culprit) ? culprit : [culprit]) {
    const ok = typeof c === "string" ? (err as Error).message.includes(c) : (c as RegExp).test((err as Error).message);
    if (!ok) throw new Error(`message does not name ${String(c)}: ${(err as Error).message}`);
  }
}
