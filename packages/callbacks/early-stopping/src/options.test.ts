import { describe, expect, it } from "vitest";
import { OptionsError } from "@fitloop/core";
import { EarlyStopping } from "./index.js";

function optionsError(options: unknown): OptionsError {
  try {
    new EarlyStopping(options as never);
  } catch (e) {
    expect(e).toBeInstanceOf(OptionsError);
    return e as OptionsError;
  }
  throw new Error("no error");
}

describe("options", () => {
  it("Keras' defaults (plus Lightning's checkFinite on), name and stateKey", () => {
    const es = new EarlyStopping();
    expect(es.options).toEqual({
      monitor: "val_loss",
      mode: "auto",
      direction: "min",
      minDelta: 0,
      minDeltaMode: "absolute",
      patience: 0,
      startFromEpoch: 0,
      checkFinite: true,
      restoreBestWeights: false,
      verbose: false,
    });
    expect([es.name, es.stateKey, es.order]).toEqual(["EarlyStopping", "early-stopping", 500]);
    const other = new EarlyStopping({ monitor: "val_acc", name: "EarlyStopAcc", stateKey: "es-acc" });
    expect([other.name, other.stateKey, other.options.direction]).toEqual(["EarlyStopAcc", "es-acc", "max"]);
  });

  it("one OptionsError names every bad option and what is accepted", () => {
    const e = optionsError({
      monitor: "",
      mode: "down",
      minDelta: -0.1,
      minDeltaMode: "percent",
      patience: 1.5,
      baseline: "low",
      startFromEpoch: -1,
      stoppingThreshold: Number.NaN,
      divergenceThreshold: Number.POSITIVE_INFINITY,
      checkFinite: "yes",
      restoreBestWeights: 1,
      verbose: null,
      name: "",
      stateKey: 3,
      patiance: 3,
    });
    const msg = e.message;
    expect(msg).toMatch(/^Invalid options for EarlyStopping:/);
    expect(msg).toMatch(/monitor: must be the name of a logged metric, e\.g\. val_loss/);
    expect(msg).toMatch(/mode: must be "auto", "min" or "max"/);
    expect(msg).toMatch(/minDelta: must be >= 0/);
    expect(msg).toMatch(/minDeltaMode: must be "absolute" or "relative"/);
    expect(msg).toMatch(/patience: must be an integer >= 0 \(epochs without improvement before stopping\)/);
    expect(msg).toMatch(/baseline: must be a finite number/);
    expect(msg).toMatch(/startFromEpoch: must be an integer >= 0/);
    expect(msg).toMatch(/stoppingThreshold: must be a finite number/);
    expect(msg).toMatch(/divergenceThreshold: must be a finite number/);
    expect(msg).toMatch(/checkFinite: must be true or false/);
    expect(msg).toMatch(/restoreBestWeights: must be true or false/);
    expect(msg).toMatch(/verbose: must be true or false/);
    expect(msg).toMatch(/name: must be a non-empty string/);
    expect(msg).toMatch(/stateKey: must be a non-empty string/);
    expect(msg).toMatch(/unknown option "patiance" \(did you mean "patience"\?\); accepted: monitor, mode, minDelta, minDeltaMode, patience, baseline, startFromEpoch, stoppingThreshold, divergenceThreshold, checkFinite, restoreBestWeights, verbose, name, stateKey/);
    expect(e.issues).toHaveLength(15); // one per option above
    expect(optionsError("patience 3").message).toMatch(/\(options\): /);
    expect(optionsError(null).message).toMatch(/\(options\): /);
  });

  it('mode "auto" refuses a name it does not know, also beside other problems; min/max take any name', () => {
    const e = optionsError({ monitor: "score", patience: "3" });
    expect(e.message).toMatch(/mode: "auto" cannot tell whether "score" should go down or up; pass mode "min" or "max"/);
    expect(e.message).toMatch(/patience: must be an integer >= 0/);
    expect(new EarlyStopping({ monitor: "score", mode: "max" }).options.direction).toBe("max");
    expect(new EarlyStopping({ monitor: "val_mae" }).options.direction).toBe("min");
    expect(new EarlyStopping({ monitor: "val_sparse_categorical_accuracy" }).options.direction).toBe("max");
  });

  it("stoppingThreshold must be on the good side of divergenceThreshold", () => {
    expect(optionsError({ stoppingThreshold: 2, divergenceThreshold: 1 }).message).toMatch(/stoppingThreshold: must be better than divergenceThreshold \(below it in min mode\), got stoppingThreshold 2 and divergenceThreshold 1/);
    expect(optionsError({ monitor: "val_acc", stoppingThreshold: 0.5, divergenceThreshold: 0.5 }).message).toMatch(/above it in max mode/);
    expect(new EarlyStopping({ stoppingThreshold: 0.1, divergenceThreshold: 5 }).options).toMatchObject({ stoppingThreshold: 0.1, divergenceThreshold: 5 });
    expect(new EarlyStopping({ monitor: "val_acc", stoppingThreshold: 0.99, divergenceThreshold: 0.2 }).options.direction).toBe("max");
  });
});
