import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelBatch, CancelEpoch, CancelFit, CancelStep, EVENTS, PluginError, Trainer, arrayData, silentLogger, type Callback, type EventName } from "./index.js";
import { tinyFixture } from "./testing/index.js";

/** A callback that records every event it sees, as a class. */
class Recorder implements Callback {
  readonly seen: string[] = [];
  constructor(readonly name: string) {
    for (const e of EVENTS) (this as unknown as Record<string, unknown>)[e] = () => void this.seen.push(e);
  }
}

function inlineRecorder(seen: string[], extra: Partial<Record<EventName, () => void>> = {}): Callback {
  const cb: Record<string, unknown> = { name: "inline" };
  for (const e of EVENTS) {
    cb[e] = () => {
      seen.push(e);
      extra[e]?.();
    };
  }
  return cb as Callback;
}

const BATCH = ["beforeBatch", "afterForward", "afterLoss", "afterGradients", "beforeStep", "beforeUpdate", "afterStep", "afterBatch", "batchCheckpoint"];
const VAL_BATCH = ["beforeValBatch", "afterValBatch"];

function expectedRun(epochs: number, batches: number, valBatches: number): string[] {
  const out = ["beforeFit"];
  for (let e = 0; e < epochs; e++) {
    out.push("beforeEpoch", "beforeTrain");
    for (let b = 0; b < batches; b++) out.push(...BATCH);
    out.push("afterTrain", "beforeValidate");
    for (let b = 0; b < valBatches; b++) out.push(...VAL_BATCH);
    out.push("afterValidate", "afterEpoch", "epochCheckpoint");
  }
  out.push("afterFit");
  return out;
}

function setup(callbacks: Callback[]) {
  const fx = tinyFixture({ samples: 12 });
  const trainer = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks, logger: silentLogger });
  return { fx, trainer, train: fx.data(4), validation: fx.data(6) };
}

describe("events", () => {
  it("a class and an inline callback see every event in the documented order", async () => {
    const rec = new Recorder("rec");
    const inline: string[] = [];
    const { fx, trainer, train, validation } = setup([rec, inlineRecorder(inline)]);
    const r = await trainer.fit({ epochs: 2, train, validation });
    expect(r.outcome.status).toBe("completed");
    const expected = expectedRun(2, 3, 2);
    expect(rec.seen).toEqual(expected);
    expect(inline).toEqual(expected);
    expect(new Set(rec.seen)).toEqual(new Set(EVENTS));
    fx.dispose();
  });

  it("after* hooks run in reverse order so pairs nest", async () => {
    const calls: string[] = [];
    const mk = (name: string): Callback => ({ name, beforeBatch: () => void calls.push(`${name}.before`), afterBatch: () => void calls.push(`${name}.after`) });
    const { fx, trainer } = setup([mk("a"), mk("b")]);
    await trainer.fit({ epochs: 1, train: fx.data(12) });
    expect(calls).toEqual(["a.before", "b.before", "b.after", "a.after"]);
    fx.dispose();
  });

  it("CancelBatch skips the rest of the batch and still runs afterBatch", async () => {
    const seen: string[] = [];
    let n = 0;
    const cb = inlineRecorder(seen, { beforeBatch: () => { if (n++ === 0) throw new CancelBatch("skip first"); } });
    const { fx, trainer } = setup([cb]);
    const r = await trainer.fit({ epochs: 1, train: fx.data(6) });
    const firstBatch = seen.slice(seen.indexOf("beforeBatch"), seen.indexOf("afterBatch") + 1);
    expect(firstBatch).toEqual(["beforeBatch", "afterBatch"]);
    expect(r.state.step).toBe(1); // only the second batch stepped
    expect(r.state.globalBatch).toBe(2);
    fx.dispose();
  });

  it("CancelStep skips applyGradients, weights stay unchanged, afterStep sees stepSkipped", async () => {
    const skipped: boolean[] = [];
    const cb: Callback = {
      beforeStep: () => { throw new CancelStep("no update"); },
      afterStep: (ctx) => void skipped.push(ctx.stepSkipped),
    };
    const { fx, trainer } = setup([cb]);
    const before = fx.model.getWeights().map((w) => w.arraySync());
    const r = await trainer.fit({ epochs: 1, train: fx.data(4) });
    expect(fx.model.getWeights().map((w) => w.arraySync())).toEqual(before);
    expect(skipped).toEqual([true, true, true]);
    expect(r.state.step).toBe(0);
    fx.dispose();
  });

  it("CancelEpoch skips the rest of the epoch, validation included, and runs afterEpoch", async () => {
    const seen: string[] = [];
    let batches = 0;
    const cb = inlineRecorder(seen, { afterBatch: () => { if (++batches === 1) throw new CancelEpoch(); } });
    const { fx, trainer, train, validation } = setup([cb]);
    await trainer.fit({ epochs: 2, train, validation });
    const epoch0 = seen.slice(0, seen.indexOf("afterEpoch") + 1);
    // the batch ended by the throw in afterBatch never reached its safe point; the epoch's does run
    expect(epoch0).toEqual(["beforeFit", "beforeEpoch", "beforeTrain", ...BATCH.slice(0, -1), "afterEpoch"]);
    expect(seen.slice(epoch0.length)).toEqual(["epochCheckpoint", ...expectedRun(1, 3, 2).slice(1)]);
    fx.dispose();
  });

  it("CancelFit ends the run; afterFit runs with outcome cancelled", async () => {
    const seen: string[] = [];
    let outcome: string | undefined;
    const cb = inlineRecorder(seen, { afterLoss: () => { throw new CancelFit("enough"); } });
    const watcher: Callback = { name: "watcher", afterFit: (ctx) => void (outcome = `${ctx.outcome.status}:${ctx.outcome.reason}`) };
    const { fx, trainer } = setup([cb, watcher]);
    const r = await trainer.fit({ epochs: 3, train: fx.data(4) });
    expect(seen).toEqual(["beforeFit", "beforeEpoch", "beforeTrain", "beforeBatch", "afterForward", "afterLoss", "afterFit"]);
    expect(r.outcome.status).toBe("cancelled");
    expect(outcome).toBe("cancelled:enough");
    fx.dispose();
  });

  it("an error in a hook fails the run: afterFit runs with the error, then fit rejects", async () => {
    const seen: string[] = [];
    const boom = new Error("boom");
    let outcome: { status: string; error?: unknown } | undefined;
    const cb = inlineRecorder(seen, { afterGradients: () => { throw boom; } });
    const watcher: Callback = { name: "watcher", afterFit: (ctx) => void (outcome = ctx.outcome) };
    const { fx, trainer } = setup([cb, watcher]);
    const err = await trainer.fit({ epochs: 1, train: fx.data(4) }).catch((e: unknown) => e);
    // the plugin's own error, wrapped so the message says who threw where; the original is the cause
    expect(err).toBeInstanceOf(PluginError);
    expect(err).toMatchObject({ code: "PLUGIN_FAILED", plugin: "inline", event: "afterGradients", cause: boom });
    expect((err as Error).message).toBe('plugin "inline" threw in afterGradients: boom');
    expect(seen).toEqual(["beforeFit", "beforeEpoch", "beforeTrain", "beforeBatch", "afterForward", "afterLoss", "afterGradients", "afterFit"]);
    expect(outcome?.status).toBe("failed");
    expect(outcome?.error).toBe(err);
    fx.dispose();
  });

  it("an observer that throws is reported and training continues; observers see every event", async () => {
    const { fx, trainer } = setup([]);
    const errors: string[] = [];
    const seen: string[] = [];
    trainer.bus.onObserverError((e) => errors.push(e.event));
    trainer.on("afterBatch", () => { throw new Error("observer bug"); });
    trainer.on("afterEpoch", async () => { throw new Error("async observer bug"); });
    trainer.on("*", (e) => void seen.push(e.event));
    const r = await trainer.fit({ epochs: 2, train: fx.data(4) });
    await new Promise((res) => setTimeout(res, 0));
    expect(r.outcome.status).toBe("completed");
    expect(r.state.step).toBe(6);
    expect(errors.filter((e) => e === "afterBatch")).toHaveLength(6);
    expect(errors.filter((e) => e === "afterEpoch")).toHaveLength(2);
    expect(seen.filter((e) => e === "afterBatch")).toHaveLength(6);
    fx.dispose();
  });

  it("afterGradients can replace gradients; the replaced tensors are disposed and the new ones applied", async () => {
    const cb: Callback = {
      afterGradients: (ctx) => {
        const out: tf.NamedTensorMap = {};
        for (const [k, g] of Object.entries(ctx.grads!)) out[k] = tf.zerosLike(g);
        return out;
      },
    };
    const { fx, trainer } = setup([cb]);
    const before = fx.model.getWeights().map((w) => w.arraySync());
    const count = tf.memory().numTensors;
    await trainer.fit({ epochs: 1, train: fx.data(4) });
    expect(fx.model.getWeights().map((w) => w.arraySync())).toEqual(before); // zero gradients: SGD leaves weights
    expect(tf.memory().numTensors).toBe(count);
    fx.dispose();
  });

  it("hook contexts expose batch tensors, outputs, loss; plain-number logs from beforeStep on (after the step's one read)", async () => {
    const got: { batch: number; outShape: number[]; loss: number; logLossBefore: number | undefined; logLoss?: number }[] = [];
    const cb: Callback = {
      afterLoss: (ctx) => void got.push({ batch: ctx.batch.xs.shape[0]!, outShape: ctx.outputs!.shape, loss: ctx.loss!.dataSync()[0]!, logLossBefore: ctx.logs["loss"] }),
      beforeStep: (ctx) => void (got[0]!.logLoss = ctx.logs["loss"]),
    };
    const { fx, trainer } = setup([cb]);
    await trainer.fit({ epochs: 1, train: arrayData([{ xs: fx.xs, ys: fx.ys }]) });
    expect(got).toHaveLength(1);
    expect(got[0]!.batch).toBe(12);
    expect(got[0]!.outShape).toEqual([12, 3]);
    expect(got[0]!.logLossBefore).toBeUndefined(); // not read yet: no stale value from another batch
    expect(got[0]!.logLoss).toBeCloseTo(got[0]!.loss, 6);
    fx.dispose();
  });
});
