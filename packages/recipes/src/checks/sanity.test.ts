import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { OptionsError, seeded, ShapeMismatchError } from "@fitloop/core";
import { expectNoLeaks, expectRejected, expectRefused } from "@fitloop/core/testing";
import { dataReport, fromArrays, splitDataset } from "@fitloop/datasets";
import { drawTensors, formatVerdicts, reportVerdict, sanityCheck, type AnyVerdict } from "./index.js";
import { compiledWithSteppedAdam, mlp, mnist, mnistBatch, optimizerBits, weightBits } from "./models.fixture.js";

const loss = "sparseCategoricalCrossentropy" as const;
// small budgets for the cpu backend (the wasm test runs the defaults)
const small = { loss, samples: 512, baseline: { steps: 50 }, print: false } as const;

describe("sanityCheck", () => {
  it("a healthy MLP on the embedded digits: every check passes, the table is printed and returned with the numbers", async () => {
    const model = mlp();
    const printed: string[] = [];
    const r = await sanityCheck(model, mnist(), { ...small, print: (t) => printed.push(t) });
    expect(r.verdicts.map((v) => [v.check, v.status])).toEqual([
      ["dataReport", "pass"],
      ["verifyInitLoss", "pass"],
      ["overfitOneBatch", "pass"],
      ["inputIndependentBaseline", "pass"],
      ["checkBatchIndependence", "pass"],
      ["checkGradients", "pass"],
    ]);
    expect(r.status).toBe("pass");
    expect(printed).toEqual([r.text]);
    expect(r.text.split("\n").at(-1)).toBe("overall: PASS (6 pass, 0 warn, 0 fail)");
    expect(r.report!.splits[0]!.size).toBe(10_000);
    expect(r.verdicts[0]!.numbers["classes"]).toBe(10);
    model.dispose();
  });

  it("leaves model and compiled optimizer bit for bit as they were, and leaks no tensor", async () => {
    const model = mlp({ batchNorm: true, dropout: 0.2 });
    const batch = mnistBatch(32);
    const optimizer = compiledWithSteppedAdam(model, batch.xs, batch.ys);
    const [weights, slots] = [weightBits(model), await optimizerBits(optimizer)];
    const tiny = { loss, samples: 64, print: false, overfit: { steps: 3 }, baseline: { steps: 3 }, gradients: { coordinates: 2 } } as const;
    await expectNoLeaks(() => sanityCheck(model, mnist(), tiny), { warmup: 1, iterations: 2 });
    expect(weightBits(model)).toEqual(weights);
    expect(await optimizerBits(optimizer)).toEqual(slots);
    batch.dispose();
    optimizer.dispose();
    model.dispose();
  });

  it("splits: all are reported (leakage included), the checks use train; skip leaves checks out", async () => {
    const small10 = splitDataset(mnist(), { fractions: { train: 0.1, validation: 0.05, test: 0.85 }, seed: 1 });
    const model = mlp();
    const r = await sanityCheck(model, { train: small10.train, validation: small10.validation }, { loss, print: false, skip: ["inputIndependentBaseline", "overfitOneBatch", "checkGradients"] });
    expect(r.verdicts.map((v) => v.check)).toEqual(["dataReport", "verifyInitLoss", "checkBatchIndependence"]);
    expect(r.report!.splits.map((s) => s.name)).toEqual(["train", "validation"]);
    expect(r.verdicts[0]!.numbers["samples"]).toBe(1500);
    model.dispose();
  });

  it("a check whose model or loss throws becomes a failed verdict; the others still run", async () => {
    const model = mlp();
    const boom = () => {
      throw new Error("boom");
    };
    const r = await sanityCheck(model, mnist(), { loss: boom, samples: 32, print: false, skip: ["dataReport"] });
    const byCheck = Object.fromEntries(r.verdicts.map((v) => [v.check, v]));
    expect(byCheck["verifyInitLoss"]!.status).toBe("fail");
    expect(byCheck["verifyInitLoss"]!.summary).toBe("threw: boom");
    expect(byCheck["checkBatchIndependence"]!.status).toBe("pass"); // needs no loss
    model.dispose();
  });

  it("refuses bad options (nested ones too) with one typed error before anything runs", async () => {
    const model = mlp();
    let printed = false;
    const print = () => void (printed = true);
    const e = await expectRejected(() => sanityCheck(model, mnist(), { loss, print, overfit: { step: 10 } as never, skip: ["gradients" as never] }), OptionsError, "INVALID_OPTIONS", ["overfit", 'did you mean "steps"', "skip"], { model });
    expect(e.owner).toBe("sanityCheck");
    expect(printed).toBe(false);
    await expectRejected(() => sanityCheck(model, { x: [1] } as never, { loss }), OptionsError, "INVALID_OPTIONS", "data", { model });
    model.dispose();
  });
});

describe("reportVerdict", () => {
  const ds = (x: number[][], y: number[], numClasses = 2) => fromArrays({ x, y, numClasses, allowNonFinite: true });
  it("fails on NaN inputs, warns on a missing class, conflicting duplicates and leakage; passes clean data", () => {
    const clean = ds([[0], [1], [2], [3]], [0, 1, 0, 1]);
    expect(reportVerdict(dataReport(clean)).status).toBe("pass");
    const nan = reportVerdict(dataReport(ds([[0], [NaN], [2], [3]], [0, 1, 0, 1])));
    expect(nan.status).toBe("fail");
    expect(nan.summary).toMatch(/1 samples contain NaN\/Inf \(first at 1\)/);
    expect(reportVerdict(dataReport(ds([[0], [1], [2]], [0, 0, 0]))).summary).toMatch(/no samples of class 1/);
    const conflicting = reportVerdict(dataReport(ds([[0], [0], [2], [3]], [0, 1, 0, 1])));
    expect([conflicting.status, conflicting.numbers["duplicates"]]).toEqual(["warn", 1]);
    const leak = reportVerdict(dataReport({ train: clean, test: ds([[3], [9]], [1, 0]) }));
    expect([leak.status, leak.numbers["leaked"]]).toEqual(["warn", 1]);
    expect(leak.summary).toMatch(/test: 1 samples also in train \(leakage\)/);
  });
});

describe("formatVerdicts", () => {
  it("one row per check, long summaries wrapped under the summary column, the overall status last", () => {
    const verdicts: AnyVerdict[] = [
      { check: "verifyInitLoss", status: "pass", summary: "init loss 2.31 vs expected 2.303", numbers: {} },
      { check: "checkBatchIndependence", status: "fail", summary: "inference mode: sample 0's output has gradient on 7 other samples' inputs: a layer mixes information across the batch", numbers: {} },
    ];
    expect(formatVerdicts(verdicts, { width: 80 })).toBe(
      [
        "check                   status  summary",
        "----------------------  ------  ------------------------------------------------",
        "verifyInitLoss          PASS    init loss 2.31 vs expected 2.303",
        "checkBatchIndependence  FAIL    inference mode: sample 0's output has gradient",
        "                                on 7 other samples' inputs: a layer mixes",
        "                                information across the batch",
        "overall: FAIL (1 pass, 0 warn, 1 fail)",
      ].join("\n"),
    );
    expect(formatVerdicts([])).toMatch(/overall: PASS \(0 pass, 0 warn, 0 fail\)$/);
  });
});

describe("drawTensors", () => {
  it("shapes the drawn samples for the model: flat for an MLP, images for a CNN, one-hot or [n, 1] labels for other losses", () => {
    const digits = mnist();
    const cnn = seeded(1, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 2, kernelSize: 3 }));
      m.add(tfl.layers.flatten());
      m.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
      return m;
    });
    const model = mlp();
    const a = drawTensors(model, digits, loss, 8, 0);
    const b = drawTensors(cnn, digits, "categoricalCrossentropy", 8, 0);
    expect([a.xs.shape, a.ys.shape, b.xs.shape, b.ys.shape]).toEqual([[8, 784], [8], [8, 28, 28, 1], [8, 10]]);
    expect(Array.from(tf.sum(b.ys, 1).dataSync())).toEqual(new Array(8).fill(1));
    expect(Array.from(tf.argMax(b.ys, 1).dataSync())).toEqual(Array.from(a.ys.dataSync())); // the same seeded draw
    tf.dispose([a.xs, a.ys, b.xs, b.ys]);
    const three = seeded(1, () => tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [784], units: 3, activation: "softmax" })] }));
    expectRefused(() => drawTensors(three, digits, loss, 8, 0), ShapeMismatchError, "SHAPE_MISMATCH", "10 classes but the model outputs 3");
    for (const m of [cnn, model, three]) m.dispose();
  });
});
