import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { Trainer } from "./index.js";
import { tinyFixture } from "./testing/index.js";

describe("smoke", () => {
  it("trains the tiny fixture and loss falls", async () => {
    const fx = tinyFixture();
    const trainer = new Trainer({ model: fx.model, optimizer: tf.train.adam(0.05), loss: "sparseCategoricalCrossentropy", metrics: ["acc"] });
    const r = await trainer.fit({ epochs: 10, train: fx.data(16), validation: fx.data(32) });
    const first = r.state.history[0]!.logs;
    const last = r.state.history.at(-1)!.logs;
    console.log(first, last);
    expect(last["loss"]).toBeLessThan(first["loss"]!);
    expect(r.outcome.status).toBe("completed");
    fx.dispose();
  });
});
