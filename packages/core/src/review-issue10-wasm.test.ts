import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { useBackend, type LossName } from "./index.js";
import { BATCH_CHECK_KERNEL, BatchChecker } from "./batch-checks.js";
import { smallModel } from "./adversarial/harness.fixture.js";

/**
 * Review of issue 10 (wasm): the fused per-batch check (`FitloopBatchCheck`, now in @fitloop/wasm)
 * against the tfjs-op version for label dtypes the other tests do not try. In its own file: the wasm
 * backend is global.
 */
beforeAll(async () => {
  await useBackend("wasm");
});

async function verdict(loss: LossName, ys: () => tf.Tensor, backend: "wasm" | "cpu"): Promise<[number, number]> {
  await useBackend(backend);
  const m = smallModel();
  const checker = new BatchChecker(m, loss, "train", 1, false);
  const batch = { xs: tf.ones([8, 4]), ys: ys() };
  const flags = checker.flags(batch, [8, 1]);
  const v = tf.tidy(() => tf.stack(flags)).dataSync();
  tf.dispose([...flags, batch.xs, batch.ys]);
  m.dispose();
  return [v[0]!, v[1]!];
}

describe("FitloopBatchCheck on label dtypes", () => {
  it("is registered on wasm", () => {
    expect(tf.getKernel(BATCH_CHECK_KERNEL, "wasm")).toBeDefined();
  });

  it("int32 0/1 labels for binaryCrossentropy are clean on both backends", async () => {
    const make = () => tf.tensor2d([0, 1, 1, 0, 1, 0, 0, 1], [8, 1], "int32");
    expect(await verdict("binaryCrossentropy", make, "wasm")).toEqual([0, 0]);
    expect(await verdict("binaryCrossentropy", make, "cpu")).toEqual([0, 0]);
    await useBackend("wasm");
  });

  it("bool labels for binaryCrossentropy are clean on wasm as on cpu", async () => {
    // Was refused on wasm: a bool tensor is one byte per value in the wasm heap, but the kernel
    // (packages/wasm/src/kernels/wasm-batch-check.ts) reads non-float32 labels through HEAP32, so it
    // saw four labels in one word and read past the tensor. Core now sends only float32/int32 labels
    // to the kernel; the kernel itself should still refuse or handle other dtypes.
    const make = () => tf.tensor2d([false, true, true, false, true, false, false, true], [8, 1], "bool");
    expect(await verdict("binaryCrossentropy", make, "cpu")).toEqual([0, 0]);
    const wasm = await verdict("binaryCrossentropy", make, "wasm");
    await useBackend("wasm");
    expect(wasm).toEqual([0, 0]);
  });
});
