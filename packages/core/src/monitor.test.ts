import { describe, expect, it } from "vitest";
import { MissingMonitorError, initialBest, isImprovement, monitorValue, resolveMonitorMode } from "./index.js";

describe("monitor helpers (shared by early stopping and plateau schedules)", () => {
  it("auto mode knows losses and accuracies by name, with or without val_, and refuses to guess otherwise", () => {
    for (const name of ["loss", "val_loss", "mse", "val_mae", "sparse_categorical_crossentropy", "recon_loss"]) expect(resolveMonitorMode(name, "auto"), name).toBe("min");
    for (const name of ["acc", "val_acc", "accuracy", "val_sparse_categorical_accuracy", "auc", "val_f1", "precision"]) expect(resolveMonitorMode(name, "auto"), name).toBe("max");
    for (const name of ["lr", "foo", "val_score", "grad_norm"]) expect(resolveMonitorMode(name, "auto"), name).toBeUndefined();
    expect(resolveMonitorMode("foo", "max")).toBe("max");
  });

  it("absolute minDelta follows Keras (current - minDelta < best); relative scales with |best|; non-finite never improves", () => {
    const abs = { mode: "min", minDelta: 0.1, minDeltaMode: "absolute" } as const;
    expect(isImprovement(1, initialBest("min"), abs)).toBe(true);
    expect(isImprovement(0.95, 1, abs)).toBe(false);
    expect(isImprovement(0.9, 1, abs)).toBe(false); // strict, as Keras: 0.9 - ... is not < 0.9
    expect(isImprovement(0.89, 1, abs)).toBe(true);
    const max = { mode: "max", minDelta: 0, minDeltaMode: "absolute" } as const;
    expect(isImprovement(0.5, 0.5, max)).toBe(false);
    expect(isImprovement(0.51, 0.5, max)).toBe(true);
    const rel = { mode: "min", minDelta: 0.01, minDeltaMode: "relative" } as const;
    expect(isImprovement(99.1, 100, rel)).toBe(false);
    expect(isImprovement(98.9, 100, rel)).toBe(true);
    expect(isImprovement(-101.1, -100, rel)).toBe(true); // |best|: works for negative values too
    expect(isImprovement(-100.9, -100, rel)).toBe(false);
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(isImprovement(v, initialBest("min"), abs)).toBe(false);
      expect(isImprovement(v, 1, abs)).toBe(false);
    }
  });

  it("a missing monitor names the available keys and says when val_ metrics need validation data", () => {
    expect(() => monitorValue({ loss: 1, acc: 0.5 }, "val_loss", "EarlyStopping", "at the end of epoch 0")).toThrow(MissingMonitorError);
    expect(() => monitorValue({ loss: 1, acc: 0.5 }, "val_loss", "EarlyStopping", "at the end of epoch 0")).toThrow(/EarlyStopping monitors "val_loss", but the logs at the end of epoch 0 have no such key \(val_\* metrics need `validation` data in fit\(\)\)\. Available: loss, acc\./);
    expect(monitorValue({ loss: 1 }, "loss", "x", "y")).toBe(1);
  });
});
