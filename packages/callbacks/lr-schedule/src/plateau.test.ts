import { describe, expect, it } from "vitest";
import { applyPlateau, initialPlateauState, plateauUpdate, type ResolvedPlateauOptions } from "./index.js";

/**
 * Traces of Keras 3's `ReduceLROnPlateau.on_epoch_end` (keras/src/callbacks/reduce_lr_on_plateau.py),
 * worked by hand from its source for a scripted monitor, with a constant base learning rate:
 *   if in_cooldown: cooldown_counter -= 1; wait = 0
 *   if monitor_op(current, best): best = current; wait = 0
 *   elif not in_cooldown:
 *     wait += 1
 *     if wait >= patience and old_lr > float32(min_lr): lr = max(old_lr * factor, min_lr); cooldown_counter = cooldown; wait = 0
 * with monitor_op = less(a, b - min_delta) for min, greater(a, b + min_delta) for max; best starts at +-inf.
 */
function run(values: number[], base: number, o: ResolvedPlateauOptions): { lr: number[]; wait: number[] } {
  let state = initialPlateauState();
  const lr: number[] = [];
  const wait: number[] = [];
  for (const v of values) {
    const current = applyPlateau(base, state.factor, o.minLr);
    state = plateauUpdate(state, v, current, o).state;
    lr.push(applyPlateau(base, state.factor, o.minLr));
    wait.push(state.wait);
  }
  return { lr, wait };
}

const opts = (o: Partial<ResolvedPlateauOptions>): ResolvedPlateauOptions => ({
  monitor: "val_loss",
  mode: "auto",
  direction: "min",
  factor: 0.1,
  patience: 10,
  cooldown: 0,
  minLr: 0,
  minDelta: 1e-4,
  minDeltaMode: "absolute",
  ...o,
});

describe("reduce on plateau: Keras' ReduceLROnPlateau semantics", () => {
  it("patience, cooldown and min_lr (min mode): the lr after each epoch and Keras' wait counter", () => {
    const values = [1.0, 0.9, 0.95, 0.92, 0.93, 0.91, 0.94, 0.8, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9];
    const { lr, wait } = run(values, 0.1, opts({ factor: 0.5, patience: 2, cooldown: 1, minLr: 0.02, minDelta: 0 }));
    // e3: 2 epochs without improvement -> 0.05, cooldown 1; e4 is the cooldown epoch (counts down, wait 0, then counts);
    // e5 -> 0.025; e7 improves; e9 -> max(0.0125, 0.02) = 0.02; from e11 on the lr is at min_lr: no reduction, and
    // Keras then leaves `wait` growing (it resets only when it reduces)
    expect(lr.map((v) => +v.toPrecision(12))).toEqual([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.02, 0.02, 0.02, 0.02, 0.02]);
    expect(wait).toEqual([0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 4]);
  });

  it("max mode with min_delta: an increase smaller than min_delta is no improvement; NaN is no improvement", () => {
    const values = [0.5, 0.505, 0.6, 0.605, Number.NaN];
    const { lr } = run(values, 0.1, opts({ direction: "max", monitor: "val_acc", factor: 0.2, patience: 1, minDelta: 0.01 }));
    expect(lr.map((v) => +v.toPrecision(12))).toEqual([0.1, 0.02, 0.02, 0.004, 0.0008]);
  });

  it("a relative minDelta scales with |best|", () => {
    const o = opts({ patience: 1, factor: 0.5, minDelta: 0.1, minDeltaMode: "relative" });
    // 95 is within 10 % of 100: no improvement -> reduce; 80 is: improvement
    expect(run([100, 95, 80], 1, o).lr).toEqual([1, 0.5, 0.5]);
  });

  it("on top of a schedule: the factor scales the schedule, and minLr floors only what the plateau did", () => {
    expect(applyPlateau(0.1, 0.5, 0.01)).toBe(0.05);
    expect(applyPlateau(0.1, 0.01, 0.01)).toBe(0.01); // the plateau would take it to 0.001: floored
    expect(applyPlateau(0.005, 0.5, 0.01)).toBe(0.005); // the schedule itself is below minLr: kept
    expect(applyPlateau(0, 0.5, 0.01)).toBe(0); // e.g. a warmup starting at 0
  });
});
