import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER, StateError, Trainer, silentLogger, type Callback, type RunSnapshot, type StateDict } from "@fitloop/core";
import { restoreRun, snapshotRun, stateWithPlugins, tinyFixture, type TinyFixture } from "@fitloop/core/testing";
import { EarlyStopping, type EarlyStoppingOptions } from "./index.js";
import { scripted, weightsOf } from "./helpers.fixture.js";

// patience 3: best .6 at e2, e3 e4 wait, .55 at e5 is the best, e6 e7 e8 wait -> stop at the end of e8
const SCRIPT = [1, 0.8, 0.6, 0.7, 0.65, 0.55, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1];
const EPOCHS = SCRIPT.length;

const make = (fx: TinyFixture, callbacks: Callback[]) =>
  new Trainer({ model: fx.model, optimizer: tf.train.momentum(0.05, 0.9), loss: "sparseCategoricalCrossentropy", seed: 3, callbacks, logger: silentLogger });

/** Takes the snapshot at the end of epoch `k`, at the safe point (after every plugin's afterEpoch, whatever this plugin's order). */
function snapshotAt(k: number, order: number, into: { snap?: RunSnapshot }): Callback {
  return { name: "Snapshot", order, epochCheckpoint: async (ctx) => void (ctx.state.epoch === k && (into.snap = structuredClone(await ctx.snapshot()))) };
}

describe("resume: a resumed run stops where an uninterrupted one does", () => {
  const options: EarlyStoppingOptions = { monitor: "score", mode: "min", patience: 3, restoreBestWeights: true };

  it.each([
    [3, ORDER.FIRST, "the best epoch (5) comes after the snapshot: its weights are copied in the resumed run"],
    [6, ORDER.FIRST, "the best epoch (5) comes before the snapshot: its weights come from the saved state"],
    [3, ORDER.LAST, "a saver ordered last"],
    [6, ORDER.MONITOR + 1, "a saver ordered just after EarlyStopping"],
  ])("snapshot after epoch %i (saver order %i): same stop epoch, best epoch and value, best weights bit for bit (%s)", async (k, order) => {
    const full = tinyFixture({ samples: 32 });
    const esFull = new EarlyStopping(options);
    const rFull = await make(full, [esFull, scripted(SCRIPT)]).fit({ epochs: EPOCHS, train: full.data(8, 5) });
    expect(esFull.result).toMatchObject({ stopped: true, stoppedEpoch: 8, bestEpoch: 5, bestValue: 0.55 });

    const a = tinyFixture({ samples: 32 });
    const into: { snap?: RunSnapshot } = {};
    const ta: Trainer = make(a, [new EarlyStopping(options), scripted(SCRIPT), snapshotAt(k, order, into)]);
    await ta.fit({ epochs: k + 1, train: a.data(8, 5) });
    const snap = into.snap!;
    expect(snap.trainer.plugins["early-stopping"]).toMatchObject({ bestEpoch: k < 5 ? 2 : 5, stoppedEpoch: null });

    const b = tinyFixture({ samples: 32 });
    b.model.setWeights(b.model.getWeights().map((w) => tf.zerosLike(w))); // the snapshot must overwrite these
    const esB = new EarlyStopping(options);
    const tb = make(b, [esB, scripted(SCRIPT)]);
    restoreRun(tb, snap);
    const rB = await tb.fit({ epochs: EPOCHS, train: b.data(8, 5) });

    expect(rB.outcome.stopRequests).toEqual(rFull.outcome.stopRequests);
    expect(esB.result).toEqual(esFull.result);
    expect(esB.bestWeights()).toEqual(esFull.bestWeights()); // Float32Arrays: bit for bit
    expect(weightsOf(b.model)).toEqual(weightsOf(full.model)); // both restored to epoch 5
    for (const es of [esFull, esB]) es.dispose();
    for (const fx of [full, a, b]) fx.dispose();
  });

  it("without restoreBestWeights a snapshot after fit() resumes the counters (the model is not touched at the end)", async () => {
    const plain: EarlyStoppingOptions = { monitor: "score", mode: "min", patience: 3 };
    const full = tinyFixture({ samples: 16 });
    const esFull = new EarlyStopping(plain);
    const rFull = await make(full, [esFull, scripted(SCRIPT)]).fit({ epochs: EPOCHS, train: full.data(8) });
    const a = tinyFixture({ samples: 16 });
    const ta = make(a, [new EarlyStopping(plain), scripted(SCRIPT)]);
    await ta.fit({ epochs: 7, train: a.data(8) }); // to the end of e6: a fresh state would stop at e10, not e8
    const snap = await snapshotRun(ta);
    expect(snap.trainer.plugins["early-stopping"]).toEqual({ wait: 1, best: 0.55, bestEpoch: 5, stoppedEpoch: null, stop: null, weights: null });
    const b = tinyFixture({ samples: 16 });
    const esB = new EarlyStopping(plain);
    const tb = make(b, [esB, scripted(SCRIPT)]);
    restoreRun(tb, snap);
    const rB = await tb.fit({ epochs: EPOCHS, train: b.data(8) });
    expect(rB.outcome.stopRequests).toEqual(rFull.outcome.stopRequests);
    expect(esB.result).toEqual(esFull.result);
    expect(weightsOf(b.model)).toEqual(weightsOf(full.model));
    for (const fx of [full, a, b]) fx.dispose();
  });
});

describe("saved state is validated", () => {
  const good = (): Record<string, unknown> => ({ wait: 0, best: null, bestEpoch: null, stoppedEpoch: null, stop: null, weights: null });
  const f32 = (n: number) => new Float32Array(n);

  it("a typed StateError names every bad key", () => {
    const cases: [unknown, RegExp][] = [
      [null, /\(state\): /],
      ["nope", /\(state\): /],
      [{ ...good(), wait: -1, best: "x" }, /wait: must be an integer >= 0; best: must be a finite number or null/],
      [{ ...good(), best: 0.5 }, /bestEpoch: best and bestEpoch must both be set or both be null/],
      [{ ...good(), bestEpoch: 1.5, stoppedEpoch: -2 }, /bestEpoch: must be an integer >= 0 or null; stoppedEpoch: must be an integer >= 0 or null/],
      [{ ...good(), stop: { kind: "bored", reason: "x" } }, /stop\.kind: must be one of patience, baseline, stoppingThreshold, divergenceThreshold, nonFinite/],
      [{ ...good(), weights: [{ shape: [2], values: [1, 2] }] }, /weights\.0\.values: must be a Float32Array/],
      [{ ...good(), weights: [{ shape: [2, 2], values: f32(3) }] }, /weights\.0: has a number of values that does not match its shape/],
      [{ ...good(), extra: 1 }, /Unrecognized key: "extra"/],
      [{ ...good(), wait: undefined }, /wait: must be an integer >= 0/],
      [{ ...good(), best: 0.5, bestEpoch: 2 }, /weights: restoreBestWeights is on and the state has a best epoch \(2\) but no best weights/],
    ];
    for (const [state, message] of cases) {
      const es = new EarlyStopping({ restoreBestWeights: true });
      expect(() => es.loadStateDict(state as StateDict), JSON.stringify(state)).toThrow(StateError);
      expect(() => es.loadStateDict(state as StateDict)).toThrow(/^EarlyStopping: the saved state is invalid: /);
      expect(() => es.loadStateDict(state as StateDict)).toThrow(message);
    }
  });

  it("bad state fails the fit before any step and leaves the model untouched; so do best weights that do not fit the model", async () => {
    const fx = tinyFixture({ samples: 16 });
    const shapes = fx.model.weights.map((w) => w.shape as number[]);
    const saved = (list: number[][]) => list.map((shape) => ({ shape, values: f32(shape.reduce((x, y) => x * y, 1)) }));
    const cases: [unknown, RegExp][] = [
      [{ ...good(), wait: -1 }, /EarlyStopping: the saved state is invalid: wait/],
      [{ ...good(), best: 1, bestEpoch: 0, weights: saved(shapes.slice(1)) }, /EarlyStopping: the saved best weights do not match the model: 3 tensors saved, the model has 4 weights/],
      [{ ...good(), best: 1, bestEpoch: 0, weights: saved([[8, 4], ...shapes.slice(1)]) }, /weight 0 \(dense_Dense\d+\/kernel\) is float32 \[4, 8\], the saved copy is float32 \[8, 4\]/],
    ];
    for (const [state, message] of cases) {
      const before = weightsOf(fx.model);
      const es = new EarlyStopping({ restoreBestWeights: true });
      const t = make(fx, [es]);
      t.loadStateDict(stateWithPlugins({ "early-stopping": state as StateDict }));
      const err = await t.fit({ epochs: 1, train: fx.data(8), validation: fx.data(16) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateError);
      expect((err as Error).message).toMatch(message);
      expect(weightsOf(fx.model)).toEqual(before);
      expect(es.bestWeights()).toEqual([]); // the rejected copies are gone
      expect(es.result.bestEpoch).toBeUndefined();
    }
    fx.dispose();
  });

  it("a state loaded without restoreBestWeights ignores saved weights; a resumed fit keeps it, the next fresh fit starts over", async () => {
    const fx = tinyFixture({ samples: 16 });
    const es = new EarlyStopping({ monitor: "score", mode: "min", patience: 1 });
    const state = { ...good(), best: 0.1, bestEpoch: 0, weights: [{ shape: [1], values: f32(1) }] } as StateDict;
    es.loadStateDict(state);
    expect(es.bestWeights()).toEqual([]);
    const t = make(fx, [es, scripted([0.4, 0.6, 0.7, 0.8])]);
    // loaded through the trainer, the fit is a resume: the loaded best is kept (e0 .4 is worse than .1,
    // wait 1, no stop at epoch 0; e1 wait 2 -> stop)
    t.loadStateDict(stateWithPlugins({ "early-stopping": state }));
    await t.fit({ epochs: 4, train: fx.data(8) });
    expect(es.result).toMatchObject({ stoppedEpoch: 1, bestEpoch: 0, bestValue: 0.1 });
    expect(es.stateDict()).toMatchObject({ wait: 2, weights: null });
    // nothing loaded for this fit: it starts afresh (best .4 at e0; e1 wait 1 -> stop)
    await t.fit({ epochs: 4, train: fx.data(8) });
    expect(es.result).toMatchObject({ stoppedEpoch: 1, bestEpoch: 0, bestValue: 0.4 });
    expect(es.stateDict()).toMatchObject({ wait: 1 });
    fx.dispose();
  });
});
