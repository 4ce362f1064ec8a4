/**
 * Adversarial suite, class "silent mistakes in options": typos, wrong types, out-of-range and
 * pointless values of every option the package takes. Each is refused with an `OptionsError` that
 * names the option (and, for image-dependent bounds, the image size), before any work and with no
 * tensor created.
 */
import { describe, expect, it, vi } from "vitest";
import { OptionsError } from "@fitloop/core";
import {
  DataLoader,
  Normalizer,
  cutMix,
  dataReport,
  fromArrays,
  gaussianBlobs,
  gaussianNoise,
  horizontalFlip,
  labelSmoothing,
  mixUp,
  noisyRegression,
  prefetch,
  randomCrop,
  randomRotation,
  randomShift,
  splitDataset,
  streamData,
  twoSpirals,
  xor,
  type BatchTransform,
  type HostBatch,
} from "../index.js";
import { expectRefused } from "./harness.fixture.js";

const bad = <T>(v: unknown) => v as T;
type Ctor = () => unknown;

/** [what, constructor call, option path the message must name]. */
const transformOptions: [string, Ctor, string][] = [
  ["randomShift maxShift -1", () => randomShift({ maxShift: -1 }), "maxShift"],
  ["randomShift maxShift 1.5", () => randomShift({ maxShift: 1.5 }), "maxShift"],
  ["randomShift maxShift NaN", () => randomShift({ maxShift: NaN }), "maxShift"],
  ["randomShift maxShift Infinity", () => randomShift({ maxShift: Infinity }), "maxShift"],
  ["randomShift maxShift as a string", () => randomShift({ maxShift: bad("2") }), "maxShift"],
  ["randomShift without maxShift", () => randomShift(bad({})), "maxShift"],
  ["randomShift typo maxshift", () => randomShift(bad({ maxshift: 2 })), "maxshift"],
  ["randomShift fill NaN", () => randomShift({ maxShift: 1, fill: NaN }), "fill"],
  ["randomShift imageShape [28, 28.5]", () => randomShift({ maxShift: 1, imageShape: [28, 28.5] }), "imageShape"],
  ["randomShift imageShape [784]", () => randomShift({ maxShift: 1, imageShape: [784] }), "imageShape"],
  ["randomShift imageShape [1, 28, 28, 1]", () => randomShift({ maxShift: 1, imageShape: [1, 28, 28, 1] }), "imageShape"],
  ["randomCrop padding -2", () => randomCrop({ padding: -2 }), "padding"],
  ["randomCrop padding 0.5", () => randomCrop({ padding: 0.5 }), "padding"],
  ["randomCrop typo pad", () => randomCrop(bad({ pad: 2 })), "pad"],
  ["randomRotation maxDegrees -5", () => randomRotation({ maxDegrees: -5 }), "maxDegrees"],
  ["randomRotation maxDegrees 270", () => randomRotation({ maxDegrees: 270 }), "maxDegrees"],
  ["randomRotation maxDegrees NaN", () => randomRotation({ maxDegrees: NaN }), "maxDegrees"],
  ["randomRotation radians by mistake (typo degrees)", () => randomRotation(bad({ degrees: 0.2 })), "degrees"],
  ["gaussianNoise std -0.1", () => gaussianNoise({ std: -0.1 }), "std"],
  ["gaussianNoise std NaN", () => gaussianNoise({ std: NaN }), "std"],
  ["gaussianNoise std Infinity", () => gaussianNoise({ std: Infinity }), "std"],
  ["gaussianNoise std as a string", () => gaussianNoise({ std: bad("0.1") }), "std"],
  ["gaussianNoise clip reversed", () => gaussianNoise({ std: 0.1, clip: [1, 0] }), "clip"],
  ["gaussianNoise clip with NaN", () => gaussianNoise({ std: 0.1, clip: [NaN, 1] }), "clip"],
  ["gaussianNoise clip of one value", () => gaussianNoise({ std: 0.1, clip: bad([0]) }), "clip"],
  ["gaussianNoise typo sigma", () => gaussianNoise(bad({ sigma: 0.1 })), "sigma"],
  ["horizontalFlip p 1.5", () => horizontalFlip({ p: 1.5, labelsFlipInvariant: true }), "p"],
  ["horizontalFlip p -0.1", () => horizontalFlip({ p: -0.1, labelsFlipInvariant: true }), "p"],
  ["horizontalFlip p NaN", () => horizontalFlip({ p: NaN, labelsFlipInvariant: true }), "p"],
  ["horizontalFlip typo labelFlipInvariant", () => horizontalFlip(bad({ labelFlipInvariant: true })), "labelFlipInvariant"],
  ["horizontalFlip labelsFlipInvariant 'yes'", () => horizontalFlip(bad({ labelsFlipInvariant: "yes" })), "labelsFlipInvariant"],
  ["horizontalFlip warn not a function", () => horizontalFlip(bad({ warn: "console" })), "warn"],
  ["mixUp alpha 0", () => mixUp({ alpha: 0 }), "alpha"],
  ["mixUp alpha -1", () => mixUp({ alpha: -1 }), "alpha"],
  ["mixUp alpha NaN", () => mixUp({ alpha: NaN }), "alpha"],
  ["mixUp typo lambda", () => mixUp(bad({ lambda: 0.4 })), "lambda"],
  ["cutMix alpha 0", () => cutMix({ alpha: 0 }), "alpha"],
  ["cutMix alpha Infinity", () => cutMix({ alpha: Infinity }), "alpha"],
  ["labelSmoothing epsilon 1 (erases the labels)", () => labelSmoothing({ epsilon: 1 }), "epsilon"],
  ["labelSmoothing epsilon 1.2", () => labelSmoothing({ epsilon: 1.2 }), "epsilon"],
  ["labelSmoothing epsilon -0.1", () => labelSmoothing({ epsilon: -0.1 }), "epsilon"],
  ["labelSmoothing typo smoothing", () => labelSmoothing(bad({ smoothing: 0.1 })), "smoothing"],
];

describe("adversarial / options: augmentations", () => {
  it.each(transformOptions)("%s", (_, make, path) => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const err = expectRefused(make, OptionsError, "INVALID_OPTIONS", path);
    expect(err.issues.map((i) => i.path).join(" ")).toContain(path);
    warn.mockRestore();
  });
});

const digits = fromArrays({ x: new Float32Array(8 * 28 * 28), sampleShape: [28, 28, 1], y: [0, 1, 2, 3, 0, 1, 2, 3], numClasses: 4 });
const small = fromArrays({ x: new Float32Array(8 * 5 * 3), sampleShape: [5, 3, 1], y: [0, 1, 0, 1, 0, 1, 0, 1], numClasses: 2 });
const batchOf = (ds: typeof small): HostBatch => ({ x: ds.x.slice(), y: ds.y.slice(), size: ds.size, sampleShape: ds.sampleShape, labelShape: [], indices: new Int32Array(ds.size) });
const ctx = { rng: { next: () => 0.5, int: () => 0, nextUint32: () => 1 } as never, epoch: 0, batchIndex: 0, numClasses: 2 };

/** Bounds that depend on the image: refused when a loader is built (the earliest point the size is known). */
const imageBounds: [string, () => BatchTransform, typeof digits, (string | RegExp)[]][] = [
  ["maxShift 28 on 28 x 28 digits", () => randomShift({ maxShift: 28 }), digits, ["maxShift", "28 x 28 pixels", "maxShift <= 27"]],
  ["maxShift 100 on 28 x 28 digits", () => randomShift({ maxShift: 100 }), digits, ["maxShift: 100", "28 x 28"]],
  ["maxShift 3 on a 5 x 3 image (narrow side)", () => randomShift({ maxShift: 3 }), small, ["maxShift", "5 x 3 pixels", "maxShift <= 2"]],
  ["padding 3 on a 5 x 3 image", () => randomCrop({ padding: 3 }), small, ["padding", "5 x 3"]],
  ["maxShift on flat samples read through imageShape", () => randomShift({ maxShift: 5, imageShape: [5, 3, 1] }), fromArrays({ x: new Float32Array(30), sampleShape: [15], y: [0, 1], numClasses: 2 }), ["maxShift", "5 x 3"]],
];

describe("adversarial / options: bounds that depend on the image size", () => {
  it.each(imageBounds)("%s: refused when the loader is built", (_, make, ds, culprit) => {
    expectRefused(() => new DataLoader(ds, { batchSize: 2, transforms: [make()] }), OptionsError, "INVALID_OPTIONS", culprit);
  });

  it.each(imageBounds)("%s: refused by streamData as well", (_, make, ds, culprit) => {
    expectRefused(() => streamData({ open: () => [] }, { batchSize: 2, sampleShape: ds.sampleShape, numClasses: 2, transforms: [make()] }), OptionsError, "INVALID_OPTIONS", culprit);
  });

  it.each(imageBounds)("%s: applied by hand, refused at the first batch (before touching it)", (_, make, ds, culprit) => {
    const b = batchOf(ds);
    const copy = b.x.slice();
    expectRefused(() => make().apply(b, ctx), OptionsError, "INVALID_OPTIONS", culprit);
    expect(b.x).toEqual(copy);
  });

  it("the largest shift that keeps part of the image is accepted", () => {
    expect(() => new DataLoader(digits, { batchSize: 2, transforms: [randomShift({ maxShift: 27 }), randomCrop({ padding: 27 })] })).not.toThrow();
  });
});

const ds = fromArrays({ x: [[1, 2], [3, 4], [5, 6], [7, 8]], y: [0, 1, 0, 1], numClasses: 2 });
const packageOptions: [string, Ctor, string][] = [
  ["fromArrays typo samplShape", () => fromArrays(bad({ x: [1, 2], samplShape: [2], y: [0] })), "samplShape"],
  ["fromArrays typo numClass", () => fromArrays(bad({ x: [[1]], y: [0], numClass: 2 })), "numClass"],
  ["fromArrays numClasses 2.5", () => fromArrays({ x: [[1]], y: [0], numClasses: 2.5 }), "numClasses"],
  ["fromArrays numClasses 0", () => fromArrays({ x: [[1]], y: [0], numClasses: 0 }), "numClasses"],
  ["fromArrays classNames of the wrong length", () => fromArrays({ x: [[1], [2]], y: [0, 1], numClasses: 2, classNames: ["a", "b", "c"] }), "classNames"],
  ["fromArrays allowNonFinite 'true'", () => fromArrays(bad({ x: [[1]], y: [0], allowNonFinite: "true" })), "allowNonFinite"],
  ["DataLoader typo batch_size", () => new DataLoader(ds, bad({ batch_size: 2 })), "batch_size"],
  ["DataLoader typo shufle", () => new DataLoader(ds, bad({ batchSize: 2, shufle: false })), "shufle"],
  ["DataLoader batchSize 0", () => new DataLoader(ds, { batchSize: 0 }), "batchSize"],
  ["DataLoader batchSize 2.5", () => new DataLoader(ds, { batchSize: 2.5 }), "batchSize"],
  ["DataLoader seed 1.5", () => new DataLoader(ds, { batchSize: 2, seed: 1.5 }), "seed"],
  ["DataLoader prefetch -1", () => new DataLoader(ds, { batchSize: 2, prefetch: -1 }), "prefetch"],
  ["DataLoader transforms holds a function", () => new DataLoader(ds, { batchSize: 2, transforms: [bad((b: unknown) => b)] }), "transforms"],
  ["DataLoader shuffle 'no'", () => new DataLoader(ds, bad({ batchSize: 2, shuffle: "no" })), "shuffle"],
  ["DataLoader over null", () => new DataLoader(bad(null), { batchSize: 2 }), "dataset"],
  ["streamData source without open", () => streamData(bad({ read: () => [] }), { batchSize: 2, sampleShape: [2] }), "source"],
  ["streamData source size -5", () => streamData({ open: () => [], size: -5 }, { batchSize: 2, sampleShape: [2] }), "source.size"],
  ["streamData sampleShape []", () => streamData({ open: () => [] }, { batchSize: 2, sampleShape: [] }), "sampleShape"],
  ["streamData sampleShape [2.5]", () => streamData({ open: () => [] }, { batchSize: 2, sampleShape: [2.5] }), "sampleShape"],
  ["streamData labelShape with numClasses", () => streamData({ open: () => [] }, { batchSize: 2, sampleShape: [2], numClasses: 3, labelShape: [3] }), "labelShape"],
  ["streamData shuffleBuffer 1.5", () => streamData({ open: () => [] }, { batchSize: 2, sampleShape: [2], shuffleBuffer: 1.5 }), "shuffleBuffer"],
  ["streamData typo shuffle_buffer", () => streamData({ open: () => [] }, bad({ batchSize: 2, sampleShape: [2], shuffle_buffer: 8 })), "shuffle_buffer"],
  ["splitDataset typo fraction", () => splitDataset(ds, bad<{ fractions: Record<string, number> }>({ fraction: { train: 1 } })), "fraction"],
  ["splitDataset fractions as an array", () => splitDataset(ds, bad<{ fractions: Record<string, number> }>({ fractions: [0.5, 0.5] })), "fractions"],
  ["splitDataset fractions not summing to 1", () => splitDataset(ds, { fractions: { train: 0.8, test: 0.1 } }), "fractions"],
  ["splitDataset a NaN fraction", () => splitDataset(ds, { fractions: { train: NaN, test: 1 } }), "fractions.train"],
  ["splitDataset stratify 'yes'", () => splitDataset(ds, bad<{ fractions: Record<string, number> }>({ fractions: { train: 1 }, stratify: "yes" })), "stratify"],
  ["splitDataset typo statify", () => splitDataset(ds, bad<{ fractions: Record<string, number> }>({ fractions: { train: 1 }, statify: false })), "statify"],
  ["Normalizer per 'pixel'", () => new Normalizer(bad({ per: "pixel" })), "per"],
  ["Normalizer epsilon -1", () => new Normalizer({ epsilon: -1 }), "epsilon"],
  ["Normalizer stateKey __proto__", () => new Normalizer({ stateKey: "__proto__" }), "stateKey"],
  ["Normalizer stateKey ''", () => new Normalizer({ stateKey: "" }), "stateKey"],
  ["Normalizer typo state_key", () => new Normalizer(bad({ state_key: "x" })), "state_key"],
  ["dataReport samples -1", () => dataReport(ds, { samples: -1 }), "samples"],
  ["prefetch depth NaN", () => prefetch([1][Symbol.iterator](), NaN, () => undefined), "depth"],
  ["prefetch depth -1", () => prefetch([1][Symbol.iterator](), -1, () => undefined), "depth"],
  ["prefetch without a dispose function", () => prefetch([1][Symbol.iterator](), 1, bad(undefined)), "dispose"],
  ["twoSpirals samples 1e10 (no RangeError)", () => twoSpirals({ samples: 1e10 }), "samples"],
  ["twoSpirals samples 1", () => twoSpirals({ samples: 1 }), "samples"],
  ["twoSpirals turns 0", () => twoSpirals({ turns: 0 }), "turns"],
  ["gaussianBlobs more classes than samples", () => gaussianBlobs({ samples: 3, classes: 5 }), "classes"],
  ["gaussianBlobs one class", () => gaussianBlobs({ classes: 1 }), "classes"],
  ["gaussianBlobs samples x features too large", () => gaussianBlobs({ samples: 100_000, features: 10_000 }), "samples"],
  ["xor samples 2", () => xor({ samples: 2 }), "samples"],
  ["xor noise -1", () => xor({ noise: -1 }), "noise"],
  ["noisyRegression kind 'quadratic'", () => noisyRegression(bad({ kind: "quadratic" })), "kind"],
  ["noisyRegression features 0", () => noisyRegression({ features: 0 }), "features"],
];

describe("adversarial / options: data sets, loaders, splits, normalizer, synthetic sets", () => {
  it.each(packageOptions)("%s", (_, make, path) => {
    const err = expectRefused(make, OptionsError, "INVALID_OPTIONS", path);
    expect(err.issues.map((i) => i.path).join(" ")).toContain(path);
  });

  it("a typo is answered with the option that was probably meant", () => {
    expectRefused(() => new DataLoader(ds, bad({ batchSize: 2, shufle: false })), OptionsError, "INVALID_OPTIONS", /shuffle/);
  });
});
