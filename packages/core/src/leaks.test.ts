import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { EVENTS, Trainer, silentLogger, type Callback } from "./index.js";
import { TensorLeakError, expectNoLeaks, failingPlugins, tinyFixture } from "./testing/index.js";

/** A plugin on every event that also creates and disposes tensors, as real plugins do. */
function busyPlugin(i: number): Callback {
  const cb: Record<string, unknown> = { name: `busy${i}` };
  for (const e of EVENTS) cb[e] = () => tf.tidy(() => void tf.add(tf.scalar(i), 1));
  cb["afterGradients"] = (ctx: { grads: tf.NamedTensorMap }) => {
    // a gradient transform returning new tensors: the loop must dispose the replaced ones
    const out: tf.NamedTensorMap = {};
    for (const [k, g] of Object.entries(ctx.grads)) out[k] = tf.mul(g, 1);
    return out;
  };
  return cb as Callback;
}

describe("tensor leaks", () => {
  it("no tensor growth across 200 steps with 10 plugins attached", async () => {
    const fx = tinyFixture({ samples: 40, withBatchNormAndDropout: true });
    const plugins = Array.from({ length: 10 }, (_, i) => busyPlugin(i));
    const t = new Trainer({ model: fx.model, optimizer: tf.train.adam(1e-2), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks: plugins, logger: silentLogger });
    // 5 batches per epoch; warm-up creates the optimizer slots
    const result = await expectNoLeaks(() => t.fit({ epochs: 4, train: fx.data(8), validation: fx.data(20) }), { warmup: 1, iterations: 10 });
    expect(result.after).toBe(result.before);
    fx.dispose();
  });

  it("no tensor growth when a plugin throws in any hook (validation sums included) or cancels the fit", async () => {
    const fx = tinyFixture({ samples: 16 });
    const opt = tf.train.adam(0.01);
    for (const { where, plugin } of failingPlugins()) {
      const fitOnce = () => new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [plugin], logger: silentLogger }).fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) });
      await expectNoLeaks(() => fitOnce().catch(() => undefined), { warmup: 1, iterations: 2 }).catch((e: unknown) => {
        throw new Error(`failure in ${where}: ${String(e)}`);
      });
    }
    fx.dispose();
  });

  it("the leak check itself catches a leaking hook", async () => {
    const fx = tinyFixture({ samples: 8 });
    const leaky: Callback = { afterBatch: () => void tf.scalar(1) };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [leaky], logger: silentLogger });
    await expect(expectNoLeaks(() => t.fit({ epochs: 1, train: fx.data(4) }))).rejects.toThrow(TensorLeakError);
    fx.dispose();
  });
});
