/**
 * Adversarial suite, class "loaded state": what a checkpoint hands back (a Normalizer's statistics,
 * a resume cursor) is checked completely before anything is installed, refused with a typed error
 * naming the key, and leaves the object exactly as it was.
 */
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, StateError, type Batch, type StateDict } from "@fitloop/core";
import { DataLoader, Normalizer, fitNormalizer, fromArrays, streamData } from "../index.js";
import { expectRefused } from "./harness.fixture.js";

const data = fromArrays({ x: [[1, 2, 3], [3, 6, 9], [5, 10, 15], [7, 14, 21]], y: [0, 1, 0, 1], numClasses: 2 });
const good = () => fitNormalizer(data).stateDict() as { per: string; sampleShape: number[]; mean: Float32Array; std: Float32Array; count: number };
const f32 = (...v: number[]) => Float32Array.from(v);

/** Each case: a saved state, and what the error must name. */
const badStates: [string, () => unknown, (string | RegExp)[]][] = [
  ["NaN in mean", () => ({ ...good(), mean: f32(1, NaN, 3) }), ["state.mean[1]", "NaN"]],
  ["Infinity in mean", () => ({ ...good(), mean: f32(Infinity, 2, 3) }), ["state.mean[0]"]],
  ["NaN in std", () => ({ ...good(), std: f32(1, 1, NaN) }), ["state.std[2]"]],
  ["negative std", () => ({ ...good(), std: f32(1, -0.5, 1) }), ["state.std[1]", ">= 0"]],
  ["negative count", () => ({ ...good(), count: -3 }), ["state.count", ">= 1"]],
  ["zero count", () => ({ ...good(), count: 0 }), ["state.count"]],
  ["fractional count", () => ({ ...good(), count: 2.5 }), ["state.count"]],
  ["NaN count", () => ({ ...good(), count: NaN }), ["state.count"]],
  ["count as a string", () => ({ ...good(), count: "4" }), ["state.count"]],
  ["missing count", () => ({ ...good(), count: undefined }), ["state.count"]],
  ["mean too short", () => ({ ...good(), mean: f32(1, 2) }), ["state.mean has 2 values", "needs 3"]],
  ["std too long", () => ({ ...good(), std: f32(1, 2, 3, 4) }), ["state.std has 4 values"]],
  ["empty mean and std", () => ({ ...good(), mean: f32(), std: f32() }), ["state.mean has 0 values", "state.std has 0 values"]],
  ["mean as a string", () => ({ ...good(), mean: "1,2,3" }), ["state.mean", "Float32Array"]],
  ["mean as an object", () => ({ ...good(), mean: { 0: 1, 1: 2, 2: 3, length: 3 } }), ["state.mean"]],
  ["mean with a string inside", () => ({ ...good(), mean: [1, "2", 3] }), ["state.mean[1]", '"2"']],
  ["mean with null inside (JSON of NaN)", () => ({ ...good(), mean: [1, null, 3] }), ["state.mean[1]", "null"]],
  ["sampleShape [2.5]", () => ({ ...good(), sampleShape: [2.5] }), ["state.sampleShape"]],
  ["sampleShape [-3]", () => ({ ...good(), sampleShape: [-3] }), ["state.sampleShape"]],
  ["sampleShape []", () => ({ ...good(), sampleShape: [] }), ["state.sampleShape"]],
  ["sampleShape as a number", () => ({ ...good(), sampleShape: 3 }), ["state.sampleShape"]],
  ["per of another kind", () => ({ ...good(), per: "channel" }), ["state.per", "per feature"]],
  ["per not a mode", () => ({ ...good(), per: "pixel" }), ["state.per"]],
  ["unknown key", () => ({ ...good(), meam: f32(1, 2, 3) }), ['unknown key "meam"']],
  ["several problems at once", () => ({ ...good(), mean: f32(NaN, 1, 1), count: -1 }), ["state.mean[0]", "state.count"]],
  ["null", () => null, ["must be an object", "null"]],
  ["a string", () => "normalizer", ["must be an object", "string"]],
  ["an array", () => [1, 2, 3], ["must be an object", "array"]],
  ["a number", () => 42, ["must be an object", "number"]],
  ["a typed array", () => f32(1, 2), ["must be an object"]],
  ["another plugin's state under this key", () => ({ best: 0.3, wait: 2 }), ["unknown keys", "state.per"]],
];

describe("adversarial / loaded state: Normalizer.loadStateDict", () => {
  it.each(badStates)("%s: StateError naming the key; an unfitted normalizer stays unfitted", (_, state, culprit) => {
    const n = new Normalizer();
    expectRefused(() => n.loadStateDict(state() as StateDict), StateError, "STATE_MISMATCH", [/Normalizer "normalizer"/, ...culprit]);
    expect(n.fitted).toBe(false);
  });

  it.each(badStates)("%s: a fitted normalizer keeps its statistics", (_, state) => {
    const n = fitNormalizer(data);
    const before = n.stateDict();
    expect(() => n.loadStateDict(state() as StateDict)).toThrow(StateError);
    expect(n.stateDict()).toEqual(before);
  });

  it("statistics for samples of another size are refused when fitted; the names of the two shapes are given", () => {
    const n = fitNormalizer(data);
    const other = fitNormalizer(fromArrays({ x: [[1, 2], [3, 4]], y: [0, 1], numClasses: 2 })).stateDict();
    expectRefused(() => n.loadStateDict(other), StateError, "STATE_MISMATCH", ["state.sampleShape is [2]", "fitted here on [3]"]);
    expect(Array.from(n.mean)).toEqual(Array.from(fitNormalizer(data).mean));
  });

  it("a JSON round trip (typed arrays become plain arrays) loads to the same statistics", () => {
    const saved = good();
    const n = new Normalizer();
    n.loadStateDict(JSON.parse(JSON.stringify({ ...saved, mean: Array.from(saved.mean), std: Array.from(saved.std) })) as StateDict);
    expect(Array.from(n.mean)).toEqual(Array.from(saved.mean));
    expect(n.count).toBe(4);
  });

  it("the loaded arrays are copies: mutating the saved state later does not change the normalizer", () => {
    const saved = good();
    const n = new Normalizer();
    n.loadStateDict(saved);
    saved.mean[0] = 999;
    expect(n.mean[0]).not.toBe(999);
  });
});

/** Resume positions (the data cursor of a checkpoint) are loaded state too. */
const badCursors: [string, { epoch: number; batchIndex: number }, string][] = [
  ["epoch -1", { epoch: -1, batchIndex: 0 }, "cursor.epoch"],
  ["epoch 1.5", { epoch: 1.5, batchIndex: 0 }, "cursor.epoch"],
  ["epoch NaN", { epoch: NaN, batchIndex: 0 }, "cursor.epoch"],
  ["batch index -1", { epoch: 0, batchIndex: -1 }, "cursor.batchIndex"],
  ["batch index 0.5", { epoch: 0, batchIndex: 0.5 }, "cursor.batchIndex"],
  ["batch index past the end of the epoch", { epoch: 0, batchIndex: 3 }, "cursor.batchIndex"],
  ["batch index Infinity", { epoch: 0, batchIndex: Infinity }, "cursor.batchIndex"],
];

describe("adversarial / loaded state: resume cursors", () => {
  const loader = new DataLoader(data, { batchSize: 2 });

  it.each(badCursors)("DataLoader.batches at %s: OptionsError naming the cursor field", (_, cursor, culprit) => {
    expectRefused(() => loader.batches(cursor), OptionsError, "INVALID_OPTIONS", culprit);
  });

  it.each(badCursors.filter(([name]) => !name.includes("past the end")))("streamData.batches at %s: OptionsError naming the cursor field", (_, cursor, culprit) => {
    const src = streamData({ open: () => [{ x: [1, 2, 3], y: 0 }] }, { batchSize: 1, sampleShape: [3], numClasses: 2 });
    expectRefused(() => src.batches(cursor), OptionsError, "INVALID_OPTIONS", culprit);
  });

  it("a cursor at the end of the epoch is valid and yields nothing (the epoch was finished)", async () => {
    const before = tf.memory().numTensors;
    const out: Batch[] = [];
    for await (const b of loader.batches({ epoch: 0, batchIndex: 2 }) as AsyncIterable<Batch>) out.push(b);
    expect(out).toEqual([]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
