import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { FitloopError, OptionsError, ORDER, Trainer, silentLogger, type Callback } from "@fitloop/core";
import { tinyFixture } from "@fitloop/core/testing";
import { LRRangeTest, smoothLosses, sweepLrs } from "./index.js";
import { recorder, scaleAt, scaledLoss } from "./helpers.fixture.js";

/**
 * A trainer on the tiny fixture (32 samples, batches of 8: 4 per epoch) with a loss times
 * `scale(globalBatch)` (1 by default: a spike or a NaN where a test wants one).
 */
function setup(plugins: Callback[], scaleOf: (globalBatch: number) => number = () => 1) {
  const fx = tinyFixture({ samples: 32 });
  const { loss, scale } = scaledLoss();
  const trainer = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss, callbacks: [...plugins, scaleAt(scale, scaleOf)], logger: silentLogger, seed: 1 });
  return { fx, trainer, fit: (epochs: number) => trainer.fit({ epochs, train: fx.data(8) }) };
}

describe("LRRangeTest records fastai's sweep", () => {
  it("each step runs at start * (end/start)^(i/steps) (as the optimizer sees it in beforeStep); loss and smoothed loss per step; stops after `steps` steps, across epochs", async () => {
    const rt = new LRRangeTest({ startLr: 1e-4, endLr: 1, steps: 10 });
    const rec = recorder();
    const { fit, fx } = setup([rt, rec]);
    const r = await fit(5);
    const lrs = sweepLrs(10, 1e-4, 1);
    expect(rec.lr).toEqual(lrs);
    expect(rt.curve.lr).toEqual(lrs);
    expect(rt.curve.loss).toEqual(rec.loss);
    expect(rt.curve.smoothed).toEqual(smoothLosses(rec.loss, 0.98));
    expect(rt.stopReason).toBe("completed");
    expect(r.outcome.status).toBe("stopped");
    expect(r.outcome.stopRequests[0]).toMatchObject({ by: "LRRangeTest", details: { reason: "completed", steps: 10 } });
    expect(r.state.step).toBe(10); // epoch 2, batch 1: it stops after the batch, mid-epoch
    expect(r.state.history.map((h) => h.logs["lr"])).toEqual([lrs[3], lrs[7], lrs[9]]); // logged per batch, "last" over the epoch
    fx.dispose();
  });

  it("linear mode: start + (i/steps)(end - start)", async () => {
    const rt = new LRRangeTest({ startLr: 0.01, endLr: 0.5, steps: 6, mode: "linear" });
    const { fit, fx } = setup([rt]);
    await fit(3);
    expect(rt.curve.lr).toEqual(sweepLrs(6, 0.01, 0.5, "linear"));
    expect(rt.curve.lr[3]).toBeCloseTo(0.01 + 0.5 * 0.49, 15);
    fx.dispose();
  });

  it("stops when the smoothed loss passes 4x the best (fastai's rule, checked after recording the point)", async () => {
    const rt = new LRRangeTest({ startLr: 1e-4, endLr: 1e-2, steps: 20 });
    // the loss is multiplied by 100 from batch 7 on: the smoothed loss jumps to ~14x at step 7
    const { fit, fx } = setup([rt], (b) => (b >= 7 ? 100 : 1));
    const r = await fit(10);
    const s = rt.curve.smoothed;
    expect(rt.stopReason).toBe("diverged");
    expect(s).toHaveLength(8);
    expect(s[7]!).toBeGreaterThan(4 * Math.min(...s));
    for (let k = 0; k < 7; k++) expect(s[k]!).toBeLessThanOrEqual(4 * Math.min(...s.slice(0, k + 1)));
    expect(r.outcome.stopRequests[0]!.reason).toMatch(/range test diverged: the smoothed loss [\d.]+ passed 4 x the best/);
    expect(rt.result().confidence.verdict).toBe("too-short");
    fx.dispose();
  });

  it("divergenceFactor and stopDivergence: false (fastai's stop_div)", async () => {
    const spike = async (options: ConstructorParameters<typeof LRRangeTest>[0]) => {
      const rt = new LRRangeTest({ startLr: 1e-4, endLr: 1e-2, steps: 20, ...options });
      const { fit, fx } = setup([rt], (b) => (b >= 7 ? 100 : 1));
      await fit(10);
      fx.dispose();
      return rt;
    };
    const wide = await spike({ divergenceFactor: 20 });
    expect(wide.stopReason).toBe("diverged");
    expect(wide.curve.lr.length).toBeGreaterThan(8); // ~14x at step 7 is within 20x; it stops later, as the average climbs
    const off = await spike({ stopDivergence: false });
    expect(off.stopReason).toBe("completed");
    expect(off.curve.lr).toHaveLength(20);
  });

  it("a NaN loss stops the sweep, also with stopDivergence: false (fastai runs on: a NaN never compares larger)", async () => {
    for (const stopDivergence of [true, false]) {
      const rt = new LRRangeTest({ startLr: 1e-4, endLr: 1e-2, steps: 20, stopDivergence });
      const { fit, fx } = setup([rt], (b) => (b === 5 ? Number.NaN : 1));
      await fit(10);
      expect(rt.stopReason).toBe("non-finite");
      expect(rt.curve.loss).toHaveLength(6);
      expect(rt.curve.loss[5]).toBeNaN();
      expect(rt.result().stopMessage).toMatch(/the loss was NaN at step 5/);
      fx.dispose();
    }
  });
});

describe("LRRangeTest in your own run", () => {
  it("result(): suggestions on the smoothed curve, the one asked for as lr, the verdict; the run ends early when there are too few epochs", async () => {
    const rt = new LRRangeTest({ startLr: 1e-3, endLr: 10, steps: 40 });
    const { fit, fx } = setup([rt]);
    await fit(3); // 12 batches of the 40
    expect(rt.stopReason).toBe("data-ended");
    const short = rt.result("steep");
    expect(short.steps).toBe(12);
    expect(short.stopMessage).toMatch(/ended after 12 of 40 steps: give fit more epochs/);
    expect(short.confidence.verdict).toBe("too-short");
    await fit(11); // a new run starts over: 40 steps in 10 epochs
    const full = rt.result("steep");
    expect(full.steps).toBe(40);
    expect(full.lr).toBe(full.suggestions.steep!.lr);
    expect(full.suggestions.valley!.index).toBeGreaterThanOrEqual(4); // 40 // 10 = 4 points skipped
    fx.dispose();
  });

  it("another plugin's stop or a failure is recorded as the reason", async () => {
    const rt = new LRRangeTest({ steps: 40 });
    const stopper: Callback = { name: "Stopper", afterBatch: (ctx) => void (ctx.state.globalBatch === 2 && ctx.requestStop("enough")) };
    const { fit, fx } = setup([rt, stopper]);
    await fit(20);
    expect(rt.stopReason).toBe("stopped");
    expect(rt.result().stopMessage).toMatch(/stopped after 3 step\(s\) by another plugin: Stopper: enough/);
    const failing: Callback = { name: "Failing", afterStep: (ctx) => { if (ctx.state.step === 2) throw new Error("boom"); } };
    const { fit: fit2, fx: fx2 } = setup([rt, failing]);
    await expect(fit2(20)).rejects.toThrow("boom");
    expect(rt.stopReason).toBe("failed");
    fx.dispose();
    fx2.dispose();
  });

  it("a plugin that changes the learning rate in the same step fails the run with a typed error", async () => {
    const schedule: Callback = { name: "MySchedule", order: ORDER.DEFAULT, beforeBatch: (ctx) => void (ctx.hyper.learningRate = 0.5) };
    const { fit, fx } = setup([new LRRangeTest({ steps: 10 }), schedule]);
    const err = await fit(5).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FitloopError);
    expect((err as FitloopError).code).toBe("LR_CHANGED_DURING_RANGE_TEST");
    expect((err as Error).message).toMatch(/set to 1e-7 by the range test, but is 0.5 at beforeStep/);
    fx.dispose();
  });

  it("options are checked when constructed: one OptionsError lists every problem", () => {
    const err = (() => {
      try {
        new LRRangeTest({ startLr: -1, endLr: 0, steps: 5.5, mode: "log" as "linear", smoothing: 1, stopDivergence: "yes" as unknown as boolean, divergenceFactor: 1, name: "", lr: 1 } as ConstructorParameters<typeof LRRangeTest>[0]);
      } catch (e) {
        return e;
      }
    })() as OptionsError;
    expect(err).toBeInstanceOf(OptionsError);
    expect(err.issues.map((i) => i.path).sort()).toEqual(["divergenceFactor", "endLr", "lr", "mode", "name", "smoothing", "startLr", "steps", "stopDivergence"]);
    expect(() => new LRRangeTest({ startLr: 1, endLr: 0.1 })).toThrow(/endLr: must be larger than startLr \(1\), got 0.1/);
    expect(() => new LRRangeTest({ steps: 5 })).toThrow(/steps: must be an integer >= 6/);
  });
});
