import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelEpoch, silentLogger, tensorData, Trainer } from "./index.js";
import { smallData, smallModel } from "./adversarial/harness.fixture.js";

describe("CancelEpoch", () => {
  it("afterEpoch of a cut epoch sees that epoch's logs (none yet), not the last batch's; no history record", async () => {
    const seen: Record<string, number>[] = [];
    const trainer = new Trainer({
      model: smallModel(),
      optimizer: tf.train.sgd(0.1),
      loss: "sparseCategoricalCrossentropy",
      logger: silentLogger,
      callbacks: [
        {
          name: "Cutter",
          beforeBatch: (ctx) => {
            if (ctx.state.epoch === 1 && ctx.state.batchIndex === 2) throw new CancelEpoch("cut");
          },
          afterEpoch: (ctx) => void seen.push({ ...ctx.logs }),
        },
      ],
    });
    const { xs, ys } = smallData();
    const { state } = await trainer.fit({ epochs: 3, train: tensorData(xs, ys, { batchSize: 8 }) });
    expect(Object.keys(seen[0]!)).toContain("loss"); // a whole epoch
    expect(seen[1]).toEqual({}); // cut in training: no epoch values yet, and no batch values posing as them
    expect(state.history.map((h) => h.epoch)).toEqual([0, 2]);
    trainer.model.dispose();
    tf.dispose([xs, ys]);
  });
});
