import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelEpoch, CancelFit, MissingMonitorError, resolveLoss, type Callback } from "@fitloop/core";
import { tinyFixture } from "@fitloop/core/testing";
import { EarlyStopping } from "./index.js";
import { probe, recordingLogger, scripted, stopAt, trainer, weightsOf } from "./helpers.fixture.js";

// the best epoch is 1; no later epoch improves
const PEAK_AT_1 = [1, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99];

describe("stopping in a real run", () => {
  it("stops at Keras' epoch; the outcome and `result` say why, when, and the best epoch and value", async () => {
    const fx = tinyFixture({ samples: 16 });
    const es = new EarlyStopping({ monitor: "score", mode: "min", patience: 3 });
    const t = trainer(fx, [es, scripted([1.0, 0.8, 0.9, 0.85, 0.79, 0.81, 0.82, 0.83, 0.5, 0.4])]);
    const r = await t.fit({ epochs: 10, train: fx.data(8) });
    // the trace of step.test.ts: best .79 at e4, e5..e7 do not improve -> stop at the end of e7
    expect(r.outcome.status).toBe("stopped");
    expect(r.state.history).toHaveLength(8);
    const reason = "score did not improve by more than 0 for 3 epochs; best 0.79 at epoch 4";
    expect(r.outcome.stopRequests).toEqual([
      { by: "EarlyStopping", reason, epoch: 7, step: 16, details: { kind: "patience", monitor: "score", value: 0.83, stoppedEpoch: 7, wait: 3, bestEpoch: 4, bestValue: 0.79 } },
    ]);
    expect(r.outcome.reason).toBe(`EarlyStopping: ${reason}`);
    expect(es.result).toEqual({ stopped: true, stoppedEpoch: 7, bestEpoch: 4, bestValue: 0.79, reason, kind: "patience" });
    fx.dispose();
  });

  it("a run that does not stop: result says so; bestEpoch/bestValue are undefined before any finite value", async () => {
    const fx = tinyFixture({ samples: 16 });
    const es = new EarlyStopping({ monitor: "score", mode: "min", patience: 5, checkFinite: false });
    expect(es.result).toEqual({ stopped: false, stoppedEpoch: undefined, bestEpoch: undefined, bestValue: undefined, reason: undefined, kind: undefined });
    const r = await trainer(fx, [es, scripted([Number.NaN, 2, 1])]).fit({ epochs: 3, train: fx.data(8) });
    expect(r.outcome.status).toBe("completed");
    expect(es.result).toMatchObject({ stopped: false, bestEpoch: 2, bestValue: 1 });
    fx.dispose();
  });

  it("on real val_loss with restoreBestWeights: the model ends with the best epoch's val_loss", async () => {
    const fx = tinyFixture({ samples: 48 });
    const es = new EarlyStopping({ patience: 2, minDelta: 0.02, restoreBestWeights: true });
    const r = await trainer(fx, [es]).fit({ epochs: 60, train: fx.data(8), validation: fx.data(48) });
    expect(r.outcome.status).toBe("stopped");
    const { bestEpoch, bestValue, stoppedEpoch } = es.result;
    expect(stoppedEpoch).toBe(bestEpoch! + 2);
    expect(bestValue).toBe(r.state.history[bestEpoch!]!.logs["val_loss"]);
    const after = tf.tidy(() => tf.mean(resolveLoss("sparseCategoricalCrossentropy")(fx.ys, fx.model.predict(fx.xs) as tf.Tensor)).dataSync()[0]!);
    expect(after).toBeCloseTo(bestValue!, 5);
    expect(after).not.toBeCloseTo(r.state.history.at(-1)!.logs["val_loss"]!, 5);
    es.dispose();
    fx.dispose();
  });

  it("a monitor missing from the logs is a MissingMonitorError naming the keys that are there; a val_ monitor without validation data fails before the first step", async () => {
    const fx = tinyFixture({ samples: 16 });
    const before = weightsOf(fx.model);
    const err = await trainer(fx, [new EarlyStopping()]).fit({ epochs: 3, train: fx.data(8) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingMonitorError);
    expect((err as Error).message).toBe('EarlyStopping monitors "val_loss", but the logs of a fit() without validation data have no such key (val_* metrics need `validation` data in fit()).');
    expect(weightsOf(fx.model)).toEqual(before); // no step was taken
    const typo = await trainer(fx, [new EarlyStopping({ monitor: "val_accuracy" })]).fit({ epochs: 3, train: fx.data(8), validation: fx.data(16) }).catch((e: unknown) => e);
    expect((typo as Error).message).toBe('EarlyStopping monitors "val_accuracy", but the logs at the end of epoch 0 have no such key. Available: loss, acc, lr, val_loss, val_acc.');
    // only from startFromEpoch on: a value that appears at epoch 2 is fine; one that is missing at epoch 1 is not
    const late: Callback = { name: "Late", afterTrain: (ctx) => void (ctx.state.epoch >= 2 && ctx.log("score", 1)) };
    await expect(trainer(fx, [new EarlyStopping({ monitor: "score", mode: "min", startFromEpoch: 2 }), late]).fit({ epochs: 4, train: fx.data(8) })).resolves.toBeDefined();
    await expect(trainer(fx, [new EarlyStopping({ monitor: "score", mode: "min", startFromEpoch: 1 }), late]).fit({ epochs: 4, train: fx.data(8) })).rejects.toThrow(/at the end of epoch 1 have no such key\. Available: loss, acc, lr\./);
    fx.dispose();
  });

  it("an epoch cut short by CancelEpoch (no complete logs) is not looked at", async () => {
    const fx = tinyFixture({ samples: 16 });
    const es = new EarlyStopping({ patience: 1 });
    const cancel: Callback = { name: "Cancel", afterTrain: (ctx) => { if (ctx.state.epoch === 1) throw new CancelEpoch("skip validation"); } };
    const r = await trainer(fx, [es, cancel]).fit({ epochs: 3, train: fx.data(8), validation: fx.data(16) });
    // epoch 1's logs have no val_loss (validation never ran): looking at them would be a MissingMonitorError
    expect(r.state.history.map((h) => h.epoch)).toEqual([0, 2]);
    expect(r.outcome.status).toBe("completed");
    expect(es.result).toMatchObject({ stopped: false, bestEpoch: 2 });
    expect(es.stateDict()).toMatchObject({ wait: 0 });
    fx.dispose();
  });

  it("two instances with their own names and stateKeys coexist; each decides on its own monitor", async () => {
    const fx = tinyFixture({ samples: 16 });
    const onA = new EarlyStopping({ monitor: "a", mode: "min", patience: 5, name: "StopOnA", stateKey: "es-a" });
    const onB = new EarlyStopping({ monitor: "b", mode: "max", patience: 1, name: "StopOnB", stateKey: "es-b" });
    const t = trainer(fx, [onA, onB, scripted([3, 2, 1, 0.5], "a"), scripted([0.5, 0.6, 0.6, 0.7], "b")]);
    const r = await t.fit({ epochs: 4, train: fx.data(8) });
    // b: e2 0.6 is not > 0.6, wait 1 >= 1 -> stop at e2; a is still improving
    expect(r.outcome.stopRequests.map((s) => [s.by, s.epoch])).toEqual([["StopOnB", 2]]);
    expect(onA.result).toMatchObject({ stopped: false, bestEpoch: 2, bestValue: 1 });
    expect(onB.result).toMatchObject({ stopped: true, stoppedEpoch: 2, bestEpoch: 1, bestValue: 0.6 });
    const plugins = t.stateDict().plugins;
    expect(plugins["es-a"]).toMatchObject({ wait: 0, best: 1, bestEpoch: 2, stoppedEpoch: null });
    expect(plugins["es-b"]).toMatchObject({ wait: 1, best: 0.6, bestEpoch: 1, stoppedEpoch: 2, stop: { kind: "patience" } });
    fx.dispose();
  });

  it("verbose: one line when it stops and one when it restores", async () => {
    const fx = tinyFixture({ samples: 16 });
    const logger = recordingLogger();
    const es = new EarlyStopping({ monitor: "score", mode: "min", patience: 2, restoreBestWeights: true, verbose: true });
    await trainer(fx, [es, scripted(PEAK_AT_1)], { logger }).fit({ epochs: 8, train: fx.data(8) });
    expect(logger.lines).toEqual([
      "EarlyStopping: stopping at the end of epoch 3: score did not improve by more than 0 for 2 epochs; best 0.5 at epoch 1",
      "EarlyStopping: restored the weights of the best epoch, 1 (score 0.5); the run stopped",
    ]);
    es.dispose();
    fx.dispose();
  });
});

describe("restoreBestWeights: the best epoch's weights, whatever ended the run", () => {
  async function runWith(extra: Callback[], epochs = 8) {
    const fx = tinyFixture({ samples: 16, withBatchNormAndDropout: true });
    const es = new EarlyStopping({ monitor: "score", mode: "min", patience: 10, restoreBestWeights: true });
    const p = probe();
    const t = trainer(fx, [es, p, scripted(PEAK_AT_1), ...extra]);
    const outcome = await t.fit({ epochs, train: fx.data(8) }).then((r) => r.outcome, (e: unknown) => e);
    return { fx, es, p, outcome, weights: weightsOf(fx.model) };
  }

  it("completed: every weight, trainable and not (BatchNorm's moving statistics), is the best epoch's", async () => {
    const { fx, es, p, outcome, weights } = await runWith([], 5);
    expect(outcome).toMatchObject({ status: "completed" });
    expect(fx.model.weights.length).toBeGreaterThan(fx.model.trainableWeights.length); // moving mean and variance
    expect(weights).toEqual(p.at.get(1));
    expect(weights).not.toEqual(p.at.get(4));
    expect(es.bestWeights().map((w) => Array.from(w))).toEqual(p.at.get(1));
    es.dispose();
    fx.dispose();
  });

  it("stopped by another plugin (Keras 2 restored only when it stopped the run itself; tfjs cannot restore)", async () => {
    const { fx, es, p, outcome, weights } = await runWith([stopAt(3)]);
    expect(outcome).toMatchObject({ status: "stopped", stopRequests: [{ by: "Stopper" }] });
    expect(es.result.stopped).toBe(false);
    expect(weights).toEqual(p.at.get(1));
    expect(weights).not.toEqual(p.at.get(3));
    es.dispose();
    fx.dispose();
  });

  it("failed (another plugin throws) and cancelled (CancelFit)", async () => {
    const boom: Callback = { name: "Boom", beforeEpoch: (ctx) => { if (ctx.state.epoch === 4) throw new Error("boom"); } };
    const failed = await runWith([boom]);
    expect((failed.outcome as Error).message).toBe('plugin "Boom" threw in beforeEpoch: boom');
    expect(failed.weights).toEqual(failed.p.at.get(1));
    expect(failed.weights).not.toEqual(failed.p.at.get(3));
    const cancel: Callback = { name: "Cancel", afterBatch: (ctx) => { if (ctx.state.epoch === 3) throw new CancelFit("user"); } };
    const cancelled = await runWith([cancel]);
    expect(cancelled.outcome).toMatchObject({ status: "cancelled" });
    expect(cancelled.weights).toEqual(cancelled.p.at.get(1));
    for (const r of [failed, cancelled]) {
      r.es.dispose();
      r.fx.dispose();
    }
  });

  it("the first monitored epoch is copied even if no later epoch improves on it (startFromEpoch: earlier epochs are not candidates)", async () => {
    const fx = tinyFixture({ samples: 16 });
    const es = new EarlyStopping({ monitor: "score", mode: "min", patience: 10, startFromEpoch: 2, restoreBestWeights: true });
    const p = probe();
    await trainer(fx, [es, p, scripted([0.1, 0.1, 5, 6, 7])]).fit({ epochs: 5, train: fx.data(8) });
    expect(es.result).toMatchObject({ stopped: false, bestEpoch: 2, bestValue: 5 });
    expect(weightsOf(fx.model)).toEqual(p.at.get(2));
    es.dispose();
    fx.dispose();
  });

  it("no copy, no restore: a run with only NaN values keeps its last weights (Keras would restore epoch 0's)", async () => {
    const fx = tinyFixture({ samples: 16 });
    const es = new EarlyStopping({ monitor: "score", mode: "min", patience: 1, checkFinite: false, restoreBestWeights: true });
    const p = probe();
    await trainer(fx, [es, p, scripted([Number.NaN, Number.NaN, Number.NaN])]).fit({ epochs: 3, train: fx.data(8) });
    expect(es.result).toMatchObject({ stopped: true, stoppedEpoch: 1, bestEpoch: undefined });
    expect(weightsOf(fx.model)).toEqual(p.at.get(1));
    expect(es.bestWeights()).toEqual([]);
    fx.dispose();
  });

  it("the model trains on after a restore and after dispose(); a new fit starts afresh (Keras' on_train_begin)", async () => {
    const fx = tinyFixture({ samples: 16 });
    const es = new EarlyStopping({ monitor: "score", mode: "min", patience: 2, restoreBestWeights: true });
    const p = probe();
    const t = trainer(fx, [es, p, scripted(PEAK_AT_1)]);
    await t.fit({ epochs: 8, train: fx.data(8) });
    const restored = weightsOf(fx.model);
    expect(restored).toEqual(p.at.get(1));
    // again, with the same instance: the weights move on from the restored ones, and the copy is this fit's
    await t.fit({ epochs: 8, train: fx.data(8) });
    expect(es.result).toMatchObject({ stoppedEpoch: 3, bestEpoch: 1 });
    expect(weightsOf(fx.model)).toEqual(p.at.get(1));
    expect(weightsOf(fx.model)).not.toEqual(restored);
    es.dispose();
    const before = weightsOf(fx.model);
    const r = await trainer(fx, []).fit({ epochs: 1, train: fx.data(8) });
    expect(r.outcome.status).toBe("completed");
    expect(weightsOf(fx.model)).not.toEqual(before);
    expect(weightsOf(fx.model).flat().every(Number.isFinite)).toBe(true);
    fx.dispose();
  });
});
