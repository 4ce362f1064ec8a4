import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelFit, silentLogger, Trainer, type Callback, type RunSnapshot, type StateDict } from "@fitloop/core";
import { roundTripState } from "@fitloop/core/testing";
import { mlp, run, type RunSpec } from "./harness.fixture.js";
import { GradAccumulation } from "./index.js";

// 112 samples in micro-batches of 16: 7 per epoch, groups of 4 and 3; global batch 9 is epoch 1, batch 2
const spec: RunSpec = { samples: 112, batch: 16, epochs: 3, optimizer: "adam", accumulate: { steps: 4 } };
const MID_GROUP = 9; // batches done when saving: the group of epoch 1 holds 2 micro-batches

/** Takes a snapshot at the batchCheckpoint after `at` batches (the run goes on). */
function saver(at: number, into: { snap?: RunSnapshot }): Callback {
  return { name: "Saver", batchCheckpoint: async (ctx) => void (ctx.state.globalBatch === at && (into.snap = structuredClone(await ctx.snapshot()))) };
}

const groupOf = (snap: RunSnapshot): StateDict => snap.trainer.plugins["grad-accumulation"]!;

describe("resume in the middle of a group", () => {
  it("from a snapshot at a batchCheckpoint mid-group, into a new model and trainer: the same weights and history, bit for bit", async () => {
    const straight = await run(spec);
    const into: { snap?: RunSnapshot } = {};
    const saving = await run({ ...spec, callbacks: [saver(MID_GROUP, into)] });
    expect(saving.final).toEqual(straight.final); // taking a snapshot changes nothing
    const group = groupOf(into.snap!);
    expect(group).toMatchObject({ microBatches: 2, samples: 32 });
    expect((group["sums"] as { values: Float32Array }[]).map((s) => s.values.length)).toEqual([64, 16, 48, 3]);

    const resumed = await run({ ...spec, resumeFrom: into.snap! });
    expect(resumed.final).toEqual(straight.final);
    expect(resumed.result.state.history).toEqual(straight.result.state.history);
    expect(resumed.result.state.step).toBe(straight.result.state.step);

    // negative control: without the group's sums, the resumed run differs
    const emptied = structuredClone(into.snap!);
    (emptied.trainer.plugins as Record<string, StateDict>)["grad-accumulation"] = { microBatches: 0, samples: 0, sums: [] };
    const forgetful = await run({ ...spec, resumeFrom: emptied });
    expect(forgetful.final).not.toEqual(straight.final);
  });

  it("a run stopped mid-group keeps its group (on the host, no tensors): trainer.snapshot() after fit resumes exactly", async () => {
    const straight = await run(spec);
    const stop: Callback = { name: "Stop", afterBatch: (ctx) => void (ctx.state.globalBatch === MID_GROUP - 1 && ctx.requestStop("test")) };
    const stopped = await run({ ...spec, callbacks: [stop], snapshotAfter: true });
    expect(stopped.result.outcome.status).toBe("stopped");
    expect(stopped.plugin!.accumulated).toEqual({ microBatches: 2, samples: 32 });
    const snap = stopped.snapshot!;
    expect(groupOf(snap)).toMatchObject({ microBatches: 2, samples: 32 });
    const resumed = await run({ ...spec, resumeFrom: snap });
    expect(resumed.final).toEqual(straight.final);
    expect(resumed.result.state.history).toEqual(straight.result.state.history);
  });

  it("a run cancelled (CancelFit) right after a micro-batch: trainer.snapshot() after fit resumes to the same weights", async () => {
    const straight = await run(spec);
    const cancel: Callback = {
      name: "Cancel",
      afterBatch: (ctx) => {
        if (ctx.state.globalBatch === MID_GROUP - 1) throw new CancelFit("test");
      },
    };
    const cancelled = await run({ ...spec, callbacks: [cancel], snapshotAfter: true });
    expect(cancelled.result.outcome.status).toBe("cancelled");
    const snap = cancelled.snapshot!;
    expect(groupOf(snap)).toMatchObject({ microBatches: 2, samples: 32 });
    const resumed = await run({ ...spec, resumeFrom: snap });
    expect(resumed.final).toEqual(straight.final);
  });

  it("a new fit() without a resume starts over: the group a stopped run kept is not carried into it", async () => {
    const fx = mlp(112);
    const plugin = new GradAccumulation({ steps: 4 });
    const closing: (number | undefined)[] = [];
    const stop: Callback = { name: "Stop", afterBatch: (ctx) => void (ctx.state.globalBatch === 1 && !ctx.state.resumed && ctx.state.epochs === 2 && ctx.requestStop("test")) };
    const watch: Callback = { name: "Watch", afterBatch: (ctx) => void closing.push(ctx.logs["effective_batch"]) };
    const trainer = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [plugin, stop, watch], logger: silentLogger });
    await trainer.fit({ epochs: 2, train: fx.data(16) });
    expect(plugin.accumulated).toEqual({ microBatches: 2, samples: 32 });
    closing.length = 0;
    const r = await trainer.fit({ epochs: 1, train: fx.data(16) });
    expect(closing).toEqual([undefined, undefined, undefined, 64, undefined, undefined, 48]); // not 96: the first group started empty
    expect(r.state.step).toBe(2);
    fx.dispose();
  });

  it("the state survives what a checkpoint does to it (encode, JSON, decode), and loading it again gives the same state", async () => {
    const into: { snap?: RunSnapshot } = {};
    await run({ ...spec, epochs: 2, callbacks: [saver(MID_GROUP, into)] });
    const saved = groupOf(into.snap!);
    const p = new GradAccumulation({ steps: 4 });
    p.loadStateDict(roundTripState(saved));
    expect(p.stateDict()).toEqual(saved);
    expect(p.accumulated).toEqual({ microBatches: 2, samples: 32 });
  });
});
