import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import {
  DuplicateStateKeyError,
  StateError,
  Trainer,
  captureWeights,
  checkOptimizerStateDict,
  checkWeights,
  comparableName,
  decodeState,
  encodeState,
  historySeries,
  loadOptimizerStateDict,
  optimizerStateDict,
  parseTrainerStateDict,
  seeded,
  silentLogger,
  type Callback,
  type OptimizerStateDict,
  type StateDict,
  type StateValue,
} from "./index.js";
import { expectNoLeaks, roundTripState, tinyFixture } from "./testing/index.js";

class Counter implements Callback {
  count = 0;
  constructor(
    readonly name: string,
    readonly stateKey: string,
  ) {}
  afterBatch(): void {
    this.count++;
  }
  stateDict(): StateDict {
    return { count: this.count };
  }
  loadStateDict(s: StateDict): void {
    this.count = s["count"] as number;
  }
}

describe("state contract", () => {
  it("duplicate stateKeys are rejected when the run starts, naming both plugins", async () => {
    const fx = tinyFixture({ samples: 8 });
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [new Counter("a", "counter"), new Counter("b", "counter")] });
    await expect(t.fit({ epochs: 1, train: fx.data(4) })).rejects.toThrow(DuplicateStateKeyError);
    await expect(t.fit({ epochs: 1, train: fx.data(4) })).rejects.toThrow(/"counter" is used by more than one plugin: a, b/);
    fx.dispose();
  });

  it("stateDict collects every stateful plugin; loadStateDict restores them at the next fit", async () => {
    const fx = tinyFixture({ samples: 8 });
    const c1 = new Counter("c", "counter");
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], logger: silentLogger, callbacks: [c1] });
    await t.fit({ epochs: 2, train: fx.data(4) });
    const saved = t.stateDict();
    expect(saved.plugins).toEqual({ counter: { count: 4 } });
    expect(saved.train.cursor).toEqual({ epoch: 2, batchIndex: 0 });
    expect(saved.train.history.map((h) => Object.keys(h.logs).sort())).toEqual([["acc", "loss", "lr"], ["acc", "loss", "lr"]]);

    const c2 = new Counter("c", "counter");
    const t2 = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [c2] });
    t2.loadStateDict(saved);
    const r = await t2.fit({ epochs: 3, train: fx.data(4) });
    expect(c2.count).toBe(6); // 4 restored + 2 batches of the third epoch
    expect(r.state.history.map((h) => h.epoch)).toEqual([0, 1, 2]);
    expect(historySeries(r.state, "loss")).toHaveLength(3);
    fx.dispose();
  });

  for (const [name, make] of [
    ["momentum", () => tf.train.momentum(0.1, 0.9)],
    ["adam", () => tf.train.adam(0.01)],
    ["rmsprop", () => tf.train.rmsprop(0.01, 0.9, 0.5, 1e-7, true)],
    ["adagrad", () => tf.train.adagrad(0.1)],
    ["adadelta", () => tf.train.adadelta(1)],
    ["adamax", () => tf.train.adamax(0.01)],
  ] as const) {
    it(`optimizer slots of ${name} export with their variable order and restore exactly into a new optimizer`, async () => {
      const fx = tinyFixture({ samples: 16 });
      const vars = fx.model.trainableWeights.map((w) => w.read() as tf.Variable);
      const opt = make();
      await new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", logger: silentLogger }).fit({ epochs: 1, train: fx.data(4) });
      const saved = await optimizerStateDict(opt, vars);
      expect(saved.variables.map((v) => v.name)).toEqual(vars.map((v) => v.name));
      for (const family of Object.values(saved.slots)) expect(family.map((s) => s.shape)).toEqual(vars.map((v) => v.shape));
      const copy = make();
      loadOptimizerStateDict(copy, saved, vars);
      expect(await optimizerStateDict(copy, vars)).toEqual(saved);
      // restoring repeatedly does not leak
      await expectNoLeaks(() => loadOptimizerStateDict(copy, saved, vars));
      fx.dispose();
    });
  }

  it("restoring optimizer state into a model with other shapes fails with a clear error", async () => {
    const a = tinyFixture({ samples: 8 });
    const b = tinyFixture({ samples: 8, hidden: 5 });
    const opt = tf.train.adam(0.01);
    await new Trainer({ model: a.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", logger: silentLogger }).fit({ epochs: 1, train: a.data(4) });
    const saved = await optimizerStateDict(opt, a.model.trainableWeights.map((w) => w.read() as tf.Variable));
    expect(() => loadOptimizerStateDict(tf.train.adam(0.01), saved, b.model.trainableWeights.map((w) => w.read() as tf.Variable))).toThrow(/saved variable 0 .* has shape \[4,8\] but .* has \[4,5\]/);
    a.dispose();
    b.dispose();
  });
});

// ---- hardening of loaded state: every problem at once, names, atomic optimizer loads, the state codec ----

const vars = (m: tfl.LayersModel) => m.trainableWeights.map((w) => w.read() as tf.Variable);
const fitted = async (model: tfl.LayersModel, optimizer: tf.Optimizer, fx: ReturnType<typeof tinyFixture>) =>
  new Trainer({ model, optimizer, loss: "sparseCategoricalCrossentropy", logger: silentLogger }).fit({ epochs: 1, train: fx.data(4) });
/** Two same-shape dense layers with user names, in the order given, then a classifier. */
const encDec = (order: readonly string[]) =>
  seeded(4, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [4], units: 4, name: order[0]! }));
    m.add(tfl.layers.dense({ units: 4, name: order[1]! }));
    m.add(tfl.layers.dense({ units: 3, activation: "softmax" }));
    return m;
  });
const caught = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
};

describe("StateError lists every problem", () => {
  it("parseTrainerStateDict reports all bad keys at once, each with its path", () => {
    const err = caught(() => parseTrainerStateDict({ train: { epoch: -1, step: 0.5, globalBatch: 0, batchIndex: 0, cursor: { epoch: 0, batchIndex: Number.NaN }, history: [], extra: 1 }, rng: [1, 2, 3], plugins: [] })) as StateError;
    expect(err).toBeInstanceOf(StateError);
    expect(err.code).toBe("STATE_MISMATCH");
    expect(err.issues.map((i) => i.path).sort()).toEqual(["plugins", "rng", "train.cursor.batchIndex", "train.epoch", "train.extra", "train.step"]);
    for (const i of err.issues) expect(err.message).toContain(`${i.path}: ${i.message}`);
  });

  it("a StateError made from a message alone has one issue; one issue stays on one line", () => {
    expect(new StateError("no").issues).toEqual([{ path: "", message: "no" }]);
    expect(new StateError("bad", [{ path: "a.b", message: "is wrong" }]).message).toBe("bad: a.b: is wrong");
    expect(new StateError("bad", [{ path: "a", message: "x" }, { path: "b", message: "y" }]).message).toBe("bad:\n  - a: x\n  - b: y");
  });

  it("checkWeights and checkOptimizerStateDict list every weight and slot that does not fit", async () => {
    const fx = tinyFixture({ samples: 8 });
    const opt = tf.train.adam(0.01);
    await fitted(fx.model, opt, fx);
    const w = await captureWeights(fx.model);
    const bad = w.map((x, i) => (i === 0 ? { ...x, values: x.values.slice(1) } : i === 3 ? { ...x, dtype: "int32" as const } : x));
    const werr = caught(() => checkWeights(fx.model, bad)) as StateError;
    expect(werr.issues.map((i) => i.path)).toEqual(["weights[0]", "weights[3]"]);
    const o = await optimizerStateDict(opt, vars(fx.model));
    const m = o.slots["accumulatedFirstMoment"]!;
    const badOpt = { ...o, iterations: -1, slots: { ...o.slots, accumulatedFirstMoment: [m[0]!, { ...m[1]!, values: new Float32Array(1) }, ...m.slice(2)] }, scalars: { accBeta1: Number.NaN, accBeta2: 0.5 } };
    const oerr = caught(() => checkOptimizerStateDict(opt, badOpt, vars(fx.model))) as StateError;
    expect(oerr.issues.map((i) => i.path)).toEqual(["iterations", "slots.accumulatedFirstMoment[1]", "scalars.accBeta1"]);
    opt.dispose();
    fx.dispose();
  });
});

describe("weights and optimizer slots are matched by name as well as position and shape", () => {
  it("comparableName drops the counters tfjs adds and keeps the names a user gave", () => {
    expect(comparableName("dense_Dense1/kernel")).toBe(comparableName("dense_Dense13/kernel"));
    expect(comparableName("enc/kernel")).toBe(comparableName("enc/kernel_1"));
    expect(comparableName("sequential_1/conv2d_Conv2D1/bias")).toBe(comparableName("sequential_4/conv2d_Conv2D12/bias_2"));
    expect(comparableName("enc/kernel")).not.toBe(comparableName("dec/kernel"));
    expect(comparableName("conv2d_Conv2D1/kernel")).not.toBe(comparableName("conv3d_Conv3D1/kernel"));
  });

  it("a snapshot of [enc, dec] loaded into a model with [dec, enc] (same shapes) is refused, naming both and the position", async () => {
    const fx = tinyFixture({ samples: 8 });
    const a = encDec(["enc", "dec"]);
    const optA = tf.train.adam(0.01);
    const ta = new Trainer({ model: a, optimizer: optA, loss: "sparseCategoricalCrossentropy", logger: silentLogger });
    await ta.fit({ epochs: 1, train: fx.data(4) });
    const snap = structuredClone(await ta.snapshot());
    const b = encDec(["dec", "enc"]);
    const optB = tf.train.adam(0.01);
    const before = tf.memory().numTensors;
    const werr = caught(() => checkWeights(b, snap.weights)) as StateError;
    expect(werr).toBeInstanceOf(StateError);
    expect(werr.message).toMatch(/weight 0 of the model is "dec\/kernel(_\d+)?", the saved weight 0 is "enc\/kernel"/);
    expect(werr.issues.map((i) => i.path)).toEqual(["weights[0]", "weights[1]", "weights[2]", "weights[3]"]);
    const oerr = caught(() => loadOptimizerStateDict(optB, snap.optimizer, vars(b))) as StateError;
    expect(oerr).toBeInstanceOf(StateError);
    expect(oerr.message).toMatch(/saved variable 0 is "enc\/kernel", the model's variable 0 is "dec\/kernel(_\d+)?"/);
    expect(oerr.message).toMatch(/saved slot accumulatedFirstMoment\[0\] belongs to "enc\/kernel"/);
    await expect(new Trainer({ model: b, optimizer: optB, loss: "sparseCategoricalCrossentropy", logger: silentLogger }).fit({ epochs: 1, train: fx.data(4), resumeFrom: snap })).rejects.toThrow(/weight 0 of the model is "dec\/kernel(_\d+)?", the saved weight 0 is "enc\/kernel"/);
    expect(tf.memory().numTensors).toBe(before);
    for (const m of [a, b]) m.dispose();
    fx.dispose();
  });

  it("the same architecture rebuilt in this process (new auto names, _1 suffixes on user names) resumes", async () => {
    const fx = tinyFixture({ samples: 8 });
    for (const build of [() => tinyFixture({ samples: 8 }).model, () => encDec(["enc", "dec"])]) {
      const a = build();
      const ta = new Trainer({ model: a, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", logger: silentLogger });
      await ta.fit({ epochs: 1, train: fx.data(4) });
      const snap = structuredClone(await ta.snapshot());
      const b = build();
      expect(b.weights.map((w) => w.name)).not.toEqual(a.weights.map((w) => w.name)); // the names did change
      const tb = new Trainer({ model: b, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", logger: silentLogger });
      tb.loadSnapshot(snap);
      await tb.fit({ epochs: 1, train: fx.data(4) });
    }
    fx.dispose();
  });
});

describe("loading optimizer state: everything checked first, then swapped", () => {
  const refusedLoads: [string, (s: OptimizerStateDict) => unknown, RegExp][] = [
    ["a JSON round trip (typed arrays became objects)", (s) => JSON.parse(JSON.stringify(s)), /saved slot accumulatedFirstMoment\[0\] .*values an object \(a Float32Array is needed; a JSON round trip/],
    ["a truncated slot family", (s) => ({ ...s, slots: { ...s.slots, accumulatedSecondMoment: s.slots["accumulatedSecondMoment"]!.slice(0, 2) } }), /saved slot family accumulatedSecondMoment has 2 entries for 4 variables/],
    ["Adam without its second moments", (s) => ({ ...s, slots: { accumulatedFirstMoment: s.slots["accumulatedFirstMoment"] } }), /slots.accumulatedSecondMoment: is missing: the optimizer has stepped/],
    ["truncated values", (s) => ({ ...s, slots: { ...s.slots, accumulatedFirstMoment: s.slots["accumulatedFirstMoment"]!.map((x) => ({ ...x, values: x.values.subarray(1) })) } }), /accumulatedFirstMoment\[3\]/],
  ];
  it.each(refusedLoads)("%s: a StateError; the optimizer keeps its slots, takes another step, and no tensor leaks", async (_label, corrupt, message) => {
    const fx = tinyFixture({ samples: 8 });
    const opt = tf.train.adam(0.01);
    const t = new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", logger: silentLogger });
    await t.fit({ epochs: 1, train: fx.data(4) });
    const saved = await optimizerStateDict(opt, vars(fx.model));
    const before = tf.memory().numTensors;
    const err = caught(() => loadOptimizerStateDict(opt, corrupt(saved) as OptimizerStateDict, vars(fx.model)));
    expect(err).toBeInstanceOf(StateError);
    expect((err as Error).message).toMatch(message);
    expect(tf.memory().numTensors).toBe(before);
    expect(await optimizerStateDict(opt, vars(fx.model))).toEqual(saved);
    await t.fit({ epochs: 1, train: fx.data(4) }); // usable: its slot variables were not disposed
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    fx.dispose();
  });

  it("if building the new slots fails half-way, the optimizer keeps its old slots and nothing leaks", async () => {
    const fx = tinyFixture({ samples: 8 });
    const opt = tf.train.adam(0.01);
    await fitted(fx.model, opt, fx);
    const saved = await optimizerStateDict(opt, vars(fx.model));
    const other = { ...saved, slots: Object.fromEntries(Object.entries(saved.slots).map(([k, list]) => [k, list.map((s) => ({ ...s, values: s.values.map((v) => v + 1) }))])) };
    const engine = tf.engine() as unknown as { makeVariable: (...a: unknown[]) => tf.Variable };
    const original = engine.makeVariable;
    let made = 0;
    engine.makeVariable = function (this: unknown, ...a: unknown[]) {
      if (++made === 5) throw new Error("out of memory (injected)");
      return original.apply(this, a);
    };
    const before = tf.memory().numTensors;
    try {
      expect(() => loadOptimizerStateDict(opt, other, vars(fx.model))).toThrow("out of memory (injected)");
    } finally {
      engine.makeVariable = original;
    }
    expect(made).toBe(5);
    expect(tf.memory().numTensors).toBe(before);
    expect(await optimizerStateDict(opt, vars(fx.model))).toEqual(saved);
    await fitted(fx.model, opt, fx);
    opt.dispose();
    fx.dispose();
  });

  it("a state saved before the first step (no slots) loads into an optimizer that has stepped, disposing its slots", async () => {
    const fx = tinyFixture({ samples: 8 });
    const fresh = await optimizerStateDict(tf.train.adam(0.01), vars(fx.model));
    const opt = tf.train.adam(0.01);
    await fitted(fx.model, opt, fx);
    const before = tf.memory().numTensors;
    loadOptimizerStateDict(opt, fresh, vars(fx.model));
    expect(tf.memory().numTensors).toBe(before - 2 * vars(fx.model).length);
    expect(await optimizerStateDict(opt, vars(fx.model))).toEqual(fresh);
    opt.dispose();
    fx.dispose();
  });
});

describe("state codec", () => {
  it("round-trips JSON values, typed arrays (not copied when encoding), NaN/Infinity/-0, __proto__ keys and tag look-alikes", () => {
    const f = new Float32Array([1.5, Number.NaN, -0]);
    const value = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, StateValue>;
    Object.assign(value, { best: { weights: [f, new Int32Array([-7, 2 ** 31 - 1]), new Uint8Array([0, 255])], score: Number.NEGATIVE_INFINITY }, nums: [Number.NaN, Number.POSITIVE_INFINITY, -0, 0, -1e-300], tag: { $tensor: "t0" }, float: { $float: "NaN" }, obj: { $object: 1 }, s: "x", b: false, n: null, e: [] });
    const { json, arrays } = encodeState(value);
    expect(arrays.get("t0")).toBe(f);
    const back = decodeState(JSON.parse(JSON.stringify(json)), arrays) as Record<string, StateValue>;
    expect(back).toEqual(value);
    expect(Object.is((back["nums"] as number[])[2], -0)).toBe(true);
    expect(Object.is((back["nums"] as number[])[3], 0)).toBe(true);
    expect(Object.prototype.hasOwnProperty.call(back, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(roundTripState(value as StateDict)).toEqual(value);
    expect((roundTripState({ f }) as { f: Float32Array }).f).not.toBe(f); // what a checkpoint gives back: a copy
  });

  it("refuses what a checkpoint cannot store, every problem at once, by path", () => {
    class Stats {
      mean = 1;
    }
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic["self"] = cyclic;
    const err = caught(() => encodeState({ best: { weights: [new Float32Array(1), new Float32Array(1), new Float64Array(2)] }, m: new Map(), f: () => 1, c: new Stats(), big: 1n, cyc: cyclic, d: new Date(0), u: [undefined], sym: Symbol("s"), buf: Buffer.from([1]) })) as StateError;
    expect(err).toBeInstanceOf(StateError);
    expect(err.issues.map((i) => i.path)).toEqual(["$.best.weights[2]", "$.m", "$.f", "$.c", "$.big", "$.cyc.self", "$.d", "$.u[0]", "$.sym", "$.buf"]);
    expect(err.message).toMatch(/\$\.best\.weights\[2\]: a Float64Array cannot be stored/);
    expect(err.message).toMatch(/\$\.c: a Stats cannot be stored/);
    expect(err.message).toMatch(/\$\.cyc\.self: a cycle/);
    // the same array twice (not a cycle) is stored twice
    const shared = new Int32Array([1]);
    expect(encodeState({ a: shared, b: [shared] }).arrays.size).toBe(2);
    // undefined properties are left out, as JSON.stringify does
    expect(encodeState({ a: undefined, b: 1 }).json).toEqual({ b: 1 });
  });

  it("refuses a stored state whose tags or arrays do not add up", () => {
    const arrays = new Map([["t0", new Float32Array(1)]]);
    const bad: [unknown, RegExp][] = [
      [{ x: { $float: "1e999" } }, /\$\.x: \{"\$float": "1e999"\} is not NaN/],
      [{ x: { $tensor: "t9" } }, /\$\.x: refers to array "t9"/],
      [[{ $tensor: "t0" }, { $tensor: "t0" }], /\$\[1\]: array "t0" is referenced twice/],
      [{ x: { $object: [1] } }, /\$\.x: \{"\$object": \.\.\.\} must hold an object/],
      [{ x: 1 }, /stored array "t0" is not referenced/],
      [{ x: Number.NaN, y: { $tensor: "t0" } }, /\$\.x: NaN is not JSON/],
      [{ x: new Float32Array(1), y: { $tensor: "t0" } }, /\$\.x: a Float32Array is not JSON/],
    ];
    for (const [json, message] of bad) expect(() => decodeState(json, arrays), message.source).toThrow(message);
  });

  it("a plugin whose state cannot be stored fails at the snapshot, naming its stateKey and the path", async () => {
    const fx = tinyFixture({ samples: 8 });
    const plugin: Callback = { name: "Keeper", stateKey: "keeper", stateDict: () => ({ best: { weights: [new Float32Array(1), new Float64Array(1)] } }) as unknown as StateDict, loadStateDict: () => {} };
    const saver: Callback = { name: "Saver", epochCheckpoint: async (ctx) => void (await ctx.snapshot()) };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [plugin, saver] });
    const err = await t.fit({ epochs: 1, train: fx.data(4) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as Error).message).toBe('plugin "Keeper" (stateKey "keeper"): its stateDict() holds values a checkpoint cannot store: $.best.weights[1]: a Float64Array cannot be stored (state holds Float32Array, Int32Array and Uint8Array)');
    expect(() => t.stateDict()).toThrow(/stateKey "keeper"/);
    fx.dispose();
  });

  it("the check at the snapshot does not copy arrays: a 1M-element state adds well under a millisecond", async () => {
    const fx = tinyFixture({ samples: 8 });
    const big = new Float32Array(1_000_000).fill(0.5);
    const plugin: Callback = { name: "Big", stateKey: "big", stateDict: () => ({ values: big, count: 3 }), loadStateDict: () => {} };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [plugin] });
    await t.fit({ epochs: 1, train: fx.data(4) });
    expect((t.stateDict().plugins["big"] as { values: Float32Array }).values).toBe(big); // the plugin's own array, not a copy
    const runs = 200;
    const start = performance.now();
    for (let i = 0; i < runs; i++) t.stateDict();
    const perStateDict = (performance.now() - start) / runs;
    expect(perStateDict).toBeLessThan(1);
    fx.dispose();
  });
});
