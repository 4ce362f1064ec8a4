import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { MissingMonitorError, OptionsError, ORDER, Trainer, resolveLoss, silentLogger, type Callback, type LossFn } from "@fitloop/core";
import { expectNoLeaks, failingPlugins, tinyFixture } from "@fitloop/core/testing";
import { NonFiniteValueError, TerminateOnNaN, findNonFinite } from "./index.js";

type Fixture = ReturnType<typeof tinyFixture>;
const weightsOf = (fx: Fixture) => fx.model.getWeights().map((w) => Array.from(w.dataSync()));
const ce = resolveLoss("sparseCategoricalCrossentropy");

/** The real loss, times NaN (or Infinity) on the chosen global batches. */
function lossWithNaNAt(batches: number[], value = Number.NaN): { loss: LossFn; tracker: Callback } {
  let current = -1;
  return {
    loss: (y, p) => (batches.includes(current) ? tf.mul(ce(y, p), value) : ce(y, p)),
    tracker: { name: "Tracker", order: ORDER.FIRST, beforeBatch: (ctx) => void (current = ctx.state.globalBatch) },
  };
}

describe("TerminateOnNaN", () => {
  it("a real divergence (SGD at lr 1e38): stops on the first non-finite loss, names the step and value, keeps the last finite weights", async () => {
    const fx = tinyFixture({ samples: 16 });
    const guard = new TerminateOnNaN();
    let lastGood: number[][] = [];
    const keep: Callback = { name: "Keep", afterStep: (ctx) => void (ctx.stepSkipped || (lastGood = weightsOf(fx))) };
    const r = await new Trainer({ model: fx.model, optimizer: tf.train.sgd(1e38), loss: "sparseCategoricalCrossentropy", callbacks: [guard, keep], logger: silentLogger }).fit({ epochs: 20, train: fx.data(4) });
    expect(r.outcome.status).toBe("stopped");
    const f = guard.finding!;
    expect(f.key).toBe("loss");
    expect(Number.isFinite(f.value)).toBe(false);
    expect(r.outcome.stopRequests[0]!.reason).toBe(`loss is ${f.value} at step ${f.step} (epoch ${f.epoch}, batch ${f.batch}); that step was not applied`);
    expect(r.outcome.stopRequests[0]!.details).toEqual({ key: "loss", value: String(f.value), step: f.step, epoch: f.epoch, batch: f.batch });
    // the weights after the last applied step: the bad one changed nothing
    expect(lastGood.length).toBeGreaterThan(0);
    expect(weightsOf(fx)).toEqual(lastGood);
    expect(r.state.step).toBe(f.step); // no optimizer step after the last good one
    fx.dispose();
  });

  it("a graceful stop: the rest of that epoch's loop (validation, afterEpoch, afterFit) still runs", async () => {
    const fx = tinyFixture({ samples: 32 });
    const { loss, tracker } = lossWithNaNAt([5], Number.POSITIVE_INFINITY);
    const seen: string[] = [];
    const probe: Callback = { name: "Probe", afterValidate: () => void seen.push("afterValidate"), afterEpoch: () => void seen.push("afterEpoch"), epochCheckpoint: () => void seen.push("epochCheckpoint"), afterFit: (ctx) => void seen.push(`afterFit ${ctx.outcome.status}`) };
    const guard = new TerminateOnNaN();
    const r = await new Trainer({ model: fx.model, optimizer: tf.train.adam(0.01), loss, callbacks: [guard, tracker, probe], logger: silentLogger }).fit({ epochs: 5, train: fx.data(8), validation: fx.data(32) });
    expect(guard.finding).toMatchObject({ key: "loss", value: Number.POSITIVE_INFINITY, step: 5, epoch: 1, batch: 1 });
    // the stopped epoch is not complete: no epoch safe point for it (its safe point was the batch's)
    expect(seen).toEqual(["afterValidate", "afterEpoch", "epochCheckpoint", "afterValidate", "afterEpoch", "afterFit stopped"]);
    expect(r.state.globalBatch).toBe(6); // stopped after the bad batch
    fx.dispose();
  });

  it('action "throw": a typed error with the finding; afterFit sees the failure; the bad step not applied', async () => {
    const fx = tinyFixture({ samples: 16 });
    const { loss, tracker } = lossWithNaNAt([2]);
    let good: number[][] = [];
    let status = "";
    const probe: Callback = { name: "Probe", beforeBatch: (ctx) => void (ctx.state.globalBatch === 2 && (good = weightsOf(fx))), afterFit: (ctx) => void (status = ctx.outcome.status) };
    const err = await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss, callbacks: [new TerminateOnNaN({ action: "throw" }), tracker, probe], logger: silentLogger }).fit({ epochs: 2, train: fx.data(4) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteValueError);
    expect(err).toMatchObject({ code: "NON_FINITE_VALUE", finding: { key: "loss", step: 2, epoch: 0, batch: 2 } });
    expect((err as Error).message).toBe("TerminateOnNaN: loss is NaN at step 2 (epoch 0, batch 2); that step was not applied");
    expect(status).toBe("failed");
    expect(weightsOf(fx)).toEqual(good);
    fx.dispose();
  });

  it("gradients: true also watches the gradient norm (computed here unless a clipping plugin logged it)", async () => {
    const fx = tinyFixture({ samples: 16 });
    const poison: Callback = { name: "Poison", order: ORDER.DEFAULT, afterGradients: (ctx) => (ctx.state.globalBatch === 1 ? Object.fromEntries(Object.entries(ctx.grads!).map(([k, g]) => [k, tf.mul(g, Number.NaN)])) : undefined) };
    const guard = new TerminateOnNaN({ gradients: true });
    const r = await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [guard, poison], logger: silentLogger }).fit({ epochs: 2, train: fx.data(4) });
    expect(guard.finding).toMatchObject({ key: "grad_norm", step: 1 }); // the loss was finite
    expect(r.outcome.status).toBe("stopped");
    expect(r.state.history[0]!.logs["grad_norm"]).toBeNaN();

    // a clipping plugin at ORDER.GRADIENT logged the norm already: the guard reads that one
    const clipper: Callback = { name: "Clipper", order: ORDER.GRADIENT, afterGradients: (ctx) => ctx.log("grad_norm", 7) };
    const r2 = await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [new TerminateOnNaN({ gradients: true }), clipper], logger: silentLogger }).fit({ epochs: 1, train: fx.data(4) });
    expect(r2.state.history[0]!.logs["grad_norm"]).toBe(7);
    fx.dispose();
  });

  it("with gradient clipping that skips non-finite steps, the NaN loss still stops the run (clipping skips the update, the guard still sees the step)", async () => {
    const fx = tinyFixture({ samples: 16 });
    const { loss, tracker } = lossWithNaNAt([2]);
    // clipping's non-finite policy, as @fitloop/grad-clip's "skip" does it: skip the update, let the others see the step
    const clipLike: Callback = { name: "ClipLike", order: ORDER.GRADIENT, beforeStep: (ctx) => void (Number.isFinite(ctx.logs["loss"]) || ctx.skipStep("non-finite gradients")) };
    const guard = new TerminateOnNaN();
    const r = await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss, callbacks: [clipLike, guard, tracker], logger: silentLogger }).fit({ epochs: 3, train: fx.data(4) });
    expect(r.outcome.status).toBe("stopped");
    expect(guard.finding).toMatchObject({ key: "loss", step: 2 });
    fx.dispose();
  });

  it("steps another plugin asked to skip (gradient accumulation's micro-batches): no gradient norm, a missing watched key is not an error, the loss is still checked", async () => {
    const fx = tinyFixture({ samples: 16 });
    const skipFirst3: Callback = { name: "Skipper", order: ORDER.DEFAULT, afterGradients: (ctx) => void (ctx.state.batchIndex < 3 && ctx.skipStep("accumulating")) };
    const poison: Callback = { name: "Poison", order: ORDER.FIRST, afterGradients: (ctx) => (ctx.state.batchIndex === 1 ? Object.fromEntries(Object.entries(ctx.grads!).map(([k, g]) => [k, tf.mul(g, Number.NaN)])) : undefined) };
    const norms: (number | undefined)[] = [];
    const watchLogs: Callback = { name: "Watch", afterBatch: (ctx) => void norms.push(ctx.logs["grad_norm"]) };
    const guard = new TerminateOnNaN({ gradients: true });
    const r = await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [guard, skipFirst3, poison, watchLogs], logger: silentLogger }).fit({ epochs: 1, train: fx.data(4) });
    expect(r.outcome.status).toBe("completed"); // the NaN gradients of skipped batch 1 were never going to be applied
    expect(guard.finding).toBeUndefined();
    expect(norms.map((n) => n === undefined)).toEqual([true, true, true, false]);
    expect(norms[3]).toBeGreaterThan(0);

    // a clipping plugin that logs grad_norm only on steps it measures: watching it explicitly is fine on skipped steps
    const clipper: Callback = { name: "Clipper", order: ORDER.GRADIENT, afterGradients: (ctx) => void (ctx.skipRequested || ctx.log("grad_norm", 3)) };
    const r2 = await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [new TerminateOnNaN({ watch: ["loss", "grad_norm"] }), skipFirst3, clipper], logger: silentLogger }).fit({ epochs: 1, train: fx.data(4) });
    expect(r2.outcome.status).toBe("completed");
    expect(r2.state.history[0]!.logs["grad_norm"]).toBe(3);

    // the loss of a skipped batch is still checked
    const { loss, tracker } = lossWithNaNAt([1]);
    const g3 = new TerminateOnNaN({ gradients: true });
    const r3 = await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss, callbacks: [g3, skipFirst3, tracker], logger: silentLogger }).fit({ epochs: 2, train: fx.data(4) });
    expect(r3.outcome.status).toBe("stopped");
    expect(g3.finding).toMatchObject({ key: "loss", step: 0, batch: 1 });
    fx.dispose();
  });

  it("a watched key missing from the batch logs is an error naming the keys that are there", async () => {
    const fx = tinyFixture({ samples: 8 });
    const err = await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks: [new TerminateOnNaN({ watch: ["loss", "grad_norm"] })], logger: silentLogger }).fit({ epochs: 1, train: fx.data(4) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingMonitorError);
    expect((err as Error).message).toBe('TerminateOnNaN monitors "grad_norm", but the logs of this batch have no such key. Available: loss, acc.');
    fx.dispose();
  });

  it("findNonFinite: the first non-finite watched value, in watch order", () => {
    expect(findNonFinite({ loss: 1, acc: Number.NaN }, ["loss"], "x")).toBeUndefined();
    expect(findNonFinite({ loss: Number.NEGATIVE_INFINITY, acc: Number.NaN }, ["acc", "loss"], "x")).toEqual({ key: "acc", value: Number.NaN });
  });

  it("options: one OptionsError naming every problem", () => {
    try {
      new TerminateOnNaN({ watch: [], action: "warn" as "stop", gradients: "yes" as never, every: 2 } as never);
      expect.fail("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(OptionsError);
      const msg = (e as Error).message;
      expect(msg).toMatch(/watch: must name at least one batch log/);
      expect(msg).toMatch(/action: must be "stop"/);
      expect(msg).toMatch(/gradients: must be true or false/);
      expect(msg).toMatch(/unknown option "every"/);
    }
  });

  it("no tensor leaks: success, a tripped stop, a tripped throw, a throw in every hook of another plugin, a cancel", async () => {
    const fx = tinyFixture({ samples: 16 });
    const opt = tf.train.adam(0.01);
    const { loss, tracker } = lossWithNaNAt([3]);
    const run = (callbacks: Callback[], lossFn: LossFn | "sparseCategoricalCrossentropy" = "sparseCategoricalCrossentropy") =>
      new Trainer({ model: fx.model, optimizer: opt, loss: lossFn, callbacks, logger: silentLogger }).fit({ epochs: 2, train: fx.data(4), validation: fx.data(16) });
    await expectNoLeaks(() => run([new TerminateOnNaN({ gradients: true })]));
    await expectNoLeaks(() => run([new TerminateOnNaN({ gradients: true }), tracker], loss));
    await expectNoLeaks(() => run([new TerminateOnNaN({ action: "throw" }), tracker], loss).catch(() => undefined));
    for (const { plugin: failing } of failingPlugins()) await expectNoLeaks(() => run([new TerminateOnNaN({ gradients: true }), failing]).catch(() => undefined), { warmup: 1, iterations: 2 });
    fx.dispose();
  });
});
