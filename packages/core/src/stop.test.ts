import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { Trainer, silentLogger, type Callback } from "./index.js";
import { tinyFixture } from "./testing/index.js";

describe("requestStop", () => {
  it("requests from two plugins OR together and both are recorded with who and why", async () => {
    const fx = tinyFixture({ samples: 16 });
    const patience: Callback = { name: "Patience", afterEpoch: (ctx) => { if (ctx.state.epoch === 1) ctx.requestStop("no improvement for 2 epochs"); } };
    const budget: Callback = { name: "Budget", afterEpoch: (ctx) => { if (ctx.state.epoch === 1) ctx.requestStop("time budget reached"); } };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [patience, budget], logger: silentLogger });
    const r = await t.fit({ epochs: 10, train: fx.data(8) });
    expect(r.outcome.status).toBe("stopped");
    expect(r.state.history).toHaveLength(2);
    // after* hooks run in reverse order: Budget asks first
    expect(r.outcome.stopRequests.map((s) => [s.by, s.reason, s.epoch])).toEqual([
      ["Budget", "time budget reached", 1],
      ["Patience", "no improvement for 2 epochs", 1],
    ]);
    fx.dispose();
  });

  it("one request is enough; a stop asked mid-epoch ends the epoch after that batch, runs validation, then stops", async () => {
    const fx = tinyFixture({ samples: 16 });
    const seen: string[] = [];
    const stopper: Callback = { name: "Stopper", afterBatch: (ctx) => { if (ctx.state.batchIndex === 1) ctx.requestStop("diverged"); } };
    const quiet: Callback = { name: "Quiet", afterValidate: () => void seen.push("validated"), afterEpoch: (ctx) => void seen.push(`epoch ${ctx.state.epoch} stop=${ctx.stopRequested}`) };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [stopper, quiet], logger: silentLogger });
    const r = await t.fit({ epochs: 5, train: fx.data(4), validation: fx.data(8) });
    expect(r.state.globalBatch).toBe(2);
    expect(seen).toEqual(["validated", "epoch 0 stop=true"]);
    expect(r.outcome.reason).toBe("Stopper: diverged");
    fx.dispose();
  });
});
