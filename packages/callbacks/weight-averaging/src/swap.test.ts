import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelEpoch, CancelFit, ORDER, PluginError, resolveLoss, type Callback, type RunSnapshot } from "@fitloop/core";
import { expectNoLeaks, tinyFixture, type TinyFixture } from "@fitloop/core/testing";
import { EMA, SWA, type AveragingPlugin } from "./index.js";
import { expectClose, trainer, weightsOf } from "./helpers.fixture.js";

/** The raw weights after every batch (at the safe point), as the next step starts from them. */
function trajectory(): Callback & { at: number[][][] } {
  const at: number[][][] = [];
  return { name: "Trajectory", at, batchCheckpoint: (ctx) => void at.push(weightsOf(ctx.model)) };
}

const fixture = () => tinyFixture({ samples: 40, withBatchNormAndDropout: true }); // 5 batches of 8
const run = (fx: TinyFixture, callbacks: Callback[], optimizer: tf.Optimizer = tf.train.adam(0.02)) => trainer(fx, callbacks, { optimizer, seed: 9 }).fit({ epochs: 4, train: fx.data(8), validation: fx.data(40) });

describe("validation runs on the average and training goes on from the raw weights", () => {
  it.each([
    ["EMA", () => new EMA({ decay: 0.8, applyAtEnd: false })],
    ["SWA with a BatchNorm pass before every validation", () => new SWA({ start: 1, every: { steps: 2 }, updateBatchNorm: "validation", applyAtEnd: false })],
  ])("%s: the raw trajectory is bit for bit that of a run without it; val_* differ", async (_, make) => {
    const plain = fixture();
    const plainPath = trajectory();
    const rPlain = await run(plain, [plainPath]);
    const fx = fixture();
    const path = trajectory();
    const plugin = make();
    const r = await run(fx, [plugin, path]);
    expect(path.at).toHaveLength(20);
    expect(path.at).toEqual(plainPath.at); // the BatchNorm pass did not touch the data order, the RNG or the raw statistics
    expect(weightsOf(fx.model)).toEqual(weightsOf(plain.model)); // applyAtEnd: false
    expect(r.state.history.map((h) => h.logs["loss"])).toEqual(rPlain.state.history.map((h) => h.logs["loss"]));
    expect(r.state.history.at(-1)!.logs["val_loss"]).not.toBe(rPlain.state.history.at(-1)!.logs["val_loss"]);
    if (plugin instanceof SWA) expect(plugin.lastBatchNormUpdate).toEqual({ layers: 1, batches: 5, samples: 40, epoch: 3 });
    plain.dispose();
    fx.dispose();
  });

  it("from beforeValidate to afterEpoch every plugin sees the average (val_loss is its loss); the epoch snapshot holds the raw weights and the average in the plugin state", async () => {
    const fx = fixture();
    const ema = new EMA({ decay: 0.7 });
    const lossFn = resolveLoss("sparseCategoricalCrossentropy");
    const seen: { epoch: number; weights: number[][]; average: Float32Array[]; valLoss: number; recomputed: number }[] = [];
    const monitor: Callback = {
      name: "Monitor",
      order: ORDER.MONITOR,
      afterEpoch: (ctx) => {
        const loss = tf.tidy(() => tf.mean(lossFn(fx.ys, fx.model.predict(fx.xs) as tf.Tensor)).dataSync()[0]!); // the validation data is fx's 40 samples
        seen.push({ epoch: ctx.state.epoch, weights: weightsOf(ctx.model), average: ema.averagedWeights()!.map((w) => w.values), valLoss: ctx.logs["val_loss"]!, recomputed: loss });
      },
    };
    const raw = trajectory();
    const snaps = new Map<number, RunSnapshot>();
    const saver: Callback = { name: "Saver", order: ORDER.CHECKPOINT, epochCheckpoint: async (ctx) => void snaps.set(ctx.state.epoch, structuredClone(await ctx.snapshot())) };
    await run(fx, [ema, monitor, raw, saver]);
    for (const s of seen) {
      expectClose(s.weights, s.average.map((a) => Array.from(a)), 0, `epoch ${s.epoch}: the model holds the average`);
      expect(s.recomputed, `epoch ${s.epoch}: val_loss is the average's loss`).toBeCloseTo(s.valLoss, 5);
      const snap = snaps.get(s.epoch)!;
      expect(snap.weights.map((w) => Array.from(w.values))).toEqual(raw.at[5 * s.epoch + 4]); // raw: the last batch of that epoch
      const state = snap.trainer.plugins["ema"] as { count: number; weights: { values: Float32Array }[] };
      expect(state.count).toBe(5 * (s.epoch + 1));
      expect(state.weights.map((w) => w.values)).toEqual(s.average);
    }
    fx.dispose();
  });
});

describe("the raw weights come back whatever ends the validation", () => {
  const failIn = (event: "beforeValBatch" | "afterValBatch" | "afterValidate", error: () => Error): Callback => ({
    name: `Fail-${event}`,
    [event]: (ctx: { state: { epoch: number } }) => {
      if (ctx.state.epoch === 1) throw error();
    },
  });

  it.each(["beforeValBatch", "afterValBatch", "afterValidate"] as const)("an error in %s: the run fails with the raw weights of the last step in the model, no tensor left", async (event) => {
    const fx = fixture();
    const raw = trajectory();
    const ema = new EMA({ decay: 0.9 });
    const optimizer = tf.train.sgd(0.1);
    await run(fx, [], optimizer); // the optimizer's own tensors exist before counting
    const before = tf.memory().numTensors;
    const err = await run(fx, [ema, raw, failIn(event, () => new Error("validation broke"))], optimizer).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect(weightsOf(fx.model)).toEqual(raw.at[9]); // the end of epoch 1's training, not the average
    expect(ema.averagedWeights()).not.toBeNull(); // kept on the host for a snapshot after the run
    expect(tf.memory().numTensors).toBe(before);
    fx.dispose();
  });

  it("CancelEpoch in a validation batch: the epoch ends, the raw weights are back before its safe point and the next epoch", async () => {
    const cancel = failIn("beforeValBatch", () => new CancelEpoch("skip it"));
    const plain = fixture();
    const plainPath = trajectory();
    await run(plain, [plainPath, cancel]);
    const fx = fixture();
    const path = trajectory();
    let atCheckpoint: number[][] = [];
    const saver: Callback = { name: "Saver", epochCheckpoint: (ctx) => void (ctx.state.epoch === 1 && (atCheckpoint = weightsOf(ctx.model))) };
    const r = await run(fx, [new SWA({ start: 0, every: { steps: 1 }, applyAtEnd: false }), path, cancel, saver]);
    expect(r.outcome.status).toBe("completed");
    expect(r.state.history.map((h) => h.epoch)).toEqual([0, 2, 3]); // the cut epoch has no record
    expect(atCheckpoint).toEqual(path.at[9]);
    expect(path.at).toEqual(plainPath.at);
    plain.dispose();
    fx.dispose();
  });

  it("CancelFit in a validation batch: the run is cancelled and the average is applied as after a stop (applyAtEnd)", async () => {
    const fx = fixture();
    const ema = new EMA({ decay: 0.9 });
    const r = await run(fx, [ema, failIn("afterValBatch", () => new CancelFit("enough"))]);
    expect(r.outcome.status).toBe("cancelled");
    expect(fx.model.weights.map((w) => w.read().dataSync())).toEqual(ema.averagedWeights()!.map((w) => w.values));
    fx.dispose();
  });

  it("no tensor growth when validation throws or cancels, run after run", async () => {
    const fx = fixture();
    const optimizer = tf.train.adam(0.01);
    for (const failing of [failIn("afterValBatch", () => new Error("x")), failIn("beforeValBatch", () => new CancelEpoch()), failIn("afterValidate", () => new CancelFit())]) {
      for (const make of [() => new EMA({ decay: 0.9 }), () => new SWA({ start: 0, updateBatchNorm: "validation" }) as AveragingPlugin]) {
        await expectNoLeaks(() => run(fx, [make(), failing], optimizer).catch(() => undefined), { warmup: 1, iterations: 2 });
      }
    }
    fx.dispose();
  });
});
