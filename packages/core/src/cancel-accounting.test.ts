import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelBatch, CancelEpoch, CancelFit, silentLogger, tensorData, Trainer, type Callback, type CancellationClass, type RunSnapshot } from "./index.js";
import { smallData, smallModel, weightsOf } from "./adversarial/harness.fixture.js";

/**
 * A batch whose update was applied counts as trained whatever a late cancel says, and a batch a
 * CancelBatch ended is over: the cursor, the batch counters and the epoch's totals agree with an
 * uninterrupted run, so a snapshot taken there resumes to the same numbers.
 */
async function fitWith(callbacks: Callback[], resumeFrom?: RunSnapshot) {
  const model = smallModel();
  const { xs, ys } = smallData(); // 24 samples: 3 batches of 8
  const trainer = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, seed: 1, callbacks });
  const r = await trainer.fit({ epochs: 2, train: tensorData(xs, ys, { batchSize: 8, shuffle: false }), ...(resumeFrom ? { resumeFrom } : {}) });
  const snapshot = structuredClone(await trainer.snapshot());
  const out = { state: r.state, weights: weightsOf(model), snapshot };
  model.dispose();
  tf.dispose([xs, ys]);
  return out;
}

const at = (event: "afterStep" | "afterBatch" | "beforeStep", batch: number, Cancel: CancellationClass): Callback => {
  let fired = false;
  return {
    name: "Late",
    [event]: (ctx: { state: { epoch: number; batchIndex: number } }) => {
      if (!fired && ctx.state.epoch === 0 && ctx.state.batchIndex === batch) {
        fired = true;
        throw new Cancel("test");
      }
    },
  };
};

describe("a cancel after the step: the batch counts", () => {
  for (const event of ["afterStep", "afterBatch"] as const) {
    it(`CancelFit in ${event} of batch 1: counters and the epoch's totals include it; the snapshot resumes to the uninterrupted run's numbers`, async () => {
      const straight = await fitWith([]);
      const cut = await fitWith([at(event, 1, CancelFit)]);
      expect(cut.state.globalBatch).toBe(2);
      expect(cut.state.step).toBe(2);
      expect(cut.snapshot.trainer.train.cursor).toEqual({ epoch: 0, batchIndex: 2 });
      expect(cut.snapshot.trainer.train.epochProgress?.samples).toBe(16);
      const resumed = await fitWith([], cut.snapshot);
      expect(resumed.weights).toEqual(straight.weights);
      expect(resumed.state.globalBatch).toBe(straight.state.globalBatch);
      expect(resumed.state.history.map((h) => h.logs["loss"])).toEqual(straight.state.history.map((h) => h.logs["loss"]));
    });
  }

  it("CancelEpoch in afterBatch of batch 1: the epoch's 2 trained batches are counted, the next epoch starts at global batch 2", async () => {
    const starts: number[] = [];
    const r = await fitWith([at("afterBatch", 1, CancelEpoch), { name: "Starts", beforeEpoch: (ctx) => void starts.push(ctx.state.globalBatch) }]);
    expect(starts).toEqual([0, 2]);
    expect(r.state.globalBatch).toBe(5);
    expect(r.state.step).toBe(5);
  });

  it("CancelFit before the step (beforeStep) leaves the batch untrained: not counted, the resume trains it", async () => {
    const straight = await fitWith([]);
    const cut = await fitWith([at("beforeStep", 1, CancelFit)]);
    expect(cut.state.globalBatch).toBe(1);
    expect(cut.snapshot.trainer.train.cursor).toEqual({ epoch: 0, batchIndex: 1 });
    const resumed = await fitWith([], cut.snapshot);
    expect(resumed.weights).toEqual(straight.weights);
  });
});

describe("CancelBatch ends the batch: a resume goes on with the next one", () => {
  it("CancelBatch in beforeStep of batch 1, snapshot at its batchCheckpoint: the cursor is batch 2, and the resumed run equals the uninterrupted run that skipped it", async () => {
    let snap: RunSnapshot | undefined;
    const grab: Callback = { name: "Grab", batchCheckpoint: async (ctx) => void (ctx.state.epoch === 0 && ctx.state.batchIndex === 2 && (snap = structuredClone(await ctx.snapshot()))) };
    const straight = await fitWith([at("beforeStep", 1, CancelBatch), grab]);
    expect(snap!.trainer.train.cursor).toEqual({ epoch: 0, batchIndex: 2 });
    const resumed = await fitWith([], snap);
    expect(resumed.weights).toEqual(straight.weights); // batch 1 is not trained a second time
    expect(resumed.state.step).toBe(straight.state.step);
  });
});
