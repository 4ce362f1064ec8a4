import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { arrayData, DataError, silentLogger, Trainer, useBackend, type LossName } from "./index.js";
import { BATCH_CHECK_KERNEL, BatchChecker } from "./batch-checks.js";
import { smallModel, weightsOf } from "./adversarial/harness.fixture.js";

/**
 * The per-batch data check's fused wasm kernel (`FitloopBatchCheck`) against the tfjs-op version
 * (the cpu backend has no such kernel): the same verdict for every rule, including the edge cases a
 * cheaper trick would get wrong (huge finite values, -0, int32 labels, n not a multiple of 16).
 */
beforeAll(async () => {
  await useBackend("wasm");
});

type Case = [string, LossName, number[][], number[] | number[][], boolean, boolean];
const row = (v: number) => [v, 1, 2, 3];
const cases: Case[] = [
  ["clean", "sparseCategoricalCrossentropy", [row(0), row(1)], [0, 2], false, false],
  ["huge finite inputs are not Inf", "sparseCategoricalCrossentropy", [row(3e38), row(-3e38)], [0, 1], false, false],
  ["-0 is finite", "sparseCategoricalCrossentropy", [row(-0), row(0)], [0, 1], false, false],
  ["NaN input", "sparseCategoricalCrossentropy", [row(0), row(Number.NaN)], [0, 1], true, false],
  ["-Infinity input", "sparseCategoricalCrossentropy", [row(Number.NEGATIVE_INFINITY), row(0)], [0, 1], true, false],
  ["label = classes", "sparseCategoricalCrossentropy", [row(0), row(0)], [0, 3], false, true],
  ["fractional label", "sparseCategoricalCrossentropy", [row(0), row(0)], [0.5, 1], false, true],
  ["NaN label", "sparseCategoricalCrossentropy", [row(0), row(0)], [Number.NaN, 1], false, true],
  ["one-hot out of [0,1]", "categoricalCrossentropy", [row(0), row(0)], [[1, 0, 0], [0, 2, 0]], false, true],
  ["one-hot clean", "categoricalCrossentropy", [row(0), row(0)], [[1, 0, 0], [0, 0.5, 0.5]], false, false],
  ["NaN regression target", "meanSquaredError", [row(0), row(0)], [[1, 0, 0], [0, Number.NaN, 0]], false, true],
  ["huge regression target is fine", "meanSquaredError", [row(0), row(0)], [[3e38, 0, 0], [0, 1, 0]], false, false],
];

async function verdict(loss: LossName, xs: number[][], ys: number[] | number[][], backend: "wasm" | "cpu"): Promise<[boolean, boolean]> {
  await useBackend(backend);
  const m = smallModel();
  const checker = new BatchChecker(m, loss, "train", 1, false);
  const batch = { xs: tf.tensor2d(xs), ys: Array.isArray(ys[0]) ? tf.tensor2d(ys as number[][]) : tf.tensor1d(ys as number[]) };
  const flags = checker.flags(batch, [2, 3]);
  const v = tf.tidy(() => tf.stack(flags)).dataSync();
  tf.dispose([...flags, batch.xs, batch.ys]);
  m.dispose();
  return [v[0] !== 0, v[1] !== 0];
}

describe("FitloopBatchCheck (wasm) agrees with the tfjs-op check (cpu)", () => {
  it("is registered on wasm and not on cpu", () => {
    expect(tf.getKernel(BATCH_CHECK_KERNEL, "wasm")).toBeDefined();
    expect(tf.getKernel(BATCH_CHECK_KERNEL, "cpu")).toBeUndefined();
  });
  for (const [name, loss, xs, ys, badInputs, badTargets] of cases) {
    it(`${name} (${loss})`, async () => {
      const wasm = await verdict(loss, xs, ys, "wasm");
      const cpu = await verdict(loss, xs, ys, "cpu");
      await useBackend("wasm");
      expect(wasm).toEqual([badInputs, badTargets]);
      expect(cpu).toEqual(wasm);
    });
  }
  it("the kernel reads bool targets by their one byte per value (clean 0/1 labels are not flagged)", async () => {
    await useBackend("wasm");
    const xs = tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]);
    const ys = tf.tensor2d([true, false, true], [3, 1], "bool");
    const flags = tf.engine().runKernel(BATCH_CHECK_KERNEL, { xs, ys }, { target: "unit", classes: 1 } as unknown as tf.NamedAttrMap) as unknown as tf.Scalar[];
    expect(flags.map((f) => f.dataSync()[0])).toEqual([0, 0]);
    tf.dispose([...flags, xs, ys]);
  });
  it("a long input (n % 16 != 0, NaN in the tail and in the SIMD body)", async () => {
    for (const at of [5, 1000, 1036]) {
      const values = new Float32Array(1037).fill(1);
      values[at] = Number.NaN;
      const m = smallModel();
      const checker = new BatchChecker(m, "sparseCategoricalCrossentropy", "train", 1, false);
      const batch = { xs: tf.tensor2d(values, [1, 1037]), ys: tf.tensor1d([0], "int32") };
      const flags = checker.flags(batch, [1, 3]);
      expect(Number.isNaN(flags[0].dataSync()[0])).toBe(true);
      expect(flags[1].dataSync()[0]).toBe(0);
      tf.dispose([...flags, batch.xs, batch.ys]);
      m.dispose();
    }
  });
  it("a fit on wasm refuses a streaming batch with a bad label, naming it, before its update", async () => {
    await useBackend("wasm");
    const list = Array.from({ length: 4 }, (_, b) => ({ xs: tf.tensor2d([row(b), row(-b)]), ys: tf.tensor1d(b === 2 ? [0, 7] : [0, 1]) }));
    const m = smallModel();
    const t = new Trainer({ model: m, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger });
    const before = tf.memory().numTensors;
    const err = await t.fit({ epochs: 1, train: arrayData(list) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).message).toContain("train batch 2 of epoch 0 (0-based), sample 1 of the batch: target 7");
    expect(tf.memory().numTensors).toBe(before);
    const ref = smallModel();
    await new Trainer({ model: ref, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger }).fit({ epochs: 1, train: arrayData(list.slice(0, 2)) });
    expect(weightsOf(m)).toEqual(weightsOf(ref));
    tf.dispose(list.flatMap((b) => [b.xs, b.ys]));
    m.dispose();
    ref.dispose();
  });
});
