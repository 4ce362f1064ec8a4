import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER, StateError, Trainer, silentLogger, type Callback, type HookContext, type RunSnapshot, type StateDict } from "./index.js";
import { expectNoLeaks, tinyFixture, type TinyFixture } from "./testing/index.js";

/**
 * A stateful plugin that changes its state in afterBatch and afterEpoch (as monitors and counters
 * do) and whose state changes the training (it scales the learning rate), so a snapshot taken
 * before it was done would resume differently.
 */
class Counter implements Callback {
  readonly stateKey: string;
  batches = 0;
  epochs = 0;
  constructor(
    readonly name: string,
    readonly order: number,
  ) {
    this.stateKey = name;
  }
  beforeBatch(ctx: HookContext): void {
    ctx.hyper.learningRate = 0.05 * (1 + ((this.batches + 3 * this.epochs) % 5) / 10);
  }
  afterBatch(): void {
    this.batches++;
  }
  afterEpoch(): void {
    this.epochs++;
  }
  stateDict(): StateDict {
    return { batches: this.batches, epochs: this.epochs };
  }
  loadStateDict(s: StateDict): void {
    this.batches = s["batches"] as number;
    this.epochs = s["epochs"] as number;
  }
}

const ORDERS = [ORDER.FIRST, ORDER.SCHEDULE, ORDER.DEFAULT, ORDER.MONITOR, ORDER.CHECKPOINT, ORDER.LAST];
const counters = () => ORDERS.map((o, i) => new Counter(`Counter${i}`, o));
const weightsOf = (fx: TinyFixture) => fx.model.getWeights().map((w) => Array.from(w.dataSync()));
const trainer = (fx: TinyFixture, callbacks: Callback[]) =>
  new Trainer({ model: fx.model, optimizer: tf.train.adam(0.05), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], seed: 7, callbacks, logger: silentLogger });
const fixture = () => tinyFixture({ samples: 40, withBatchNormAndDropout: true }); // 5 batches of 8

/** Saves at one safe point: the `at`-th batchCheckpoint, or the end of epoch `at`. */
function saver(kind: "batch" | "epoch", at: number, order: number, into: { snap?: RunSnapshot }): Callback {
  const take = async (ctx: HookContext) => void (into.snap = structuredClone(await ctx.snapshot()));
  return kind === "batch"
    ? { name: "Saver", order, batchCheckpoint: async (ctx) => void (ctx.state.globalBatch === at && (await take(ctx))) }
    : { name: "Saver", order, epochCheckpoint: async (ctx) => void (ctx.state.epoch === at && (await take(ctx))) };
}

describe("snapshots at the safe points and fit({ resumeFrom })", () => {
  it.each([
    ["batch", 7, "mid-epoch (after the 7th batch: epoch 1, batch 2)"],
    ["batch", 10, "after the last batch of epoch 1, before its validation"],
    ["epoch", 1, "at the end of epoch 1"],
  ] as const)("at a %s safe point (%s): whatever the saver's order, the resumed run is bit-identical (weights, history, plugin counters)", async (kind: "batch" | "epoch", at: number, _label: string) => {
    const full = fixture();
    const fullCounters = counters();
    const rFull = await trainer(full, fullCounters).fit({ epochs: 3, train: full.data(8), validation: full.data(40) });

    for (const order of [ORDER.FIRST, ORDER.MONITOR, ORDER.LAST]) {
      const a = fixture();
      const into: { snap?: RunSnapshot } = {};
      await trainer(a, [...counters(), saver(kind, at, order, into)]).fit({ epochs: 3, train: a.data(8), validation: a.data(40) });
      const b = fixture();
      b.model.setWeights(b.model.getWeights().map((w) => tf.zerosLike(w))); // the snapshot must overwrite these
      const bCounters = counters();
      const rB = await trainer(b, bCounters).fit({ epochs: 3, train: b.data(8), validation: b.data(40), resumeFrom: into.snap! });
      expect(weightsOf(b), `saver order ${order}`).toEqual(weightsOf(full));
      expect(rB.state.history, `saver order ${order}`).toEqual(rFull.state.history); // the resumed epoch's means too
      expect(bCounters.map((c) => c.stateDict())).toEqual(fullCounters.map((c) => c.stateDict()));
      a.dispose();
      b.dispose();
    }
    full.dispose();
  });

  it("negative control: a snapshot taken before every plugin is done (afterEpoch of a saver ordered last, which runs first) resumes differently", async () => {
    const full = fixture();
    const fullCounters = counters();
    await trainer(full, fullCounters).fit({ epochs: 3, train: full.data(8) });
    const a = fixture();
    let snap: RunSnapshot | undefined;
    const ta: Trainer = trainer(a, [...counters(), { name: "EarlySaver", order: ORDER.LAST, afterEpoch: async (ctx) => void (ctx.state.epoch === 1 && (snap = structuredClone(await ta.snapshot()))) }]);
    await ta.fit({ epochs: 3, train: a.data(8) });
    const b = fixture();
    const bCounters = counters();
    await trainer(b, bCounters).fit({ epochs: 3, train: b.data(8), resumeFrom: snap! });
    expect(bCounters.map((c) => c.stateDict())).not.toEqual(fullCounters.map((c) => c.stateDict()));
    expect(weightsOf(b)).not.toEqual(weightsOf(full));
    for (const fx of [full, a, b]) fx.dispose();
  });

  it("ctx.snapshot() exists only at the safe points, and every saver at one safe point gets the same snapshot", async () => {
    const fx = fixture();
    const got: RunSnapshot[] = [];
    const twice: Callback[] = [0, 1].map((i) => ({ name: `Saver${i}`, epochCheckpoint: async (ctx: HookContext) => void got.push(await ctx.snapshot()) }));
    await trainer(fx, twice).fit({ epochs: 1, train: fx.data(8) });
    expect(got).toHaveLength(2);
    expect(got[0]).toBe(got[1]);
    const early: Callback = { name: "Early", afterEpoch: async (ctx) => void (await ctx.snapshot()) };
    await expect(trainer(fx, [early]).fit({ epochs: 1, train: fx.data(8) })).rejects.toThrow(/ctx.snapshot\(\) from "Early" in afterEpoch: snapshots are taken at the safe points only/);
    fx.dispose();
  });

  it("a snapshot that does not fit this model or optimizer is refused before anything changes", async () => {
    const fx = fixture();
    const t = trainer(fx, []);
    await t.fit({ epochs: 1, train: fx.data(8) });
    const good = structuredClone(await t.snapshot());
    const before = weightsOf(fx);
    const bad: [string, RunSnapshot, RegExp][] = [
      ["other format", { ...good, format: "x" as never }, /not a fitloop run snapshot/],
      ["a weight missing", { ...good, weights: good.weights.slice(1) }, /the saved weights do not match the model: \d+ weights saved, the model has \d+/],
      ["a weight reshaped", { ...good, weights: good.weights.map((w, i) => (i === 0 ? { ...w, shape: [1, ...w.shape] } : w)) }, /weight 0 .* is float32 \[4, 8\], the saved one/],
      ["truncated values", { ...good, weights: good.weights.map((w, i) => (i === 1 ? { ...w, values: w.values.slice(1) } : w)) }, /weight 1 .* with 7 values/],
      ["another optimizer", { ...good, optimizer: { ...good.optimizer, kind: "sgd" } }, /saved optimizer state is for sgd, but the optimizer is adam/],
      ["a slot reshaped", { ...good, optimizer: { ...good.optimizer, slots: { ...good.optimizer.slots, accumulatedFirstMoment: good.optimizer.slots["accumulatedFirstMoment"]!.map((sl, i) => (i === 0 ? { ...sl, values: new Float32Array(3) } : sl)) } } }, /saved slot accumulatedFirstMoment\[0\] does not fit/],
      ["a bad cursor", { ...good, trainer: { ...good.trainer, train: { ...good.trainer.train, cursor: { epoch: -1, batchIndex: 0.5 } } } }, /train.cursor.epoch: must be an integer >= 0[\s\S]*train.cursor.batchIndex: must be an integer >= 0/],
      ["an all-zero RNG", { ...good, trainer: { ...good.trainer, rng: [0, 0, 0, 0] } }, /rng: the all-zero xoshiro state is invalid/],
    ];
    for (const [label, snap, message] of bad) {
      const t2 = trainer(fx, []);
      const err = await t2.fit({ epochs: 2, train: fx.data(8), resumeFrom: snap }).catch((e: unknown) => e);
      expect(err, label).toBeInstanceOf(StateError);
      expect((err as Error).message, label).toMatch(message);
      expect(weightsOf(fx), label).toEqual(before);
    }
    fx.dispose();
  });

  it("loading is all or nothing across plugins: when one refuses its state, those already loaded get theirs back", async () => {
    const fx = fixture();
    const a = new Counter("A", 0);
    a.batches = 11;
    const refuses: Callback = { name: "Refuses", stateKey: "refuses", stateDict: () => ({}), loadStateDict: () => { throw new StateError("Refuses: no"); } };
    const t = trainer(fx, [a, refuses]);
    t.loadStateDict({ train: { epoch: 0, step: 0, globalBatch: 0, batchIndex: 0, cursor: { epoch: 0, batchIndex: 0 }, history: [] }, rng: null, plugins: { A: { batches: 99, epochs: 9 }, refuses: {} } });
    await expect(t.fit({ epochs: 1, train: fx.data(8) })).rejects.toThrow(/Refuses: no/);
    expect(a.stateDict()).toEqual({ batches: 11, epochs: 0 });
    fx.dispose();
  });

  it("snapshots and resumes leak no tensors", async () => {
    const fx = fixture();
    const into: { snap?: RunSnapshot } = {};
    await trainer(fx, [saver("batch", 2, ORDER.DEFAULT, into)]).fit({ epochs: 1, train: fx.data(8) });
    const snap = into.snap!;
    const optimizer = tf.train.adam(0.05); // one optimizer: each would otherwise keep its own slots
    await expectNoLeaks(async () => {
      const t = new Trainer({ model: fx.model, optimizer, loss: "sparseCategoricalCrossentropy", seed: 7, callbacks: [saver("batch", 2, ORDER.DEFAULT, {})], logger: silentLogger });
      await t.fit({ epochs: 1, train: fx.data(8), resumeFrom: snap });
      await t.snapshot();
    });
    optimizer.dispose();
    fx.dispose();
  });
});
