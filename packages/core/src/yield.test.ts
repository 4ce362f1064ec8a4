import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, silentLogger, tensorData, Trainer, type Callback } from "./index.js";
import { smallData, smallModel } from "./adversarial/harness.fixture.js";

/**
 * The loop lets the event loop run between batches (`yieldEveryMs`): timers, I/O and signal
 * handlers are served during a run whose awaits would otherwise all resolve at once.
 */
async function whenTimerFires(yieldEveryMs: number | false | undefined, pace?: () => void): Promise<{ firedAt: number | undefined; total: number }> {
  const model = smallModel();
  const { xs, ys } = smallData(240); // 30 batches of 8, 2 epochs
  let batches = 0;
  const counter: Callback = { name: "Counter", afterBatch: () => void (batches++, pace?.()) };
  let firedAt: number | undefined;
  const trainer = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [counter], ...(yieldEveryMs === undefined ? {} : { yieldEveryMs }) });
  const timer = setTimeout(() => void (firedAt = batches), 0);
  await trainer.fit({ epochs: 2, train: tensorData(xs, ys, { batchSize: 8, shuffle: false }), validation: tensorData(xs, ys, { batchSize: 8 }) });
  clearTimeout(timer);
  model.dispose();
  tf.dispose([xs, ys]);
  return { firedAt, total: batches };
}

const busy = (ms: number) => () => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

describe("yieldEveryMs", () => {
  it("0: a timer due before fit() fires within the first batches (a setTimeout(0) is due after >= 1 ms)", async () => {
    const r = await whenTimerFires(0);
    expect(r.firedAt).toBeGreaterThanOrEqual(1);
    expect(r.firedAt).toBeLessThanOrEqual(3);
  });

  it("the default (50 ms): a timer fires during the run, once about 50 ms of batches have gone by", async () => {
    const r = await whenTimerFires(undefined, busy(10)); // 60 batches of >= 10 ms
    expect(r.firedAt).toBeGreaterThanOrEqual(4);
    expect(r.firedAt).toBeLessThan(r.total / 2);
  });

  it("false: the loop never yields, so the timer waits for the end of fit() (what happened before)", async () => {
    const r = await whenTimerFires(false);
    expect(r.firedAt).toBeUndefined(); // it had not fired when fit() resolved
  });

  it("bad values are an OptionsError naming yieldEveryMs", () => {
    for (const bad of [-1, Number.NaN, "50", true]) {
      expect(() => new Trainer({ model: smallModel(), optimizer: tf.train.sgd(0.1), loss: "meanSquaredError", yieldEveryMs: bad as number })).toThrow(OptionsError);
      expect(() => new Trainer({ model: smallModel(), optimizer: tf.train.sgd(0.1), loss: "meanSquaredError", yieldEveryMs: bad as number })).toThrow(/yieldEveryMs/);
    }
  });
});
