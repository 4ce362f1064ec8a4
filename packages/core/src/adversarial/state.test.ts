/**
 * Adversarial suite: state that is loaded. Whatever a caller hands `loadStateDict`, `loadSnapshot`
 * or `fit({ resumeFrom })` (wrong types, out-of-range positions, malformed history, RNG and epoch
 * totals, forged plugin keys, weights and optimizer slots that do not fit or are in another order,
 * another optimizer's state, JSON round-tripped typed arrays, bad hyperparameters), and whatever
 * the state codec is given (values a checkpoint cannot store, forged tags), the answer is a
 * `StateError` (code STATE_MISMATCH) whose message names the culprit, with no tensor left behind
 * and the model's weights as they were. A plugin that refuses its state leaves the others, the
 * RNG and the position as they were.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { PluginError, StateError, decodeState, encodeState, seeded, type Callback, type OptimizerStateDict, type RunSnapshot, type StateDict, type TrainerStateDict } from "../index.js";
import { roundTripState } from "../testing/index.js";
import { expectRefused, expectRejected, smallRun, weightsOf, type Culprit } from "./harness.fixture.js";

type Run = ReturnType<typeof smallRun>;
type Json = Record<string, unknown>;
const STATE = "STATE_MISMATCH";

let src: Run; // trained one epoch: the source of good states
let dst: Run; // same architecture, built later (other auto names): where bad states are loaded
let good: RunSnapshot;
let goodDict: TrainerStateDict;

beforeAll(async () => {
  src = smallRun();
  await src.trainer.fit({ epochs: 1, train: src.train() });
  good = structuredClone(await src.trainer.snapshot());
  goodDict = structuredClone(src.trainer.stateDict());
  dst = smallRun();
  // one run first: the optimizer's slots exist, so counts taken later include them
  await dst.trainer.fit({ epochs: 1, train: dst.train() });
});
afterAll(() => {
  for (const r of [src, dst]) {
    r.trainer.optimizer.dispose();
    r.dispose();
  }
});

/** The same object, typed so that any key can be written or deleted (the cases forge states). */
const raw = (o: object): Json => o as Json;
/** A deep copy of the good trainer state with `edit` applied (plain JSON objects: anything may be written). */
const dict = (edit: (d: Json & { train: Json & { cursor: Json; history: Json[]; epochProgress: Json }; plugins: Json }) => void): unknown => {
  const d = structuredClone(goodDict) as unknown as Json & { train: Json & { cursor: Json; history: Json[]; epochProgress: Json }; plugins: Json };
  edit(d);
  return d;
};
/** A deep copy of the good snapshot with `edit` applied. */
const snap = (edit: (s: Json & { trainer: Json; optimizer: Json & { slots: Record<string, Json[]>; scalars: Json; variables: Json[]; hyper: Json }; weights: Json[] }) => void): RunSnapshot => {
  const s = structuredClone(good) as unknown as Json & { trainer: Json; optimizer: Json & { slots: Record<string, Json[]>; scalars: Json; variables: Json[]; hyper: Json }; weights: Json[] };
  edit(s);
  return s as unknown as RunSnapshot;
};

describe("loadStateDict refuses a state that is not a trainer state", () => {
  const cases: [string, () => unknown, Culprit][] = [
    ["null", () => null, ["(state)", "got null"]],
    ["undefined", () => undefined, ["(state)", "got undefined"]],
    ["{}", () => ({}), ["train: ", "rng: ", "plugins: ", "missing"]],
    ["a string", () => "state", ["(state)", 'got "state"']],
    ["a number", () => 42, ["(state)", "got 42"]],
    ["an array", () => [goodDict], ["(state)", "got an array of 1"]],
    ["plugins: null", () => dict((d) => void (raw(d)["plugins"] = null)), ["plugins: ", "got null"]],
    ["plugins as an array", () => dict((d) => void (raw(d)["plugins"] = [{}])), ["plugins: ", "got an array of 1"]],
    ["train missing", () => dict((d) => void delete raw(d)["train"]), ["train: ", "missing"]],
    ["train: null", () => dict((d) => void (raw(d)["train"] = null)), ["train: ", "got null"]],
    ["rng missing", () => dict((d) => void delete d["rng"]), ["rng: ", "missing"]],
    ["an unknown top-level key", () => dict((d) => void (d["optimizer"] = {})), "optimizer: is not part of a trainer state"],
    ["an extra key inside train", () => dict((d) => void (d.train["lr"] = 0.1)), "train.lr: is not part of a trainer state"],
    ["an extra key inside the cursor", () => dict((d) => void (d.train.cursor["step"] = 0)), "train.cursor.step: is not part of a trainer state"],
    ["cursor missing", () => dict((d) => void delete raw(d.train)["cursor"]), ["train.cursor: ", "missing"]],
    ["cursor: a number", () => dict((d) => void (raw(d.train)["cursor"] = 3)), ["train.cursor: ", "got 3"]],
  ];
  it.each(cases)("%s", (_label, state, culprit) => {
    expectRefused(() => dst.trainer.loadStateDict(state() as TrainerStateDict), StateError, STATE, culprit, { model: dst.model });
  });
});

describe("loadStateDict refuses positions that are not counts", () => {
  const fields: [string, (d: Json & { train: Json & { cursor: Json } }, v: unknown) => void][] = [
    ["train.epoch", (d, v) => void (d.train["epoch"] = v)],
    ["train.step", (d, v) => void (d.train["step"] = v)],
    ["train.globalBatch", (d, v) => void (d.train["globalBatch"] = v)],
    ["train.batchIndex", (d, v) => void (d.train["batchIndex"] = v)],
    ["train.cursor.epoch", (d, v) => void (d.train.cursor["epoch"] = v)],
    ["train.cursor.batchIndex", (d, v) => void (d.train.cursor["batchIndex"] = v)],
  ];
  const values: [string, unknown, string][] = [
    ["negative", -1, "got -1"],
    ["fractional", 1.5, "got 1.5"],
    ["NaN", Number.NaN, "got NaN"],
    ["huge (2^53, not a safe integer)", 2 ** 53, `got ${2 ** 53}`],
    ["Infinity", Number.POSITIVE_INFINITY, "got Infinity"],
    ["a string", "3", 'got "3"'],
    ["null", null, "got null"],
  ];
  const cases = fields.flatMap(([path, set]) => values.map(([what, v, got]) => [`${path} ${what}`, path, set, v, got] as const));
  it.each(cases)("%s", (_label, path, set, v, got) => {
    expectRefused(() => dst.trainer.loadStateDict(dict((d) => set(d, v)) as TrainerStateDict), StateError, STATE, [`${path}: must be an integer >= 0`, got], { model: dst.model });
  });

  it("every bad field is listed in one error", () => {
    const err = expectRefused(() => dst.trainer.loadStateDict(dict((d) => Object.assign(d.train, { epoch: -1, step: 0.5, cursor: { epoch: Number.NaN, batchIndex: -2 } })) as TrainerStateDict), StateError, STATE, ["train.epoch", "train.step", "train.cursor.epoch", "train.cursor.batchIndex"], { model: dst.model });
    expect(err.issues).toHaveLength(4);
  });
});

describe("loadStateDict refuses malformed history, RNG, epoch totals and plugin keys", () => {
  const cases: [string, () => unknown, Culprit][] = [
    ["history not an array", () => dict((d) => void (raw(d.train)["history"] = {})), ["train.history: must be an array", "got an object"]],
    ["a history entry null", () => dict((d) => void (d.train.history[0] = null as unknown as Json)), ["train.history[0]: ", "got null"]],
    ["a history entry without logs", () => dict((d) => void delete d.train.history[0]!["logs"]), ["train.history[0].logs: ", "missing"]],
    ["a history log that is a string", () => dict((d) => void ((d.train.history[0]!["logs"] as Json)["loss"] = "0.3")), ["train.history[0].logs.loss: must be a number", 'got "0.3"']],
    ["history logs as an array", () => dict((d) => void (d.train.history[0]!["logs"] = [1])), ["train.history[0].logs: ", "got an array of 1"]],
    ["a history epoch negative", () => dict((d) => void (d.train.history[0]!["epoch"] = -1)), ["train.history[0].epoch: must be an integer >= 0", "got -1"]],
    ["an extra key in a history entry", () => dict((d) => void (d.train.history[0]!["lr"] = 1)), "train.history[0].lr: is not part of a trainer state"],
    ["history out of order", () => dict((d) => void d.train.history.unshift({ epoch: 0, logs: {} })), ["train.history[1].epoch", "not after the previous record's 0"]],
    ["a history record after the cursor", () => dict((d) => void (d.train.history[0]!["epoch"] = 5)), ["train.history[0].epoch", "is 5, after the cursor's epoch 1"]],
    ["rng of 3 words", () => dict((d) => void (d["rng"] = [1, 2, 3])), ["rng: ", "got an array of 3"]],
    ["rng of 5 words", () => dict((d) => void (d["rng"] = [1, 2, 3, 4, 5])), ["rng: ", "got an array of 5"]],
    ["rng with a fraction", () => dict((d) => void (d["rng"] = [1, 2.5, 3, 4])), ["rng[1]: must be an integer in [0, 2^32)", "got 2.5"]],
    ["rng with a negative word", () => dict((d) => void (d["rng"] = [1, 2, -3, 4])), ["rng[2]: must be an integer in [0, 2^32)", "got -3"]],
    ["rng with a word of 2^32", () => dict((d) => void (d["rng"] = [1, 2, 3, 2 ** 32])), ["rng[3]: must be an integer in [0, 2^32)", `got ${2 ** 32}`]],
    ["rng with a string word", () => dict((d) => void (d["rng"] = ["1", 2, 3, 4])), ["rng[0]: ", 'got "1"']],
    ["rng all zero", () => dict((d) => void (d["rng"] = [0, 0, 0, 0])), "rng: the all-zero xoshiro state is invalid"],
    ["rng a number (a seed)", () => dict((d) => void (d["rng"] = 42)), ["rng: ", "got 42"]],
    ["epochProgress null", () => dict((d) => void (raw(d.train)["epochProgress"] = null)), ["train.epochProgress: ", "got null"]],
    ["epochProgress samples negative", () => dict((d) => void (d.train.epochProgress["samples"] = -8)), ["train.epochProgress.samples: must be an integer >= 0", "got -8"]],
    ["epochProgress sums with a string", () => dict((d) => void (d.train.epochProgress["sums"] = { loss: "x" })), ["train.epochProgress.sums.loss: must be a number", 'got "x"']],
    ["epochProgress sums an array", () => dict((d) => void (d.train.epochProgress["sums"] = [])), ["train.epochProgress.sums: ", "got an array of 0"]],
    ["an epochProgress aggregate with an unknown reduce", () => dict((d) => void (d.train.epochProgress["plugins"] = { norm: { reduce: "median", sum: 0, count: 0, min: 0, max: 0, last: 0 } })), ["train.epochProgress.plugins.norm.reduce: must be one of mean, sum, min, max, last", 'got "median"']],
    ["an epochProgress aggregate without its count", () => dict((d) => void (d.train.epochProgress["plugins"] = { norm: { reduce: "mean", sum: 0, min: 0, max: 0, last: 0 } })), ["train.epochProgress.plugins.norm.count: ", "missing"]],
    ["an extra key in epochProgress", () => dict((d) => void (d.train.epochProgress["batches"] = 3)), "train.epochProgress.batches: is not part of a trainer state"],
    ["a plugin stateKey __proto__", () => JSON.parse(JSON.stringify({ ...goodDict, plugins: "P" }).replace('"plugins":"P"', '"plugins":{"__proto__":{"polluted":true}}')), ["plugins.__proto__", "cannot be a plugin's stateKey"]],
    ["a __proto__ key in the history's logs", () => JSON.parse(JSON.stringify(goodDict).replace('"logs":{', '"logs":{"__proto__":"x",')), ["train.history[0].logs.__proto__", "is not a key a trainer state has"]],
    ["a __proto__ key in the epoch totals", () => JSON.parse(JSON.stringify({ ...goodDict, train: { ...goodDict.train, epochProgress: "P" } }).replace('"epochProgress":"P"', '"epochProgress":{"samples":0,"sums":{},"plugins":{"__proto__":{"polluted":true}}}')), ["train.epochProgress.plugins.__proto__", "is not a key a trainer state has"]],
    ["a plugin stateKey constructor", () => dict((d) => void (raw(d)["plugins"] = { constructor: {} })), ["plugins.constructor", "cannot be a plugin's stateKey"]],
    ["a plugin stateKey prototype", () => dict((d) => void (raw(d)["plugins"] = { prototype: {} })), ["plugins.prototype", "cannot be a plugin's stateKey"]],
    ["a plugin state that is a number", () => dict((d) => void (raw(d)["plugins"] = { es: 3 })), ["plugins.es: must be a plugin's state dict", "got 3"]],
    ["a plugin state that is an array", () => dict((d) => void (raw(d)["plugins"] = { es: [] })), ["plugins.es: must be a plugin's state dict", "got an array of 0"]],
    ["a plugin state that is null", () => dict((d) => void (raw(d)["plugins"] = { es: null })), ["plugins.es: must be a plugin's state dict", "got null"]],
  ];
  it.each(cases)("%s", (_label, state, culprit) => {
    expectRefused(() => dst.trainer.loadStateDict(state() as TrainerStateDict), StateError, STATE, culprit, { model: dst.model });
  });

  it("the forged __proto__ key polluted nothing", () => {
    expect(({} as Json)["polluted"]).toBeUndefined();
  });
});

/** A stateful plugin whose state is a counter; `refuse` makes its loadStateDict throw. */
class Counter implements Callback {
  count = 0;
  constructor(
    readonly name: string,
    readonly stateKey: string,
    private readonly refuse?: () => Error,
  ) {}
  afterBatch(): void {
    this.count++;
  }
  stateDict(): StateDict {
    return { count: this.count };
  }
  loadStateDict(s: StateDict): void {
    if (this.refuse) throw this.refuse();
    this.count = s["count"] as number;
  }
}

describe("at fit time", () => {
  it("a plugin whose loadStateDict throws: the others get their state back; RNG, position and weights are untouched", async () => {
    const a = new Counter("A", "a");
    const c = new Counter("C", "c");
    const b = new Counter("B", "b", () => new StateError('B: the saved state is invalid: count: "x" is not a number'));
    const r = smallRun({ callbacks: [a, b, c], seed: 9 });
    await r.trainer.fit({ epochs: 1, train: r.train() });
    const before = structuredClone(r.trainer.stateDict());
    const saved = { ...structuredClone(goodDict), rng: [1, 2, 3, 4] as const, plugins: { a: { count: 100 }, b: { count: "x" }, c: { count: 300 } } };
    saved.train = { ...saved.train, cursor: { epoch: 0, batchIndex: 2 }, epoch: 0, batchIndex: 2 };
    r.trainer.loadStateDict(saved as unknown as TrainerStateDict);
    await expectRejected(() => r.trainer.fit({ epochs: 2, train: r.train() }), StateError, STATE, ["B: the saved state is invalid", "count"], { model: r.model });
    expect([a.count, b.count, c.count]).toEqual([3, 3, 3]);
    expect(r.trainer.stateDict()).toEqual(before); // position, history, RNG and plugin states of the last run
    r.trainer.optimizer.dispose();
    r.dispose();
  });

  // A plugin's own error from loadStateDict (a TypeError on a malformed dict) is wrapped, as hook errors are.
  it("a plugin whose loadStateDict throws a TypeError: a PluginError naming it", async () => {
    const b = new Counter("Broken", "b", () => new TypeError("Cannot read properties of undefined (reading 'mean')"));
    const r = smallRun({ callbacks: [b] });
    r.trainer.loadStateDict({ ...structuredClone(goodDict), plugins: { b: {} } });
    try {
      await expectRejected(() => r.trainer.fit({ epochs: 1, train: r.train() }), PluginError, "PLUGIN_FAILED", ['"Broken"', "loadStateDict"], { model: r.model });
    } finally {
      r.trainer.optimizer.dispose();
      r.dispose();
    }
  });

  it("a cursor at the end of the epoch's batches is valid (saved after the last batch, before validation)", async () => {
    const r = smallRun();
    r.trainer.loadStateDict(dict((d) => Object.assign(d.train, { epoch: 0, batchIndex: 3, cursor: { epoch: 0, batchIndex: 3 }, history: [] })) as TrainerStateDict);
    const res = await r.trainer.fit({ epochs: 1, train: r.train(8) }); // 24 samples / 8 = 3 batches
    expect(res.state.step).toBe(goodDict.train.step); // nothing left to train in epoch 0
    r.trainer.optimizer.dispose();
    r.dispose();
  });

  // A cursor past the epoch (the data has fewer batches than when it was saved: another batch size or
  // data set) would train nothing; only fit() knows the data, and checks it before any state is applied.
  it("a cursor past the epoch (batchIndex 5 of 3 batches): a StateError at fit() naming the cursor", async () => {
    const r = smallRun();
    try {
      r.trainer.loadStateDict(dict((d) => Object.assign(d.train, { epoch: 0, batchIndex: 5, cursor: { epoch: 0, batchIndex: 5 }, history: [] })) as TrainerStateDict);
      await expectRejected(() => r.trainer.fit({ epochs: 1, train: r.train(8) }), StateError, STATE, ["train.cursor.batchIndex", "5", "3 batches"], { model: r.model });
    } finally {
      r.trainer.optimizer.dispose();
      r.dispose();
    }
  });
});

describe("loadSnapshot refuses weights that do not fit", () => {
  const w = (i: number, edit: (x: Json) => void) => snap((s) => edit(s.weights[i]!));
  const cases: [string, () => unknown, Culprit][] = [
    ["a snapshot that is null", () => null, ["not a fitloop run snapshot", "got null"]],
    ["a snapshot that is a string", () => "fitloop.run/1", ["not a fitloop run snapshot", "got string"]],
    ["a wrong format tag", () => snap((s) => void (s["format"] = "fitloop.run/2")), ['not a fitloop run snapshot (format "fitloop.run/1")', "format fitloop.run/2"]],
    ["no format tag", () => snap((s) => void delete s["format"]), ["not a fitloop run snapshot", "format undefined"]],
    ["weights: null", () => snap((s) => void (raw(s)["weights"] = null)), ["weights: must be an array", "got null"]],
    ["a weight missing", () => snap((s) => void s.weights.pop()), "3 weights saved, the model has 4"],
    ["a weight too many", () => snap((s) => void s.weights.push(s.weights[0]!)), "5 weights saved, the model has 4"],
    ["a weight that is null", () => snap((s) => void (s.weights[1] = null as unknown as Json)), ["weights[1]", "got null"]],
    ["a weight reshaped", () => w(0, (x) => void (x["shape"] = [8, 4])), ["weights[0]", "is float32 [4, 8], the saved one", "[8, 4]"]],
    ["a weight of another dtype", () => w(1, (x) => void (x["dtype"] = "int32")), ["weights[1]", "the saved one (dense_Dense", "is int32 [8]"]],
    ["a weight of dtype float64", () => w(1, (x) => void (x["dtype"] = "float64")), ["weights[1]", "is float64 [8]"]],
    ["weight values as a plain array", () => w(2, (x) => void (x["values"] = Array.from(x["values"] as Float32Array))), ["weights[2]", "with values an array of 24 (a Float32Array is needed; a JSON round trip"]],
    ["weight values JSON round-tripped", () => w(2, (x) => void (x["values"] = JSON.parse(JSON.stringify(x["values"])))), ["weights[2]", "with values an object (a Float32Array is needed; a JSON round trip"]],
    ["weight values a Float64Array", () => w(3, (x) => void (x["values"] = new Float64Array(3))), ["weights[3]", "with values a Float64Array (a Float32Array is needed)"]],
    ["weight values too short", () => w(3, (x) => void (x["values"] = new Float32Array(2))), ["weights[3]", "with 2 values"]],
    ["weight values too long", () => w(0, (x) => void (x["values"] = new Float32Array(33))), ["weights[0]", "with 33 values"]],
    ["a weight name that is not a string", () => w(0, (x) => void (x["name"] = 7)), ["weights[0].name: must be the weight's name", "got 7"]],
    ["a weight of another layer (renamed)", () => w(0, (x) => void (x["name"] = "encoder/kernel")), ['weight 0 of the model is "dense_Dense', 'the saved weight 0 is "encoder/kernel"']],
  ];
  it.each(cases)("%s", (_label, s, culprit) => {
    expectRefused(() => dst.trainer.loadSnapshot(s() as RunSnapshot), StateError, STATE, culprit, { model: dst.model });
  });

  it("same-shape weights in another order are refused by name, naming both and the position", async () => {
    const build = (first: string, second: string) =>
      seeded(4, () => {
        const m = tfl.sequential();
        m.add(tfl.layers.dense({ inputShape: [4], units: 4, name: first }));
        m.add(tfl.layers.dense({ units: 4, name: second }));
        m.add(tfl.layers.dense({ units: 3, activation: "softmax" }));
        return m;
      });
    const a = smallRun({ model: build("enc", "dec") });
    await a.trainer.fit({ epochs: 1, train: a.train() });
    const s = structuredClone(await a.trainer.snapshot());
    const b = smallRun({ model: build("dec", "enc") });
    await b.trainer.fit({ epochs: 1, train: b.train() });
    expectRefused(() => b.trainer.loadSnapshot(s), StateError, STATE, ["weights[0]", /weight 0 of the model is "dec\/kernel(_\d+)?", the saved weight 0 is "enc\/kernel"/], { model: b.model });
    // the optimizer's slots alone, the same
    const noWeightCheck = { ...s, weights: (await b.trainer.snapshot()).weights };
    expectRefused(() => b.trainer.loadSnapshot(noWeightCheck), StateError, STATE, ["variables[0]", /saved variable 0 is "enc\/kernel", the model's variable 0 is "dec\/kernel(_\d+)?"/], { model: b.model });
    for (const r of [a, b]) {
      r.trainer.optimizer.dispose();
      r.dispose();
    }
  });
});

describe("loadSnapshot refuses optimizer state that does not fit", () => {
  const o = (edit: (x: Json & { slots: Record<string, Json[]>; scalars: Json; variables: Json[]; hyper: Json }) => void) => snap((s) => edit(s.optimizer));
  const m1 = "accumulatedFirstMoment";
  const m2 = "accumulatedSecondMoment";
  const cases: [string, () => unknown, Culprit][] = [
    ["optimizer: null", () => snap((s) => void (raw(s)["optimizer"] = null)), ["(optimizer)", "got null"]],
    ["another optimizer kind (sgd)", () => o((x) => void (x["kind"] = "sgd")), "kind: saved optimizer state is for sgd, but the optimizer is adam"],
    ["another optimizer kind (momentum, with its slots)", () => o((x) => Object.assign(x, { kind: "momentum", slots: { accumulations: x.slots[m1] }, scalars: {} })), "saved optimizer state is for momentum, but the optimizer is adam"],
    ["no kind", () => o((x) => void delete x["kind"]), "saved optimizer state is for undefined"],
    ["iterations negative", () => o((x) => void (x["iterations"] = -1)), ["iterations: ", "got -1"]],
    ["iterations fractional", () => o((x) => void (x["iterations"] = 2.5)), ["iterations: ", "got 2.5"]],
    ["iterations NaN", () => o((x) => void (x["iterations"] = Number.NaN)), ["iterations: ", "got NaN"]],
    ["iterations a string", () => o((x) => void (x["iterations"] = "3")), ["iterations: ", 'got "3"']],
    ["a variable missing", () => o((x) => void x.variables.pop()), "saved optimizer state has 3 variables, the model has 4 trainable variables"],
    ["variables: null", () => o((x) => void (raw(x)["variables"] = null)), ["variables: must be an array", "got null"]],
    ["a variable reshaped", () => o((x) => void (x.variables[1]!["shape"] = [4])), ["variables[1]", "has shape [4] but dense_Dense", "has [8]"]],
    ["a variable of another layer (renamed)", () => o((x) => void (x.variables[2]!["name"] = "head/kernel")), ["variables[2]", 'saved variable 2 is "head/kernel"']],
    ["a slot family missing (Adam without second moments)", () => o((x) => void delete x.slots[m2]), [`slots.${m2}: is missing`, "the optimizer has stepped (iterations 3)"]],
    ["every slot family missing after steps", () => o((x) => void (x["slots"] = {})), [`slots.${m1}: is missing`, `slots.${m2}: is missing`]],
    ["a slot family for 2 of 4 variables", () => o((x) => void (x.slots[m1] = x.slots[m1]!.slice(0, 2))), `saved slot family ${m1} has 2 entries for 4 variables`],
    ["a slot family that is not an array", () => o((x) => void (x.slots[m1] = {} as unknown as Json[])), [`slots.${m1}: must be an array of slots`, "got an object"]],
    ["an unknown slot family", () => o((x) => void (x.slots["accumulations"] = x.slots[m1]!)), "slots.accumulations: is not a slot family of adam"],
    ["slots: null", () => o((x) => void (raw(x)["slots"] = null)), ["slots: must be a record", "got null"]],
    ["a slot that is null", () => o((x) => void (x.slots[m2]![1] = null as unknown as Json)), [`slots.${m2}[1]`, "got null"]],
    ["a slot of the wrong length", () => o((x) => void (x.slots[m1]![0]!["values"] = new Float32Array(31))), [`slots.${m1}[0]`, "31 values"]],
    ["a slot reshaped", () => o((x) => void (x.slots[m1]![1]!["shape"] = [2, 4])), [`slots.${m1}[1]`, "shape [2,4]"]],
    ["slot values as a plain array", () => o((x) => void (x.slots[m1]![3]!["values"] = [0, 0, 0])), [`slots.${m1}[3]`, "values an array of 3 (a Float32Array is needed; a JSON round trip"]],
    ["slots JSON round-tripped", () => o((x) => void (x["slots"] = JSON.parse(JSON.stringify(x.slots)))), [`slots.${m1}[0]`, `slots.${m2}[3]`, "values an object (a Float32Array is needed; a JSON round trip"]],
    ["the whole optimizer state JSON round-tripped", () => snap((s) => void (s["optimizer"] = JSON.parse(JSON.stringify(s.optimizer)))), [`slots.${m1}[0]`, "a JSON round trip"]],
    ["a slot of another variable", () => o((x) => void (x.slots[m1]![0]!["variable"] = "head/kernel")), [`slots.${m1}[0]`, 'belongs to "head/kernel"']],
    ["accBeta1 NaN", () => o((x) => void (x.scalars["accBeta1"] = Number.NaN)), ["scalars.accBeta1", "lacks a finite accBeta1, got NaN"]],
    ["accBeta2 Infinity", () => o((x) => void (x.scalars["accBeta2"] = Number.POSITIVE_INFINITY)), ["scalars.accBeta2", "got Infinity"]],
    ["accBeta1 missing", () => o((x) => void delete x.scalars["accBeta1"]), ["scalars.accBeta1", "got undefined"]],
    ["accBeta1 a string", () => o((x) => void (x.scalars["accBeta1"] = "0.9")), ["scalars.accBeta1", 'got "0.9"']],
    ["accBeta2 above 1", () => o((x) => void (x.scalars["accBeta2"] = 1.5)), ["scalars.accBeta2", "a product of betas in [0, 1), got 1.5"]],
    ["accBeta1 negative", () => o((x) => void (x.scalars["accBeta1"] = -0.1)), ["scalars.accBeta1", "got -0.1"]],
    ["an unknown scalar", () => o((x) => void (x.scalars["iteration"] = 3)), "scalars.iteration: is not a scalar of adam"],
    ["scalars: null", () => o((x) => void (raw(x)["scalars"] = null)), ["scalars: must be a record of numbers", "got null"]],
    ["learning rate negative", () => o((x) => void (x.hyper["learningRate"] = -0.01)), ["hyper.learningRate", "must be a finite number >= 0, got -0.01"]],
    ["learning rate NaN", () => o((x) => void (x.hyper["learningRate"] = Number.NaN)), ["hyper.learningRate", "got NaN"]],
    ["learning rate Infinity", () => o((x) => void (x.hyper["learningRate"] = Number.POSITIVE_INFINITY)), ["hyper.learningRate", "got Infinity"]],
    ["learning rate a string", () => o((x) => void (x.hyper["learningRate"] = "0.01")), ["hyper.learningRate", 'got "0.01"']],
    ["beta1 of 1", () => o((x) => void (x.hyper["momentum"] = 1)), ["hyper.momentum", "saved beta1 1 does not fit", "beta1 must be in [0, 1)"]],
    ["beta1 above 1", () => o((x) => void (x.hyper["momentum"] = 1.5)), ["hyper.momentum", "saved beta1 1.5"]],
    ["beta1 negative", () => o((x) => void (x.hyper["momentum"] = -0.5)), ["hyper.momentum", "saved beta1 -0.5"]],
    ["beta1 NaN", () => o((x) => void (x.hyper["momentum"] = Number.NaN)), ["hyper.momentum", "saved beta1 NaN"]],
    ["hyper a number", () => o((x) => void (raw(x)["hyper"] = 0.01)), ["hyper: ", "got 0.01"]],
    ["a bad trainer part (all-zero RNG) inside a good snapshot", () => snap((s) => void ((s.trainer as Json)["rng"] = [0, 0, 0, 0])), "rng: the all-zero xoshiro state is invalid"],
  ];
  it.each(cases)("%s", (_label, s, culprit) => {
    expectRefused(() => dst.trainer.loadSnapshot(s() as RunSnapshot), StateError, STATE, culprit, { model: dst.model });
  });

  it("every problem is listed in one error; after a refused snapshot the trainer trains on as before, and takes the good one", async () => {
    const bad = snap((s) => {
      s.weights[0]!["values"] = new Float32Array(1);
      s.optimizer.scalars["accBeta1"] = Number.NaN;
    });
    expectRefused(() => dst.trainer.loadSnapshot(bad), StateError, STATE, ["weights[0]"], { model: dst.model });
    const opt = expectRefused(() => dst.trainer.loadSnapshot({ ...bad, weights: good.weights }), StateError, STATE, ["scalars.accBeta1"], { model: dst.model });
    expect(opt.issues.map((i) => i.path)).toEqual(["scalars.accBeta1"]);
    const two = expectRefused(() => dst.trainer.loadSnapshot(snap((s) => Object.assign(s.optimizer, { iterations: -1, hyper: { learningRate: Number.NaN } }))), StateError, STATE, ["iterations", "hyper.learningRate"], { model: dst.model });
    expect(two.issues).toHaveLength(2);
    const before = weightsOf(dst.model);
    await dst.trainer.fit({ epochs: 1, train: dst.train() });
    expect(weightsOf(dst.model)).not.toEqual(before); // it trained from where it was
    dst.trainer.loadSnapshot(structuredClone(good));
    await dst.trainer.fit({ epochs: 1, train: dst.train() }); // the snapshot's epoch 1 is done: nothing to train
    expect(weightsOf(dst.model)).toEqual(weightsOf(src.model));
  });
});

describe("state codec: values a checkpoint cannot store", () => {
  class Stats {
    mean = 0;
  }
  const cycle = () => {
    const o: Json = { a: { b: {} } };
    ((o["a"] as Json)["b"] as Json)["back"] = o;
    return o;
  };
  const deep = () => {
    let v: unknown = 1;
    for (let i = 0; i < 300; i++) v = { v };
    return v;
  };
  const cases: [string, () => unknown, Culprit][] = [
    ["a Map", () => ({ best: new Map([["a", 1]]) }), ["$.best", "a Map cannot be stored"]],
    ["a Set", () => ({ seen: new Set([1]) }), ["$.seen", "a Set cannot be stored"]],
    ["a Float64Array", () => ({ best: { weights: [new Float32Array(1), new Float32Array(1), new Float64Array(2)] } }), ["$.best.weights[2]", "a Float64Array cannot be stored"]],
    ["an Int16Array", () => ({ a: new Int16Array(1) }), ["$.a", "a Int16Array cannot be stored"]],
    ["a Uint8ClampedArray", () => ({ a: new Uint8ClampedArray(1) }), ["$.a", "a Uint8ClampedArray cannot be stored"]],
    ["a BigInt64Array", () => ({ a: new BigInt64Array(1) }), ["$.a", "a BigInt64Array cannot be stored"]],
    ["a DataView", () => ({ a: new DataView(new ArrayBuffer(4)) }), ["$.a", "a DataView cannot be stored"]],
    ["an ArrayBuffer", () => ({ a: new ArrayBuffer(4) }), ["$.a", "a ArrayBuffer cannot be stored"]],
    ["a Node Buffer (a Uint8Array subclass)", () => ({ a: Buffer.from([1]) }), ["$.a", "a Buffer cannot be stored"]],
    ["a function", () => ({ schedule: () => 1 }), ["$.schedule", "a function cannot be stored"]],
    ["a class instance", () => ({ stats: new Stats() }), ["$.stats", "a Stats cannot be stored"]],
    ["a Date", () => ({ at: new Date(0) }), ["$.at", "a Date cannot be stored"]],
    ["a RegExp", () => ({ re: /x/ }), ["$.re", "a RegExp cannot be stored"]],
    ["an Error", () => ({ e: new Error("x") }), ["$.e", "a Error cannot be stored"]],
    ["a Promise", () => ({ p: Promise.resolve(1) }), ["$.p", "a Promise cannot be stored"]],
    ["a bigint", () => ({ n: 10n }), ["$.n", "a bigint cannot be stored"]],
    ["a symbol", () => ({ s: Symbol("s") }), ["$.s", "a symbol cannot be stored"]],
    ["a symbol key", () => ({ [Symbol("k")]: 1 }), ["$", "symbol keys cannot be stored"]],
    ["a cycle", () => cycle(), ["$.a.b.back", "a cycle"]],
    ["an array that contains itself", () => { const a: unknown[] = [1]; a.push(a); return { a }; }, ["$.a[1]", "a cycle"]],
    ["undefined in an array", () => ({ a: [1, undefined] }), ["$.a[1]", "undefined cannot be stored here"]],
    ["undefined at the top", () => undefined, ["$", "undefined cannot be stored"]],
    ["a hole in an array", () => ({ a: [1, , 3] }), ["$.a[1]", "a hole in an array"]],
    ["an odd key", () => ({ "a b": { c: new Map() } }), ['$["a b"].c', "a Map"]],
    ["nesting deeper than 256 levels", () => deep(), "nested deeper than 256 levels"],
    ["several at once", () => ({ m: new Map(), f: () => 1, x: [new Float64Array(1)] }), ["$.m", "$.f", "$.x[0]"]],
  ];
  it.each(cases)("encodeState: %s", (_label, value, culprit) => {
    expectRefused(() => encodeState(value()), StateError, STATE, culprit, { model: dst.model });
  });
  // a finished run whose one stateful plugin returns whatever a case puts in `held`
  let held: unknown = {};
  const keeper: Callback = { name: "Keeper", stateKey: "keeper", stateDict: () => held as StateDict, loadStateDict: () => {} };
  let kept: Run;
  beforeAll(async () => {
    kept = smallRun({ callbacks: [keeper] });
    await kept.trainer.fit({ epochs: 1, train: kept.train() });
  });
  afterAll(() => {
    kept.trainer.optimizer.dispose();
    kept.dispose();
  });
  it.each(cases.filter(([label]) => label !== "undefined at the top"))("at the snapshot, naming the plugin's stateKey: %s", async (_label, value, culprit) => {
    held = value();
    expectRefused(() => kept.trainer.stateDict(), StateError, STATE, ['plugin "Keeper" (stateKey "keeper")', ...(Array.isArray(culprit) ? culprit : [culprit])], { model: kept.model });
    await expectRejected(() => kept.trainer.snapshot(), StateError, STATE, ['plugin "Keeper" (stateKey "keeper")'], { model: kept.model });
  });
  it.each([null, [1], 3, new Map(), "x"])("a plugin's stateDict() that is not an object: %s", (v) => {
    held = v;
    expectRefused(() => kept.trainer.stateDict(), StateError, STATE, ['plugin "Keeper" (stateKey "keeper")', "must return a plain object"], { model: kept.model });
  });
});

describe("state codec: forged stored states", () => {
  const arrays = () => new Map([["t0", new Float32Array([1, 2])]]);
  const cases: [string, unknown, Culprit][] = [
    ["an unknown $float", { x: { $float: "nan" } }, ["$.x", '{"$float": "nan"} is not NaN, Infinity, -Infinity or -0']],
    ["a $float that is a number", { x: { $float: 1 } }, ["$.x", '{"$float": 1} is not NaN']],
    ["a $tensor that is a number", { x: { $tensor: 0 } }, ["$.x", "refers to array 0"]],
    ["a $tensor not stored", { x: { $tensor: "t9" } }, ["$.x", 'refers to array "t9", which is not among the stored arrays']],
    ["a $tensor named __proto__", { x: { $tensor: "__proto__" } }, ["$.x", 'refers to array "__proto__"']],
    ["an array referenced twice", { x: { $tensor: "t0" }, y: [{ $tensor: "t0" }] }, ["$.y[0]", 'array "t0" is referenced twice']],
    ["a stored array not referenced", { x: 1 }, ['stored array "t0" is not referenced']],
    ["$object holding null", { x: { $object: null }, t: { $tensor: "t0" } }, ["$.x", '{"$object": ...} must hold an object, got null']],
    ["$object holding an array", { x: { $object: [1] }, t: { $tensor: "t0" } }, ["$.x", "must hold an object, got an array of 1"]],
    ["a raw NaN (not JSON)", { x: Number.NaN, t: { $tensor: "t0" } }, ["$.x", "NaN is not JSON"]],
    ["a raw typed array (not JSON)", { x: new Float32Array(1), t: { $tensor: "t0" } }, ["$.x", "a Float32Array is not JSON"]],
    ["a raw function (not JSON)", { x: () => 1, t: { $tensor: "t0" } }, ["$.x", "function is not JSON"]],
    ["a tag inside a forged __proto__ key", JSON.parse('{"__proto__": {"$float": "x"}, "t": {"$tensor": "t0"}}'), ["$.__proto__: ", '{"$float": "x"} is not NaN']],
  ];
  it.each(cases)("decodeState: %s", (_label, json, culprit) => {
    expectRefused(() => decodeState(json, arrays()), StateError, STATE, culprit, { model: dst.model });
  });
});

describe("state codec: what must survive", () => {
  it.each([
    ["NaN, Infinity, -Infinity", { a: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY] }],
    ["-0 (and 0 stays 0)", { neg: -0, pos: 0 }],
    ["tag look-alikes", { a: { $float: "NaN" }, b: { $tensor: "t0" }, c: { $object: { $float: 1 } }, d: { $tensor: 1, other: 2 } }],
    ["__proto__ keys", JSON.parse('{"__proto__": {"polluted": 1}, "x": {"__proto__": [1]}}') as StateDict],
    ["typed arrays of every kind, empty ones too", { f: new Float32Array([1, Number.NaN, -0]), i: new Int32Array([-(2 ** 31), 2 ** 31 - 1]), u: new Uint8Array([0, 255]), e: new Float32Array(0) }],
  ] as [string, StateDict][])("%s", (_label, state) => {
    const back = roundTripState(state);
    expect(back).toEqual(state);
    expect(JSON.stringify(Object.entries(back), (_k, v: unknown) => (Object.is(v, -0) ? "-0" : v))).toBe(JSON.stringify(Object.entries(state), (_k, v: unknown) => (Object.is(v, -0) ? "-0" : v)));
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(({} as Json)["polluted"]).toBeUndefined();
  });
});
