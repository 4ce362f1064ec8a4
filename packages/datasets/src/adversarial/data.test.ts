/**
 * Adversarial suite, class "data": shapes that do not describe the data, hand-built data sets that
 * lie about themselves, labels and values that cannot be trained on. Each is refused where the data
 * set or loader is made, with a typed error naming the option, field or sample.
 */
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { DataError, OptionsError, StateError, type FitloopError } from "@fitloop/core";
import {
  DataLoader,
  IdxError,
  Normalizer,
  cutMix,
  encodeIdx,
  fitNormalizer,
  fromArrays,
  fromTensors,
  idxToDataset,
  labelSmoothing,
  mixUp,
  parseIdx,
  sampleX,
  splitDataset,
  subset,
  type ArrayDataset,
  type IdxArray,
} from "../index.js";
import { expectRefused, expectRejected, type ErrorClass } from "./harness.fixture.js";

const bad = <T>(v: unknown) => v as T;
type Refusal = ErrorClass<FitloopError>;

/** Just an IDX header: type code and dims (big-endian), no values. */
function header(code: number, dims: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(out.buffer);
  out[2] = code;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  return out;
}

const sampleShapes: [string, () => unknown, Refusal, string, string][] = [
  ["sampleShape [2.5]", () => fromArrays({ x: new Float32Array(5), sampleShape: [2.5], y: [0, 1] }), OptionsError, "INVALID_OPTIONS", "sampleShape"],
  ["sampleShape [-2]", () => fromArrays({ x: new Float32Array(4), sampleShape: [-2], y: [0, 1] }), OptionsError, "INVALID_OPTIONS", "sampleShape"],
  ["sampleShape [0]", () => fromArrays({ x: new Float32Array(4), sampleShape: [0], y: [0, 1] }), OptionsError, "INVALID_OPTIONS", "sampleShape"],
  ["sampleShape []", () => fromArrays({ x: new Float32Array(4), sampleShape: [], y: [0, 1, 0, 1] }), OptionsError, "INVALID_OPTIONS", "sampleShape"],
  ["sampleShape [NaN]", () => fromArrays({ x: new Float32Array(4), sampleShape: [NaN], y: [0] }), OptionsError, "INVALID_OPTIONS", "sampleShape"],
  ["sampleShape ['2']", () => fromArrays({ x: new Float32Array(4), sampleShape: bad(["2"]), y: [0, 1] }), OptionsError, "INVALID_OPTIONS", "sampleShape"],
  ["sampleShape as a number", () => fromArrays({ x: new Float32Array(4), sampleShape: bad(2), y: [0, 1] }), OptionsError, "INVALID_OPTIONS", "sampleShape"],
  ["sampleShape whose product overflows", () => fromArrays({ x: new Float32Array(4), sampleShape: [2 ** 30, 2 ** 30, 2 ** 30], y: [0] }), OptionsError, "INVALID_OPTIONS", "sampleShape"],
  ["sampleShape whose product does not divide the data", () => fromArrays({ x: new Float32Array(10), sampleShape: [3], y: [0, 1, 0] }), DataError, "RAGGED_SAMPLE", "sampleShape [3]"],
  ["sampleShape that disagrees with nested rows", () => fromArrays({ x: [[1, 2, 3], [4, 5, 6]], sampleShape: [2, 2], y: [0, 1] }), DataError, "RAGGED_SAMPLE", "sampleShape [2, 2]"],
  ["labelShape [1.5]", () => fromArrays({ x: [[1], [2]], y: [[1], [2]], labelShape: [1.5] }), OptionsError, "INVALID_OPTIONS", "labelShape"],
  ["labelShape that does not divide the targets", () => fromArrays({ x: [[1], [2]], y: new Float32Array(5), labelShape: [2] }), DataError, "RAGGED_SAMPLE", "labelShape [2]"],
  ["nested rows with no values", () => fromArrays({ x: [[], []], y: [0, 1] }), DataError, "EMPTY_SAMPLE", "x[0]"],
  ["nested rows of empty rows", () => fromArrays({ x: [[[]], [[]]], y: [0, 1] }), DataError, "EMPTY_SAMPLE", "shape [1, 0]"],
  ["no samples at all", () => fromArrays({ x: new Float32Array(0), sampleShape: [3], y: [] }), DataError, "EMPTY_DATA", "0 samples"],
];

describe("adversarial / data: sample shapes", () => {
  it.each(sampleShapes)("fromArrays with %s", (_, make, type, code, culprit) => {
    expectRefused(make, type, code, culprit);
  });
});

describe("adversarial / data: fromTensors", () => {
  const cases: [string, () => [tf.Tensor, tf.Tensor], object, Refusal, string, string][] = [
    ["xs of rank 1 (no feature axis)", () => [tf.zeros([4]), tf.zeros([4])], {}, OptionsError, "INVALID_OPTIONS", "xs"],
    ["xs with a zero-sized feature axis", () => [tf.zeros([4, 0]), tf.zeros([4])], {}, OptionsError, "INVALID_OPTIONS", "xs.shape"],
    ["one-hot ys with numClasses", () => [tf.zeros([4, 2]), tf.oneHot(tf.tensor1d([0, 1, 2, 0], "int32"), 3)], { numClasses: 3 }, OptionsError, "INVALID_OPTIONS", "ys"],
    ["a typo in the options", () => [tf.zeros([4, 2]), tf.zeros([4])], { numclasses: 2 }, OptionsError, "INVALID_OPTIONS", "numclasses"],
    ["labels out of range", () => [tf.zeros([4, 2]), tf.tensor1d([0, 1, 5, 0])], { numClasses: 3 }, DataError, "LABEL_OUT_OF_RANGE", "sample 2"],
    ["NaN in xs", () => [tf.tensor2d([[1, 2], [NaN, 4]]), tf.tensor1d([0, 1])], { numClasses: 2 }, DataError, "NON_FINITE_INPUT", "sample 1"],
    ["counts that differ", () => [tf.zeros([4, 2]), tf.zeros([3])], {}, DataError, "LENGTH_MISMATCH", "ys has 3"],
  ];
  it.each(cases)("%s: refused; the caller's tensors are untouched and nothing else is left", async (_, make, options, type, code, culprit) => {
    const [xs, ys] = make();
    await expectRejected(() => fromTensors(xs, ys, options), type, code, culprit);
    expect(xs.isDisposed || ys.isDisposed).toBe(false);
    tf.dispose([xs, ys]);
  });

  it("a disposed tensor or a plain array is refused by name", async () => {
    const xs = tf.zeros([2, 2]);
    xs.dispose();
    await expectRejected(() => fromTensors(xs, bad([0, 1])), OptionsError, "INVALID_OPTIONS", ["xs: must be a live tf.Tensor", "a disposed tensor", "ys", "an array"]);
  });
});

const base = (): ArrayDataset => ({ x: new Float32Array(8), y: Int32Array.from([0, 1, 0, 1]), size: 4, sampleShape: [2], labelShape: [], numClasses: 2 });
const handBuilt: [string, () => ArrayDataset, Refusal, string, string][] = [
  ["sampleShape [2.5]", () => ({ ...base(), sampleShape: [2.5] }), OptionsError, "INVALID_OPTIONS", "dataset.sampleShape"],
  ["sampleShape []", () => ({ ...base(), sampleShape: [] }), OptionsError, "INVALID_OPTIONS", "dataset.sampleShape"],
  ["sampleShape [-2]", () => ({ ...base(), sampleShape: [-2] }), OptionsError, "INVALID_OPTIONS", "dataset.sampleShape"],
  ["labelShape [0]", () => ({ ...base(), labelShape: [0] }), OptionsError, "INVALID_OPTIONS", "dataset.labelShape"],
  ["size 1.5", () => ({ ...base(), size: 1.5 }), OptionsError, "INVALID_OPTIONS", "dataset.size"],
  ["size -1", () => ({ ...base(), size: -1 }), OptionsError, "INVALID_OPTIONS", "dataset.size"],
  ["x as a plain array", () => ({ ...base(), x: bad(Array.from({ length: 8 }, () => 0)) }), OptionsError, "INVALID_OPTIONS", "dataset.x"],
  ["y as a plain array", () => ({ ...base(), y: bad([0, 1, 0, 1]) }), OptionsError, "INVALID_OPTIONS", "dataset.y"],
  ["numClasses 0", () => ({ ...base(), numClasses: 0 }), OptionsError, "INVALID_OPTIONS", "dataset.numClasses"],
  ["x shorter than size x sampleShape", () => ({ ...base(), x: new Float32Array(7) }), DataError, "LENGTH_MISMATCH", "x has 7 values"],
  ["a label past numClasses", () => ({ ...base(), y: Int32Array.from([0, 1, 2, 1]) }), DataError, "LABEL_OUT_OF_RANGE", "sample 2"],
  ["a negative label", () => ({ ...base(), y: Int32Array.from([0, -1, 0, 1]) }), DataError, "LABEL_OUT_OF_RANGE", "sample 1"],
  ["float labels for classes", () => ({ ...base(), y: Float32Array.from([0, 1, 0, 1]) }), DataError, "LABEL_WRONG_TYPE", "Int32Array"],
];

describe("adversarial / data: hand-built data sets", () => {
  it.each(handBuilt)("%s: refused by the DataLoader", (_, make, type, code, culprit) => {
    expectRefused(() => new DataLoader(make(), { batchSize: 2 }), type, code, culprit);
  });
  it.each(handBuilt)("%s: refused by splitDataset and Normalizer.fit", (_, make, type, code) => {
    expectRefused(() => splitDataset(make(), { fractions: { a: 0.5, b: 0.5 } }), type, code, "splitDataset");
    expectRefused(() => new Normalizer().fit(make()), type, code, "Normalizer.fit");
  });
});

describe("adversarial / data: values and labels", () => {
  const nan = fromArrays({ x: [[1, 2], [3, NaN], [5, 6]], y: [0, 1, 0], numClasses: 2, allowNonFinite: true });

  it("NaN in the data a normaliser is fitted on: named, instead of NaN statistics", () => {
    expectRefused(() => fitNormalizer(nan), DataError, "NON_FINITE_INPUT", "sample 1");
  });

  it("extreme but finite values give finite statistics (std <= half the range)", () => {
    const huge = fitNormalizer(fromArrays({ x: [[3.4e38], [-3.4e38]], y: [0, 1], numClasses: 2 }));
    expect(Number.isFinite(huge.std[0]!)).toBe(true);
  });

  it("a normaliser applied to a tensor of another per-sample size: SHAPE_MISMATCH, not a silent reshape", () => {
    const n = fitNormalizer(fromArrays({ x: [[1, 2, 3, 4], [5, 6, 7, 8]], y: [0, 1], numClasses: 2 }));
    const x = tf.zeros([2, 2]); // 4 values: would reshape to one sample of 4 without the check
    expectRefused(() => n.applyTensor(x), DataError, "SHAPE_MISMATCH", ["[4]", "[2, 2]"]);
    expectRefused(() => new Normalizer().applyTensor(x), StateError, "STATE_MISMATCH", "not fitted");
    x.dispose();
    expectRefused(() => n.applyTensor(x), OptionsError, "INVALID_OPTIONS", "live tf.Tensor");
  });

  it("a normaliser fitted on other samples is refused when its transform is attached to a loader", () => {
    const n = fitNormalizer(fromArrays({ x: [[1, 2, 3], [4, 5, 6]], y: [0, 1], numClasses: 2 }));
    const ds = fromArrays({ x: [[1, 2], [3, 4]], y: [0, 1], numClasses: 2 });
    expectRefused(() => new DataLoader(ds, { batchSize: 1, transforms: [n.transform()] }), DataError, "SHAPE_MISMATCH", ["[3]", "[2]"]);
  });

  it.each([
    ["labelSmoothing", () => labelSmoothing()],
    ["mixUp", () => mixUp()],
    ["cutMix", () => cutMix()],
  ] as const)("%s applied by hand to class indices: LABELS_NOT_ONE_HOT, not fractions written into an Int32Array", (name, make) => {
    const b = { x: new Float32Array(4 * 4), y: Int32Array.from([0, 1, 0, 1]), size: 4, sampleShape: [2, 2], labelShape: [], indices: new Int32Array(4) };
    const ctx = { rng: { next: () => 0.5, int: () => 0, nextUint32: () => 1 } as never, epoch: 0, batchIndex: 0, numClasses: 2 };
    expectRefused(() => make().apply(b, ctx), DataError, "LABELS_NOT_ONE_HOT", [name, "class indices"]);
    expectRefused(() => make().apply(b, { ...ctx, numClasses: undefined }), OptionsError, "INVALID_OPTIONS", "no numClasses");
  });

  it("subset and sampleX refuse indices outside the data", () => {
    const ds = fromArrays({ x: [[1], [2]], y: [0, 1], numClasses: 2 });
    expectRefused(() => subset(ds, [0, 2]), DataError, "INDEX_OUT_OF_RANGE", "index 2");
    expectRefused(() => sampleX(ds, 5), DataError, "INDEX_OUT_OF_RANGE", "index 5");
    expectRefused(() => sampleX(ds, -1), DataError, "INDEX_OUT_OF_RANGE", "index -1");
  });

  it("a batch larger than the data: one smaller batch (as Keras), unless dropLast would drop everything", () => {
    const ds = fromArrays({ x: [[1], [2], [3]], y: [0, 1, 0], numClasses: 2 });
    expect(new DataLoader(ds, { batchSize: 8 }).batchesPerEpoch).toBe(1);
    expectRefused(() => new DataLoader(ds, { batchSize: 8, dropLast: true }), DataError, "BATCH_LARGER_THAN_DATA", ["batchSize 8", "3 samples", "dropLast"]);
  });
});

describe("adversarial / data: IDX arrays in memory", () => {
  const images: IdxArray = { dtype: "uint8", dims: [2, 2, 2], data: new Uint8Array(8) };
  const labels: IdxArray = { dtype: "uint8", dims: [2], data: Uint8Array.from([0, 1]) };
  const cases: [string, () => unknown, string, string][] = [
    ["images with 2 dims", () => idxToDataset({ ...images, dims: [2, 4] }, labels), "IDX_MALFORMED", "images need 3 dims"],
    ["images with a 0 dimension", () => idxToDataset({ ...images, dims: [2, 0, 2] }, labels), "IDX_EMPTY", "dimension 1 is 0"],
    ["images whose data is shorter than the dims", () => idxToDataset({ ...images, data: new Uint8Array(7) }, labels), "IDX_MALFORMED", "need 8 values, got 7"],
    ["a label file whose count differs", () => idxToDataset(images, { ...labels, dims: [3], data: new Uint8Array(3) }), "IDX_MISMATCH", "2 images but labels has 3 labels"],
    ["a fractional label", () => idxToDataset(images, { dtype: "float32", dims: [2], data: Float32Array.from([0, 1.5]) }), "LABEL_OUT_OF_RANGE", "sample 1"],
    ["bytes with 0 items", () => parseIdx(encodeIdx({ dtype: "uint8", dims: [0, 28, 28], data: new Uint8Array(0) }), "empty.idx"), "IDX_EMPTY", "empty.idx: holds 0 items"],
    ["bytes with a header only", () => parseIdx(Uint8Array.from([0, 0, 8, 1]), "head.idx"), "IDX_MALFORMED", "head.idx: truncated header"],
    ["no bytes", () => parseIdx(new Uint8Array(0), "nothing.idx"), "IDX_EMPTY", "nothing.idx"],
    ["dims whose product overflows 2^53", () => parseIdx(header(0x08, [0xffffffff, 0xffffffff, 0xffffffff]), "huge.idx"), "IDX_TOO_LARGE", "huge.idx"],
    ["dims past the 1 GiB default", () => parseIdx(header(0x0e, [60000, 28, 28, 8]), "big.idx"), "IDX_TOO_LARGE", "maxBytes"],
  ];
  it.each(cases)("%s", (_, fn, code, culprit) => {
    expectRefused(fn, code.startsWith("IDX") ? IdxError : DataError, code, culprit);
  });

  it("idxToDataset options: numClasses and classNames must agree; typos are refused", () => {
    expectRefused(() => idxToDataset(images, labels, { numClasses: 3, classNames: ["a", "b"] }), OptionsError, "INVALID_OPTIONS", ["classNames", "numClasses is 3"]);
    expectRefused(() => idxToDataset(images, labels, bad({ numclasses: 3 })), OptionsError, "INVALID_OPTIONS", "numclasses");
  });
});
