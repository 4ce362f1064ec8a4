import { describe, expect, it } from "vitest";
import { earlyStoppingStep, initialEarlyStoppingState, resolveEarlyStoppingOptions, type EarlyStoppingOptions, type EarlyStoppingState, type StopKind } from "./index.js";

/**
 * Traces of Keras 3's `EarlyStopping.on_epoch_end` (keras/src/callbacks/early_stopping.py), worked
 * by hand from its source for scripted values:
 *   if epoch < start_from_epoch: return
 *   wait += 1
 *   if monitor_op(current - min_delta, best):        # min: current + |min_delta| < best
 *       best = current; best_epoch = epoch
 *       if baseline is None or monitor_op(current - min_delta, baseline): wait = 0
 *       return
 *   if wait >= patience and epoch > 0: stop
 * with best = +inf (min) or -inf (max) at the start. `w` below is `wait` after each epoch.
 */
function run(values: number[], options: EarlyStoppingOptions) {
  const rule = resolveEarlyStoppingOptions({ monitor: "val_loss", ...options });
  let state: EarlyStoppingState = initialEarlyStoppingState();
  const waits: number[] = [];
  for (let epoch = 0; epoch < values.length; epoch++) {
    const r = earlyStoppingStep(state, values[epoch]!, epoch, rule);
    state = r.state;
    waits.push(state.wait);
    if (r.decision.stop) return { stoppedAt: epoch, kind: r.decision.kind, reason: r.decision.reason, best: state.best, bestEpoch: state.bestEpoch, waits, state };
  }
  return { stoppedAt: undefined, kind: undefined as StopKind | undefined, reason: undefined, best: state.best, bestEpoch: state.bestEpoch, waits, state };
}

describe("Keras 3 semantics (traces from on_epoch_end)", () => {
  it("patience 0 and patience 1 both stop at the first epoch that does not improve (Keras 3, Lightning)", () => {
    // e0 1.0 best, w0 | e1 0.8 best, w0 | e2 0.9: w1, 1 >= 0 (and >= 1), epoch > 0 -> stop at e2
    for (const patience of [0, 1]) {
      const r = run([1.0, 0.8, 0.9, 0.7], { patience });
      expect(r).toMatchObject({ stoppedAt: 2, kind: "patience", best: 0.8, bestEpoch: 1, waits: [0, 0, 1] });
      expect(r.reason).toBe("val_loss did not improve by more than 0 for 1 epoch; best 0.8 at epoch 1");
    }
  });

  it("patience 3: stops after three epochs in a row without improvement; any improvement resets the wait", () => {
    // e0 1.0 w0 | e1 .8 w0 | e2 w1 | e3 w2 | e4 .79 < .8 best, w0 | e5 w1 | e6 w2 | e7 w3 >= 3 -> stop at e7
    const r = run([1.0, 0.8, 0.9, 0.85, 0.79, 0.81, 0.82, 0.83, 0.5], { patience: 3 });
    expect(r).toMatchObject({ stoppedAt: 7, best: 0.79, bestEpoch: 4, waits: [0, 0, 1, 2, 0, 1, 2, 3] });
    expect(r.reason).toBe("val_loss did not improve by more than 0 for 3 epochs; best 0.79 at epoch 4");
  });

  it("absolute minDelta: a smaller decrease is no improvement, even when the value is lower than best", () => {
    // minDelta .05: e0 1.0 w0 | e1 .96+.05 < 1.0? no, w1 | e2 .94+.05 < 1.0 best, w0 | e3 .9+.05 < .94? no, w1
    // | e4 .88+.05 < .94 best, w0 | e5 .85+.05 < .88? no, w1 | e6 .84+.05 < .88? no, w2 >= 2 -> stop at e6
    const r = run([1.0, 0.96, 0.94, 0.9, 0.88, 0.85, 0.84], { patience: 2, minDelta: 0.05 });
    expect(r).toMatchObject({ stoppedAt: 6, best: 0.88, bestEpoch: 4, waits: [0, 1, 0, 1, 0, 1, 2] });
    expect(r.reason).toBe("val_loss did not improve by more than 0.05 for 2 epochs; best 0.88 at epoch 4");
  });

  it("relative minDelta (PyTorch's rel threshold on |best|)", () => {
    // 10 %: e0 100 w0 | e1 95 < 90? no, w1 | e2 80 < 90 best, w0 | e3 75 < 72? no, w1 | e4 74 no, w2 -> stop at e4
    const r = run([100, 95, 80, 75, 74], { patience: 2, minDelta: 0.1, minDeltaMode: "relative" });
    expect(r).toMatchObject({ stoppedAt: 4, best: 80, bestEpoch: 2, waits: [0, 1, 0, 1, 2] });
    expect(r.reason).toBe("val_loss did not improve by more than 10% of the best for 2 epochs; best 80 at epoch 2");
  });

  it("baseline not beaten: the wait is not reset, and an epoch that improves on best returns before the stop check", () => {
    // baseline .5, patience 2: e0 1.0 best, not < .5: w1 | e1 .9 best, w2 (>= 2, but it improved: return)
    // | e2 .95: w3 >= 2 -> stop at e2
    const r = run([1.0, 0.9, 0.95, 0.97], { patience: 2, baseline: 0.5 });
    expect(r).toMatchObject({ stoppedAt: 2, kind: "baseline", best: 0.9, bestEpoch: 1, waits: [1, 2, 3] });
    expect(r.reason).toBe("val_loss did not beat the baseline 0.5 in 3 epochs; best 0.9 at epoch 1");
    // improving every epoch but never beating the baseline never stops; the first non-improving epoch does
    // e0..e3 improve (w1..w4, each returns) | e4 .75: w5 >= 2 -> stop at e4
    const slow = run([1.0, 0.9, 0.8, 0.7, 0.75], { patience: 2, baseline: 0.5 });
    expect(slow).toMatchObject({ stoppedAt: 4, kind: "baseline", best: 0.7, bestEpoch: 3, waits: [1, 2, 3, 4, 5] });
  });

  it("baseline beaten: from then on it is plain patience", () => {
    // baseline .5, patience 2: e0 1.0 best, w1 | e1 .4 best and < .5: w0 | e2 w1 | e3 w2 -> stop at e3
    const r = run([1.0, 0.4, 0.45, 0.42, 0.3], { patience: 2, baseline: 0.5 });
    expect(r).toMatchObject({ stoppedAt: 3, kind: "patience", best: 0.4, bestEpoch: 1, waits: [1, 0, 1, 2] });
  });

  it("startFromEpoch: earlier epochs are not looked at (not even as best)", () => {
    // start 2, patience 1: e0, e1 skipped | e2 3 best, w0 | e3 4: w1 -> stop at e3 (1 at e1 was never seen)
    const r = run([5, 1, 3, 4, 2], { patience: 1, startFromEpoch: 2 });
    expect(r).toMatchObject({ stoppedAt: 3, best: 3, bestEpoch: 2, waits: [0, 0, 0, 1] });
    const skipped = earlyStoppingStep(initialEarlyStoppingState(), Number.NaN, 1, resolveEarlyStoppingOptions({ startFromEpoch: 2 }));
    expect(skipped.decision).toMatchObject({ monitored: false, stop: false });
    expect(skipped.state).toEqual(initialEarlyStoppingState());
  });

  it("max mode (auto from val_acc): an equal value is no improvement", () => {
    // e0 .5 | e1 .6 | e2 .6 not > .6: w1 | e3 .65 w0 | e4 w1 | e5 w2 -> stop at e5
    const r = run([0.5, 0.6, 0.6, 0.65, 0.64, 0.63], { monitor: "val_acc", patience: 2 });
    expect(r).toMatchObject({ stoppedAt: 5, best: 0.65, bestEpoch: 3, waits: [0, 0, 1, 0, 1, 2] });
    expect(run([0.5, 0.6, 0.6], { monitor: "val_acc", mode: "min", patience: 0 }).stoppedAt).toBe(1);
  });

  it("never stops at epoch 0 on patience (Keras' `epoch > 0`): with checkFinite off, NaN at epoch 0 only counts", () => {
    // e0 NaN: w1, not an improvement, epoch 0 -> no stop | e1 NaN: w2 >= 0 -> stop at e1
    const r = run([Number.NaN, Number.NaN], { patience: 0, checkFinite: false });
    expect(r).toMatchObject({ stoppedAt: 1, kind: "patience", best: null, bestEpoch: null, waits: [1, 2] });
    expect(r.reason).toBe("val_loss did not improve by more than 0 for 2 epochs; no finite value so far");
  });
});

describe("deviations from Keras, pinned", () => {
  it("a NaN first value never becomes best: no best epoch until a finite value (Keras' best_epoch would be 0)", () => {
    // checkFinite off, patience 1: e0 NaN w1 (no stop at epoch 0) | e1 1.0 best, w0 | e2 1.1 w1 -> stop at e2
    const r = run([Number.NaN, 1.0, 1.1], { patience: 1, checkFinite: false });
    expect(r).toMatchObject({ stoppedAt: 2, best: 1.0, bestEpoch: 1, waits: [1, 0, 1] });
    const first = earlyStoppingStep(initialEarlyStoppingState(), Number.NaN, 0, resolveEarlyStoppingOptions({ checkFinite: false }));
    expect(first.decision.improved).toBe(false); // so no weights are copied for it
    expect(first.state.bestEpoch).toBeNull();
  });

  it("with checkFinite (the default) a NaN first value stops at once, even at epoch 0", () => {
    const r = run([Number.NaN, 1.0], { patience: 5 });
    expect(r).toMatchObject({ stoppedAt: 0, kind: "nonFinite", bestEpoch: null });
    expect(r.reason).toBe("val_loss is NaN at the end of epoch 0; no finite value so far");
  });
});

describe("Lightning's thresholds and checkFinite, in its order", () => {
  it("stoppingThreshold: stops as soon as the value is strictly better; that value is also recorded as best", () => {
    const r = run([1, 0.7, 0.5, 0.45, 0.3], { patience: 10, stoppingThreshold: 0.5 });
    expect(r).toMatchObject({ stoppedAt: 3, kind: "stoppingThreshold", best: 0.45, bestEpoch: 3 });
    expect(r.reason).toBe("val_loss 0.45 at epoch 3 is below the stopping threshold 0.5");
    expect(run([0.5, 0.95], { monitor: "acc", stoppingThreshold: 0.9, patience: 5 })).toMatchObject({ stoppedAt: 1, kind: "stoppingThreshold" });
  });

  it("divergenceThreshold: stops as soon as the value is strictly worse, also at epoch 0, and before patience is looked at", () => {
    const r = run([1, 1.5, 2, 2.5], { patience: 10, divergenceThreshold: 2 });
    expect(r).toMatchObject({ stoppedAt: 3, kind: "divergenceThreshold", best: 1, bestEpoch: 0 });
    expect(r.reason).toBe("val_loss 2.5 at epoch 3 is above the divergence threshold 2; best 1 at epoch 0");
    expect(run([3], { divergenceThreshold: 2 })).toMatchObject({ stoppedAt: 0, kind: "divergenceThreshold" });
    // patience 0 would stop at e1 too: divergence is checked first, so it is the reason
    expect(run([1, 5], { patience: 0, divergenceThreshold: 2 })).toMatchObject({ stoppedAt: 1, kind: "divergenceThreshold" });
    expect(run([0.8, 0.1], { monitor: "val_accuracy", divergenceThreshold: 0.2, patience: 5 })).toMatchObject({ stoppedAt: 1, kind: "divergenceThreshold" });
  });

  it("checkFinite comes first: NaN and +-Infinity stop, whatever the thresholds say", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const r = run([1, bad], { patience: 10, divergenceThreshold: 5, stoppingThreshold: 0.1 });
      expect(r).toMatchObject({ stoppedAt: 1, kind: "nonFinite", best: 1, bestEpoch: 0 });
      expect(r.reason).toBe(`val_loss is ${bad} at the end of epoch 1; best 1 at epoch 0`);
    }
  });

  it("with checkFinite off, a non-finite value is an epoch without improvement (never best)", () => {
    // e0 1 | e1 -Infinity: not an improvement, w1 | e2 w2 -> stop at e2
    const r = run([1, Number.NEGATIVE_INFINITY, Number.NaN], { patience: 2, checkFinite: false });
    expect(r).toMatchObject({ stoppedAt: 2, kind: "patience", best: 1, bestEpoch: 0, waits: [0, 1, 2] });
  });
});
