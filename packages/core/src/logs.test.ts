import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelBatch, FitloopError, Trainer, silentLogger, type Callback, type Logs, type ObserverEvent } from "./index.js";
import { countDeviceReads, expectNoLeaks, tinyFixture } from "./testing/index.js";

function globalNorm(grads: Readonly<tf.NamedTensorMap>): tf.Scalar {
  return tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
}

describe("ctx.log: values plugins add to the logs", () => {
  it("a tensor logged in afterGradients is read with the loss in the step's one device read, and shows from beforeStep on", async () => {
    const fx = tinyFixture({ samples: 32 });
    const seenInBeforeStep: number[] = [];
    const manual: number[] = [];
    const plugin: Callback = {
      name: "Norm",
      afterGradients: (ctx) => {
        const n = globalNorm(ctx.grads!);
        manual.push(Math.sqrt(Object.values(ctx.grads!).reduce((s, g) => s + tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]!), 0)));
        ctx.log("grad_norm", n);
      },
      beforeStep: (ctx) => void seenInBeforeStep.push(ctx.logs["grad_norm"]!),
    };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks: [plugin], logger: silentLogger });
    const r = await t.fit({ epochs: 1, train: fx.data(8) });
    expect(seenInBeforeStep).toHaveLength(4);
    seenInBeforeStep.forEach((v, i) => expect(v).toBeCloseTo(manual[i]!, 5));
    expect(r.state.batchLogs["grad_norm"]).toBe(seenInBeforeStep[3]);
    // epoch value: mean over the batches (all of equal size here)
    expect(r.state.history[0]!.logs["grad_norm"]).toBeCloseTo(seenInBeforeStep.reduce((a, b) => a + b) / 4, 6);
    fx.dispose();
  });

  it("one device read per step with loss, a metric and two logged tensors (as without them)", async () => {
    const fx = tinyFixture({ samples: 32 });
    const reads = countDeviceReads();
    const perStep: number[] = [];
    let atStart = 0;
    // runs first in beforeBatch and last in afterBatch: brackets the whole step
    const bracket: Callback = { name: "Bracket", order: -1e9, beforeBatch: () => void (atStart = reads.count), afterBatch: () => void perStep.push(reads.count - atStart) };
    const plugin: Callback = {
      afterGradients: (ctx) => {
        ctx.log("a", tf.scalar(1));
        ctx.log("b", tf.sum(ctx.outputs!) as tf.Scalar);
      },
    };
    const bare = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks: [bracket], logger: silentLogger });
    const withLogs = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks: [bracket, plugin], logger: silentLogger });
    await bare.fit({ epochs: 2, train: fx.data(8) });
    const bareSteps = perStep.splice(0);
    const b = { result: await withLogs.fit({ epochs: 2, train: fx.data(8) }) };
    reads.stop();
    expect(bareSteps).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    expect(perStep).toEqual(bareSteps);
    expect(b.result.state.history[1]!.logs["a"]).toBe(1);
    fx.dispose();
  });

  it("reduce: mean (default), sum, min, max, last over the epoch; numbers can be logged after the read", async () => {
    const fx = tinyFixture({ samples: 32 });
    const plugin: Callback = {
      beforeBatch: (ctx) => ctx.log("i_mean", ctx.state.batchIndex),
      afterStep: (ctx) => {
        ctx.log("i_sum", ctx.state.batchIndex, { reduce: "sum" });
        ctx.log("i_min", ctx.state.batchIndex, { reduce: "min" });
      },
      afterBatch: (ctx) => {
        ctx.log("i_max", tf.scalar(0).size * ctx.state.batchIndex, { reduce: "max" });
        ctx.log("i_last", ctx.state.batchIndex * 10, { reduce: "last" });
      },
    };
    const batchLogs: Logs[] = [];
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [plugin], logger: silentLogger });
    t.on("afterBatch", (e) => void batchLogs.push(e.logs));
    const r = await t.fit({ epochs: 1, train: fx.data(8) });
    expect(r.state.history[0]!.logs).toMatchObject({ i_mean: 1.5, i_sum: 6, i_min: 0, i_max: 3, i_last: 30 });
    await new Promise((res) => setTimeout(res, 0)); // observers run on a microtask
    expect(batchLogs.map((l) => l["i_last"])).toEqual([0, 10, 20, 30]);
    fx.dispose();
  });

  it("epoch values from epoch hooks land in the epoch logs and its history record, also from afterEpoch", async () => {
    const fx = tinyFixture({ samples: 16 });
    const plugin: Callback = {
      beforeEpoch: (ctx) => ctx.log("planned", ctx.state.epoch * 2),
      afterEpoch: (ctx) => ctx.log("decided", ctx.state.epoch + 0.5),
    };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [plugin], logger: silentLogger });
    const r = await t.fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) });
    expect(r.state.history.map((h) => [h.logs["planned"], h.logs["decided"], typeof h.logs["val_loss"]])).toEqual([
      [0, 0.5, "number"],
      [2, 1.5, "number"],
    ]);
    fx.dispose();
  });

  it("bad calls are typed errors that name the plugin, the event and the problem", async () => {
    const cases: [string, Callback, RegExp][] = [
      ["reserved", { name: "P", beforeStep: (ctx) => ctx.log("loss", 1) }, /"P" in beforeStep: "loss" is written by the loop itself/],
      ["val reserved", { name: "P", afterEpoch: (ctx) => ctx.log("val_acc", 1) }, /"val_acc" is written by the loop/],
      ["tensor after read", { name: "P", afterStep: (ctx) => ctx.log("x", tf.scalar(1)) }, /this step's device read is done/],
      ["beforeFit", { name: "P", beforeFit: (ctx) => ctx.log("x", 1) }, /beforeFit has neither/],
      ["not scalar", { name: "P", afterGradients: (ctx) => ctx.log("x", tf.ones([2]) as unknown as tf.Scalar) }, /must be a live scalar tensor, got shape \[2\]/],
      ["string", { name: "P", afterBatch: (ctx) => ctx.log("x", "1" as unknown as number) }, /must be a number or a scalar tensor, got string/],
      ["empty name", { name: "P", afterBatch: (ctx) => ctx.log("", 1) }, /non-empty string/],
      ["bad reduce", { name: "P", afterBatch: (ctx) => ctx.log("x", 1, { reduce: "median" as "mean" }) }, /reduce must be mean, sum, min, max or last/],
      ["epoch tensor", { name: "P", afterEpoch: (ctx) => ctx.log("x", tf.scalar(1)) }, /epoch values must be numbers/],
      ["val batch", { name: "P", afterValBatch: (ctx) => ctx.log("x", 1) }, /afterValBatch has neither/],
    ];
    for (const [label, cb, message] of cases) {
      const fx = tinyFixture({ samples: 8 });
      const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks: [cb], logger: silentLogger });
      const err = await t.fit({ epochs: 1, train: fx.data(8), validation: fx.data(8) }).then(() => undefined, (e: unknown) => e);
      expect(err, label).toBeInstanceOf(FitloopError);
      expect((err as FitloopError).code, label).toBe("INVALID_LOG");
      expect((err as Error).message, label).toMatch(message);
      fx.dispose();
    }
  });

  it("no leak: logged tensors are disposed on success, when the batch is cancelled and when a later hook throws", async () => {
    const fx = tinyFixture({ samples: 16 });
    let mode: "ok" | "cancel" | "throw" = "ok";
    const plugin: Callback = {
      afterGradients: (ctx) => {
        ctx.log("n", tf.sum(ctx.outputs!) as tf.Scalar);
        ctx.log("n", tf.mean(ctx.outputs!) as tf.Scalar); // the same name twice: last wins, first disposed
        if (mode === "cancel") throw new CancelBatch();
        if (mode === "throw") throw new Error("boom");
      },
    };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", callbacks: [plugin], logger: silentLogger });
    for (const m of ["ok", "cancel", "throw"] as const) {
      mode = m;
      await expectNoLeaks(() => t.fit({ epochs: 1, train: fx.data(4) }).catch(() => undefined));
    }
    fx.dispose();
  });

  it("hasLog tells whether this step has a value for a name (before and after the read)", async () => {
    const fx = tinyFixture({ samples: 8 });
    const seen: boolean[] = [];
    const first: Callback = { name: "First", order: 0, afterGradients: (ctx) => ctx.log("grad_norm", globalNorm(ctx.grads!)) };
    const second: Callback = {
      name: "Second",
      order: 1,
      beforeBatch: (ctx) => void seen.push(ctx.hasLog("grad_norm")),
      afterGradients: (ctx) => void seen.push(ctx.hasLog("grad_norm"), ctx.hasLog("other")),
      beforeStep: (ctx) => void seen.push(ctx.hasLog("grad_norm")),
    };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [first, second], logger: silentLogger });
    await t.fit({ epochs: 1, train: fx.data(8) });
    expect(seen).toEqual([false, true, false, true]);
    fx.dispose();
  });

  it("observers receive plugin logs; stop requests carry the plugin's details", async () => {
    const fx = tinyFixture({ samples: 16 });
    const events: ObserverEvent[] = [];
    const plugin: Callback = {
      name: "Stopper",
      afterBatch: (ctx) => ctx.log("k", 7),
      afterEpoch: (ctx) => ctx.requestStop("enough", { bestEpoch: 0, monitor: "loss" }),
    };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [plugin], logger: silentLogger });
    t.on("afterBatch", (e) => void events.push(e));
    const r = await t.fit({ epochs: 3, train: fx.data(8) });
    await new Promise((res) => setTimeout(res, 0));
    expect(events.every((e) => e.logs["k"] === 7)).toBe(true);
    expect(r.outcome.stopRequests[0]).toMatchObject({ by: "Stopper", reason: "enough", details: { bestEpoch: 0, monitor: "loss" } });
    fx.dispose();
  });

  it("ownership: tensors the loop owns, the same tensor twice, a logged tensor returned as a gradient, logging inside a tidy: no early dispose, no leak", async () => {
    const fx = tinyFixture({ samples: 16, hidden: 1 }); // hidden 1: some gradients are scalars, so they can be logged
    const read: number[] = [];
    const plugin: Callback = {
      name: "Owner",
      afterLoss: (ctx) => {
        ctx.log("raw_loss", ctx.loss!); // the loop's own loss: logged as a clone
        ctx.log("out", tf.sum(ctx.outputs!) as tf.Scalar);
      },
      afterGradients: (ctx) => {
        const scalarGrad = Object.entries(ctx.grads!).find(([, g]) => g.size === 1)!;
        ctx.log("g", scalarGrad[1] as tf.Scalar); // a gradient the loop disposes itself
        const t = tf.scalar(3);
        ctx.log("a", t);
        ctx.log("b", t); // the same tensor under a second name
        ctx.log("a", 1); // and the first name replaced by a number
        tf.tidy(() => ctx.log("in_tidy", tf.scalar(5))); // logged from inside a plugin's own tidy
        const replaced = tf.mul(scalarGrad[1], 1) as tf.Scalar;
        ctx.log("replacement", replaced); // then handed to the loop as a gradient too
        return { ...ctx.grads!, [scalarGrad[0]]: replaced };
      },
      afterStep: (ctx) => void read.push(ctx.loss!.dataSync()[0]!), // still alive after being logged
    };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [plugin], logger: silentLogger });
    await expectNoLeaks(() => t.fit({ epochs: 1, train: fx.data(8) }));
    const r = await t.fit({ epochs: 1, train: fx.data(8) });
    expect(r.state.batchLogs).toMatchObject({ a: 1, b: 3, in_tidy: 5 });
    expect(r.state.batchLogs["raw_loss"]).toBeCloseTo(r.state.batchLogs["loss"]!, 6);
    expect(read.length).toBeGreaterThan(0);
    fx.dispose();
  });

  it("two plugins cannot log one name in a step (two meanings under one key)", async () => {
    const fx = tinyFixture({ samples: 8 });
    const a: Callback = { name: "A", afterGradients: (ctx) => ctx.log("grad_norm", tf.scalar(1)) };
    const b: Callback = { name: "B", afterGradients: (ctx) => ctx.log("grad_norm", tf.scalar(2)) };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [a, b], logger: silentLogger });
    await expect(t.fit({ epochs: 1, train: fx.data(8) })).rejects.toThrow(/ctx.log from "B" in afterGradients: "grad_norm" was already logged in this step by "A"/);
    await expectNoLeaks(() => t.fit({ epochs: 1, train: fx.data(8) }).catch(() => undefined));
    fx.dispose();
  });
});

describe("ctx.skipStep", () => {
  it("skips the update but every other hook still runs; the reasons are the cancellation's", async () => {
    const fx = tinyFixture({ samples: 16 });
    const before = fx.model.getWeights().map((w) => Array.from(w.dataSync()));
    const seen: string[] = [];
    const skipper: Callback = { name: "Skipper", order: 0, afterGradients: (ctx) => ctx.skipStep("not this one") };
    const later: Callback = { name: "Later", order: 10, beforeStep: () => void seen.push("beforeStep"), afterStep: (ctx) => void seen.push(`afterStep skipped=${ctx.stepSkipped}`) };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(1), loss: "sparseCategoricalCrossentropy", callbacks: [skipper, later], logger: silentLogger });
    const r = await t.fit({ epochs: 1, train: fx.data(8) });
    expect(seen).toEqual(["beforeStep", "afterStep skipped=true", "beforeStep", "afterStep skipped=true"]);
    expect(r.state.step).toBe(0);
    expect(fx.model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
    const late: Callback = { name: "Late", afterStep: (ctx) => ctx.skipStep("too late") };
    const t2 = new Trainer({ model: fx.model, optimizer: tf.train.sgd(1), loss: "sparseCategoricalCrossentropy", callbacks: [late], logger: silentLogger });
    await expect(t2.fit({ epochs: 1, train: fx.data(8) })).rejects.toThrow(/ctx.skipStep from "Late" in afterStep: a step can be skipped from afterForward to beforeStep/);
    fx.dispose();
  });
});
