import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { expectNoLeaks } from "@fitloop/core/testing";
import { tensorsCopyData } from "./batch.js";
import { DataLoader, fromArrays, gaussianNoise, randomShift } from "./index.js";

/** 53 random 6x6 images (a short last batch of 5 at batch size 8), 3 classes. */
function images() {
  const x = Float32Array.from({ length: 53 * 36 }, (_, k) => ((k * 2654435761) % 1000) / 1000);
  return fromArrays({ x, sampleShape: [6, 6, 1], y: Array.from({ length: 53 }, (_, i) => i % 3), numClasses: 3 });
}

/** Makes all batches of an epoch, then checks each against `hostBatch()` (always a fresh buffer). */
async function batchesKeepTheirData(): Promise<void> {
  const l = new DataLoader(images(), { batchSize: 8, seed: 4, transforms: [randomShift({ maxShift: 1 }), gaussianNoise({ std: 0.2, clip: [0, 1] })] });
  await expectNoLeaks(async () => {
    const batches = Array.from({ length: l.batchesPerEpoch }, (_, b) => l.batch(1, b));
    for (const [b, batch] of batches.entries()) {
      const host = l.hostBatch(1, b);
      expect(batch.xs.shape).toEqual([host.size, 6, 6, 1]);
      expect(Array.from(await batch.xs.data())).toEqual(Array.from(host.x));
      expect(Array.from(await batch.ys.data())).toEqual(Array.from(host.y));
    }
    expect(batches.at(-1)!.xs.shape[0]).toBe(5);
    tf.dispose(batches.flatMap((b) => [b.xs, b.ys]));
  });
}

describe("the loader recycles a batch's feature buffer only where tensors copy their data", () => {
  it("cpu keeps the array it is given: no recycling, every batch keeps its data", async () => {
    await expectNoLeaks(() => void expect(tensorsCopyData()).toBe(false));
    await batchesKeepTheirData();
  });

  describe("on wasm, which copies", () => {
    beforeAll(async () => {
      if (!(await tf.setBackend("wasm"))) throw new Error("setBackend(wasm) failed");
      await tf.ready();
    });
    afterAll(async () => {
      await tf.setBackend("cpu");
    });

    it("every batch keeps its own data while later ones are made, equal to hostBatch()", async () => {
      expect(tensorsCopyData()).toBe(true);
      await batchesKeepTheirData();
    });
  });
});
