import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER, type Callback, type RunSnapshot } from "@fitloop/core";
import { roundTripState, tinyFixture, type TinyFixture } from "@fitloop/core/testing";
import { EMA, SWA, type AveragingPlugin } from "./index.js";
import { trainer, weightsOf } from "./helpers.fixture.js";

const EPOCHS = 5;
const fixture = () => tinyFixture({ samples: 40, withBatchNormAndDropout: true }); // 5 batches of 8
const fit = (fx: TinyFixture, callbacks: Callback[], resumeFrom?: RunSnapshot) =>
  trainer(fx, callbacks, { optimizer: tf.train.adam(0.03), seed: 21 }).fit({ epochs: EPOCHS, train: fx.data(8), validation: fx.data(40), ...(resumeFrom ? { resumeFrom } : {}) });

/** Saves at the `at`-th batchCheckpoint (mid-epoch) or at the end of epoch `at`, like a checkpoint plugin (as a file would: a deep copy). */
function saver(kind: "batch" | "epoch", at: number, into: { snap?: RunSnapshot }): Callback {
  const take = async (ctx: Parameters<NonNullable<Callback["epochCheckpoint"]>>[0]) => void (into.snap = structuredClone(await ctx.snapshot()));
  return kind === "batch"
    ? { name: "Saver", order: ORDER.CHECKPOINT, batchCheckpoint: async (ctx) => void (ctx.state.globalBatch === at && (await take(ctx))) }
    : { name: "Saver", order: ORDER.CHECKPOINT, epochCheckpoint: async (ctx) => void (ctx.state.epoch === at && (await take(ctx))) };
}

const die = (): never => {
  throw new Error("the process dies");
};

const plugins: [string, () => AveragingPlugin][] = [
  ["EMA with warmup, every 2 steps, BatchNorm statistics averaged", () => new EMA({ decay: 0.9, warmup: true, every: 2 })],
  ["SWA from epoch 1 every 3 steps with SWALR and a BatchNorm pass at every validation", () => new SWA({ start: 1, every: { steps: 3 }, lr: { value: 0.01, annealEpochs: 2 }, updateBatchNorm: "validation" })],
  ["SWA every epoch from 0.2 of the run (epoch 1)", () => new SWA({ start: 0.2 })],
];

describe("a resumed run continues the same average, bit for bit on cpu", () => {
  const cases = plugins.flatMap(([label, make]) => [{ label, make, kind: "epoch" as const, at: 1 }, { label, make, kind: "batch" as const, at: 13 }]);
  it.each(cases)("$label: snapshot at $kind $at", async ({ make, kind, at }) => {
    const full = fixture();
    const pFull = make();
    const rFull = await fit(full, [pFull]);

    const a = fixture();
    const into: { snap?: RunSnapshot } = {};
    // the process dies right after the save
    const cut: Callback = kind === "batch" ? { name: "Cut", beforeBatch: (ctx) => void (ctx.state.globalBatch === at && die()) } : { name: "Cut", beforeEpoch: (ctx) => void (ctx.state.epoch === at + 1 && die()) };
    await fit(a, [make(), saver(kind, at, into), cut]).catch(() => undefined);
    const state = into.snap!.trainer.plugins[pFull.stateKey] as { count: number };
    expect(state.count).toBeGreaterThan(0); // the snapshot carries an average in progress

    const b = fixture();
    b.model.setWeights(b.model.getWeights().map((w) => tf.zerosLike(w))); // the snapshot must overwrite these
    const pB = make();
    const rB = await fit(b, [pB], into.snap);
    expect(pB.updates).toBe(pFull.updates);
    expect(pB.averagedWeights()!.map((w) => w.values)).toEqual(pFull.averagedWeights()!.map((w) => w.values)); // Float32Arrays: bit for bit
    expect(weightsOf(b.model)).toEqual(weightsOf(full.model)); // the average applied (and BatchNorm recomputed) at the end
    expect(rB.state.history).toEqual(rFull.state.history); // val_* of the average, lr of SWALR
    for (const fx of [full, a, b]) fx.dispose();
  });

  it("the state survives what a checkpoint does to it (encode, JSON, decode) and loads into a new instance", async () => {
    for (const [, make] of plugins) {
      const fx = fixture();
      const p = make();
      await fit(fx, [p]);
      const dict = p.stateDict();
      const copy = make();
      copy.loadStateDict(roundTripState(dict));
      expect(copy.stateDict()).toEqual(dict);
      fx.dispose();
    }
  });
});
