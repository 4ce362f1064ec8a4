import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { silentLogger, tensorData, Trainer, type ObserverEvent } from "./index.js";
import { smallData, smallModel } from "./adversarial/harness.fixture.js";

/** What the observer bus promises (README "The loop"), each as a test. */
function setup() {
  const model = smallModel();
  const { xs, ys } = smallData();
  const trainer = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger });
  return {
    trainer,
    fit: () => trainer.fit({ epochs: 2, train: tensorData(xs, ys, { batchSize: 8 }) }), // 3 batches per epoch
    dispose() {
      model.dispose();
      tf.dispose([xs, ys]);
    },
  };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("observers", () => {
  it("the loop does not await async observers: fit() resolves with their work pending; bus.flush() waits for all of it", async () => {
    const r = setup();
    const done: number[] = [];
    r.trainer.on("afterBatch", async (e) => {
      await sleep(30);
      done.push(e.state.globalBatch);
    });
    await r.fit();
    expect(done.length).toBeLessThan(6);
    expect(await r.trainer.bus.flush()).toBe(true);
    expect(done.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
    r.dispose();
  });

  it("flush(timeoutMs) resolves false when an observer never settles, true once nothing is pending", async () => {
    const r = setup();
    const off = r.trainer.on("afterFit", () => new Promise<void>(() => undefined));
    await r.fit();
    const start = performance.now();
    expect(await r.trainer.bus.flush(50)).toBe(false);
    expect(performance.now() - start).toBeLessThan(1000);
    off();
    const r2 = setup();
    r2.trainer.on("afterFit", () => undefined);
    await r2.fit();
    expect(await r2.trainer.bus.flush(50)).toBe(true);
    r.dispose();
    r2.dispose();
  });

  it("what is true of synchronous observers: they share the thread, so their time adds to the run's (documented); they see frozen copies", async () => {
    const r = setup();
    let seen: ObserverEvent | undefined;
    r.trainer.on("beforeBatch", (e) => {
      seen = e;
      const t = performance.now();
      while (performance.now() - t < 20) {
        // a slow synchronous observer
      }
    });
    const start = performance.now();
    await r.fit();
    expect(performance.now() - start).toBeGreaterThanOrEqual(6 * 20); // 6 deliveries of 20 ms, on the run's thread
    expect(Object.isFrozen(seen)).toBe(true);
    expect(Object.isFrozen(seen!.state)).toBe(true);
    expect(Object.isFrozen(seen!.logs)).toBe(true);
    r.dispose();
  });
});
