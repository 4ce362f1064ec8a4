import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelBatch, CancelStep, FitloopError, silentLogger, tensorData, Trainer, type BatchContext, type Callback } from "./index.js";
import { smallData, smallModel, weightsOf } from "./adversarial/harness.fixture.js";

/** `beforeUpdate` (only when the update is applied), `ctx.skipRequested` and `ctx.data`. */
function run(callbacks: Callback[]) {
  const model = smallModel();
  const { xs, ys } = smallData();
  const train = tensorData(xs, ys, { batchSize: 8, shuffle: false }); // 3 batches
  const trainer = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks });
  return { model, trainer, train, fit: () => trainer.fit({ epochs: 1, train }), dispose: () => (model.dispose(), tf.dispose([xs, ys])) };
}

describe("beforeUpdate", () => {
  it("fires only for updates that are applied, after every beforeStep hook, with the weights the gradients were taken at", async () => {
    const seen: string[] = [];
    let weightsAtUpdate: number[][] = [];
    const skipper: Callback = { name: "Skipper", order: 1000, beforeStep: (ctx: BatchContext) => void (ctx.state.batchIndex === 1 && ctx.skipStep("test")) };
    const watcher: Callback = {
      name: "Watcher",
      order: -1000, // before the skipper in before* hooks: beforeUpdate still comes after its beforeStep
      beforeStep: (ctx) => void seen.push(`beforeStep ${ctx.state.batchIndex}`),
      beforeUpdate: (ctx) => {
        seen.push(`beforeUpdate ${ctx.state.batchIndex}`);
        weightsAtUpdate = weightsOf(ctx.model);
      },
      afterStep: (ctx) => void seen.push(`afterStep ${ctx.state.batchIndex} skipped=${ctx.stepSkipped}`),
    };
    const r = run([skipper, watcher]);
    const before = weightsOf(r.model);
    const { state } = await r.fit();
    expect(seen).toEqual(["beforeStep 0", "beforeUpdate 0", "afterStep 0 skipped=false", "beforeStep 1", "afterStep 1 skipped=true", "beforeStep 2", "beforeUpdate 2", "afterStep 2 skipped=false"]);
    expect(state.step).toBe(2);
    expect(weightsAtUpdate).not.toEqual(before); // the last update's start: after batch 0's update
    expect(weightsOf(r.model)).not.toEqual(weightsAtUpdate);
    r.dispose();
  });

  it("does not fire when the step is cancelled (CancelStep in afterGradients)", async () => {
    let updates = 0;
    const r = run([{ name: "C", afterGradients: () => { throw new CancelStep(); }, beforeUpdate: () => void updates++ }]);
    await r.fit();
    expect(updates).toBe(0);
    r.dispose();
  });

  for (const [name, act, code] of [
    ["CancelStep", () => { throw new CancelStep(); }, "CANCEL_OUT_OF_SCOPE"],
    ["CancelBatch", () => { throw new CancelBatch(); }, "CANCEL_OUT_OF_SCOPE"],
    ["ctx.skipStep", (ctx: BatchContext) => ctx.skipStep("late"), "SKIP_OUT_OF_SCOPE"],
  ] as const) {
    it(`${name} in beforeUpdate is too late: ${code} naming the plugin, no update`, async () => {
      const r = run([{ name: "Late", beforeUpdate: act as (ctx: BatchContext) => void }]);
      const before = weightsOf(r.model);
      const err = (await r.fit().catch((e: unknown) => e)) as FitloopError;
      expect(err).toBeInstanceOf(FitloopError);
      expect(err.code).toBe(code);
      expect(err.message).toContain('"Late"');
      expect(err.message).toContain("beforeUpdate");
      expect(weightsOf(r.model)).toEqual(before);
      r.dispose();
    });
  }
});

describe("ctx.skipRequested and ctx.data", () => {
  it("skipRequested turns true for the hooks after a skip request in the same batch, and resets each batch", async () => {
    const seen: string[] = [];
    const first: Callback = { name: "First", order: 0, afterGradients: (ctx) => void (ctx.state.batchIndex === 1 && ctx.skipStep("accumulating")) };
    const second: Callback = { name: "Second", order: 100, afterGradients: (ctx) => void seen.push(`${ctx.state.batchIndex}:${ctx.skipRequested}`), beforeStep: (ctx) => void seen.push(`step ${ctx.state.batchIndex}:${ctx.skipRequested}`) };
    const r = run([first, second]);
    await r.fit();
    expect(seen).toEqual(["0:false", "step 0:false", "1:true", "step 1:true", "2:false", "step 2:false"]);
    r.dispose();
  });

  it("data is the fit's sources", async () => {
    let seen: unknown;
    const r = run([{ name: "D", beforeFit: (ctx) => void (seen = ctx.data) }]);
    await r.fit();
    expect(seen).toEqual({ train: r.train, validation: undefined });
    r.dispose();
  });
});

describe("ctx.updatesPerEpoch", () => {
  const seen = (values: (number | undefined)[]): Callback => ({ name: "Seen", beforeFit: (ctx) => void values.push(ctx.updatesPerEpoch) });

  it("is the batches per epoch without a plugin that declares fewer updates", async () => {
    const values: (number | undefined)[] = [];
    const r = run([seen(values)]);
    await r.fit();
    expect(values).toEqual([3]);
    r.dispose();
  });

  it("goes through every plugin's updatesPerEpoch in order", async () => {
    const values: (number | undefined)[] = [];
    const half: Callback = { name: "Half", updatesPerEpoch: (b) => Math.ceil(b / 2) };
    const minusOne: Callback = { name: "MinusOne", order: 10, updatesPerEpoch: (b) => b - 1 };
    const r = run([seen(values), half, minusOne]);
    await r.fit();
    expect(values).toEqual([1]); // 3 -> ceil(3/2) = 2 -> 1
    r.dispose();
  });

  it("is undefined for a source of unknown length", async () => {
    const values: (number | undefined)[] = [];
    const r = run([seen(values)]);
    const { xs, ys } = { xs: tf.ones([4, 4]), ys: tf.zeros([4, 1]) };
    const stream = { async *batches() { yield { xs: xs.clone(), ys: ys.clone() }; } };
    await r.trainer.fit({ epochs: 1, train: stream });
    expect(values).toEqual([undefined]);
    tf.dispose([xs, ys]);
    r.dispose();
  });

  for (const [what, bad] of [["a fraction", 1.5], ["more than the batches", 4], ["a negative count", -1], ["NaN", Number.NaN], ["a string", "2"]] as const) {
    it(`a plugin returning ${what} is an INVALID_UPDATES_PER_EPOCH error naming it`, async () => {
      const r = run([{ name: "Wrong", updatesPerEpoch: () => bad as number }, { name: "Reader", beforeFit: (ctx) => void ctx.updatesPerEpoch }]);
      const err = await r.fit().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(FitloopError);
      expect((err as FitloopError).code).toBe("INVALID_UPDATES_PER_EPOCH");
      expect((err as Error).message).toMatch(/updatesPerEpoch of "Wrong" returned .* for 3 batches per epoch/);
      r.dispose();
    });
  }
});
