import { describe, expect, it } from "vitest";
import { barString, endText, formatDuration, formatNumber, formatRate, formatStepTime, isCI, progressText, runningLogs, selectLogs, type ProgressView } from "./index.js";

describe("number and time formats", () => {
  it("4 significant digits, Keras-like; whole numbers from 10^4; exponents below 10^-4; non-finite by name", () => {
    const cases: [number, string][] = [
      [0.54321, "0.5432"],
      [0.5, "0.5000"],
      [12.345, "12.35"],
      [1234.4, "1234"],
      [9999.4, "9999"],
      [9999.6, "10000"],
      [123456.7, "123457"],
      [0.001234, "0.001234"],
      [0.0001, "0.0001000"],
      [0.0000123456, "1.235e-5"],
      [-0.5432, "-0.5432"],
      [0, "0.000"],
      [2e16, "2.000e16"],
      [Number.NaN, "NaN"],
      [Number.POSITIVE_INFINITY, "Infinity"],
      [Number.NEGATIVE_INFINITY, "-Infinity"],
    ];
    for (const [v, s] of cases) expect(formatNumber(v), String(v)).toBe(s);
  });

  it("durations as Keras prints them, and the per-step and per-second forms", () => {
    expect([0.04, 1.25, 9.94, 12.4, 59.6, 65, 3599, 3723].map(formatDuration)).toEqual(["0.0s", "1.3s", "9.9s", "12s", "1:00", "1:05", "59:59", "1:02:03"]);
    expect([Number.NaN, -1, Number.POSITIVE_INFINITY].map(formatDuration)).toEqual(["?", "?", "?"]);
    expect([52.4, 1, 0.8412, Number.NaN].map(formatStepTime)).toEqual(["52ms/step", "1ms/step", "0.84ms/step", "?ms/step"]);
    expect([12345.6, 100, 99.44, 3.14159].map(formatRate)).toEqual(["12346 samples/s", "100 samples/s", "99.4 samples/s", "3.14 samples/s"]);
  });

  it("the bar: a head while running, full when done, clamped", () => {
    expect(barString(0, 10, 10)).toBe("[>.........]");
    expect(barString(5, 10, 10)).toBe("[=====>....]");
    expect(barString(9, 10, 10)).toBe("[=========>]");
    expect(barString(10, 10, 10)).toBe("[==========]");
    expect(barString(12, 10, 10)).toBe("[==========]");
    expect(barString(3, 0, 4)).toBe("[====]");
  });
});

describe("lines", () => {
  const view = (over: Partial<ProgressView>): ProgressView => ({ epoch: 1, epochs: 3, done: 12, total: 24, phase: "train", elapsed: 1.5, eta: 1.5, msPerStep: 125, samplesPerSecond: 456.2, values: [["loss", 0.81234], ["acc", 0.625]], ...over });

  it("mid-epoch, validating and at the end; with and without the bar; a source of unknown length", () => {
    expect(progressText(view({}), true)).toBe("Epoch 2/3 - 12/24 [===============>..............] - ETA 1.5s - 456 samples/s - loss: 0.8123 - acc: 0.6250");
    expect(progressText(view({ done: 3 }), false)).toBe("Epoch 2/3 -  3/24 - ETA 1.5s - 456 samples/s - loss: 0.8123 - acc: 0.6250");
    expect(progressText(view({ phase: "validate" }), false)).toBe("Epoch 2/3 - 12/24 - validating - 456 samples/s - loss: 0.8123 - acc: 0.6250");
    const end = view({ done: 24, phase: "end", elapsed: 3.2, eta: undefined, values: [["loss", 0.5], ["val_loss", Number.NaN]] });
    expect(progressText(end, false)).toBe("Epoch 2/3 - 24/24 - 3.2s 125ms/step - 456 samples/s - loss: 0.5000 - val_loss: NaN");
    expect(progressText(view({ total: undefined, eta: undefined }), true)).toBe("Epoch 2/3 - 12 batches - 1.5s - 456 samples/s - loss: 0.8123 - acc: 0.6250");
    expect(progressText(view({ done: 0, eta: undefined, msPerStep: undefined, samplesPerSecond: undefined, values: [] }), false)).toBe("Epoch 2/3 -  0/24 - 1.5s");
  });

  it("why a run ended early, and where", () => {
    const at = { epoch: 1, epochs: 5, done: 10, total: 24, phase: "train" } as const;
    expect(endText({ status: "completed" }, at)).toBeUndefined();
    expect(endText({ status: "stopped", reason: "EarlyStopping: val_loss did not improve" }, at)).toBe("Stopped (epoch 2/5, batch 10/24): EarlyStopping: val_loss did not improve");
    expect(endText({ status: "stopped", reason: "S: enough" }, { ...at, done: 24, phase: "end" })).toBe("Stopped (after epoch 2/5): S: enough");
    expect(endText({ status: "cancelled" }, { ...at, phase: "validate" })).toBe("Cancelled (epoch 2/5, validation)");
    expect(endText({ status: "failed", reason: "Invalid options for X:\n  - a: bad" }, undefined)).toBe("Failed (before the first epoch): Invalid options for X:");
    expect(endText({ status: "failed", reason: "boom" }, { ...at, total: undefined })).toBe("Failed (epoch 2/5, batch 10): boom");
  });

  it("which values: all by default, or the named ones with their val_ forms; training first, then validation", () => {
    const logs = Object.entries({ val_loss: 1, loss: 2, lr: 3, acc: 4, val_acc: 5 });
    expect(selectLogs(logs, undefined).map(([k]) => k)).toEqual(["loss", "lr", "acc", "val_loss", "val_acc"]);
    expect(selectLogs(logs, ["acc", "loss"]).map(([k]) => k)).toEqual(["loss", "acc", "val_loss", "val_acc"]);
    expect(selectLogs(logs, ["val_acc"]).map(([k]) => k)).toEqual(["val_acc"]);
    expect(selectLogs(logs, [])).toEqual([]);
  });

  it("running values from core's epoch totals: sample-weighted loss and metrics, plugin logs by their reduction", () => {
    const agg = (reduce: "mean" | "sum" | "min" | "max" | "last") => ({ reduce, sum: 6, count: 3, min: 1, max: 3, last: 2 });
    const p = { samples: 40, sums: { loss: 20, acc: 30 }, plugins: { a: agg("mean"), b: agg("sum"), c: agg("min"), d: agg("max"), e: agg("last") } };
    expect(runningLogs(p)).toEqual([["loss", 0.5], ["acc", 0.75], ["a", 2], ["b", 6], ["c", 1], ["d", 3], ["e", 2]]);
    expect(runningLogs({ samples: 0, sums: {}, plugins: {} })).toEqual([]);
  });

  it("CI is any value but empty, 0 and false", () => {
    expect([undefined, "", "0", "false", "FALSE"].map((v) => isCI({ CI: v }))).toEqual([false, false, false, false, false]);
    expect(["true", "1", "yes", "github"].map((v) => isCI({ CI: v }))).toEqual([true, true, true, true]);
  });
});
