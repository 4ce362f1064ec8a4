import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import * as tfl from "@tensorflow/tfjs-layers";
import { permutation, Rng, seeded, useBackend } from "@fitloop/core";
import type { ArrayDataset } from "@fitloop/datasets";
import { sanityCheck, type CheckName, type SanityResult, type VerdictStatus } from "./index.js";
import { mlp, mnist, setOutputBias, weightBits, type Planted } from "./models.fixture.js";

const loss = "sparseCategoricalCrossentropy" as const;

/** The README's model: 784-128-10. */
const readmeModel = () =>
  seeded(42, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [784], units: 128, activation: "relu" }));
    m.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
    return m;
  });

const statuses = (r: SanityResult) => Object.fromEntries(r.verdicts.map((v) => [v.check, v.status])) as Record<CheckName, VerdictStatus>;

describe("sanityCheck on wasm (default budgets)", () => {
  beforeAll(async () => {
    await useBackend("wasm");
  });

  it("the README example: a healthy 784-128-10 MLP on the embedded digits passes everything within seconds, model untouched", async () => {
    expect(tf.getBackend()).toBe("wasm");
    const model = readmeModel();
    const before = weightBits(model);
    const tensors = tf.memory().numTensors;
    const start = performance.now();
    const r = await sanityCheck(model, mnist(), { loss, print: false });
    const seconds = (performance.now() - start) / 1000;
    console.log(`${r.text}\n(${seconds.toFixed(1)} s on wasm)`);
    expect(r.status).toBe("pass");
    expect(seconds).toBeLessThan(20);
    expect(weightBits(model)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });

  // Which check catches which planted bug: the whole table, so a check that starts to miss one (or
  // to raise a false alarm on the healthy model) shows up.
  const digits = () => mnist();
  const withLabels = (y: Int32Array): ArrayDataset => ({ ...digits(), y });
  const cases: { bug: string; model: () => tfl.LayersModel; data: () => ArrayDataset; expected: Partial<Record<CheckName, VerdictStatus>> }[] = [
    { bug: "none (healthy)", model: () => mlp(), data: digits, expected: {} },
    {
      bug: "output bias +10 on class 3",
      model: () => {
        const m = mlp();
        setOutputBias(m, 3, 10);
        return m;
      },
      data: digits,
      expected: { verifyInitLoss: "fail" },
    },
    { bug: "a layer that subtracts the batch mean", model: () => mlp({ planted: "mixesBatch" satisfies Planted }), data: digits, expected: { checkBatchIndependence: "fail" } },
    { bug: "inputs multiplied by 0", model: () => mlp({ planted: "ignoresInputs" }), data: digits, expected: { overfitOneBatch: "fail", inputIndependentBaseline: "fail", checkBatchIndependence: "warn" } },
    {
      bug: "shuffled labels",
      model: () => mlp(),
      data: () => {
        const p = permutation(new Rng(11), digits().size);
        return withLabels(Int32Array.from(p, (i) => digits().y[i]!));
      },
      expected: { inputIndependentBaseline: "fail" },
    },
    { bug: "label mapping collapsed to class 0", model: () => mlp(), data: () => withLabels(new Int32Array(digits().size)), expected: { dataReport: "warn", verifyInitLoss: "fail", inputIndependentBaseline: "fail" } },
    { bug: "a wrong custom gradient (tf.customGrad)", model: () => mlp({ planted: "wrongGradient" }), data: digits, expected: { checkGradients: "fail", overfitOneBatch: "warn" } }, // training on a wrong gradient is slow
  ];

  it("each planted bug is caught by its check, and only the expected checks complain", async () => {
    const table: string[] = [];
    for (const c of cases) {
      const model = c.model();
      const r = await sanityCheck(model, c.data(), { loss, print: false });
      const got = statuses(r);
      table.push(`${c.bug.padEnd(42)} ${Object.entries(got).filter(([, s]) => s !== "pass").map(([k, s]) => `${k}:${s}`).join(" ") || "all pass"}`);
      const want = Object.fromEntries(Object.keys(got).map((k) => [k, c.expected[k as CheckName] ?? "pass"]));
      expect(got, c.bug).toEqual(want);
      model.dispose();
    }
    console.log(table.join("\n"));
  });
});
