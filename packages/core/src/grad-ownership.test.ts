import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { FitloopError, seeded, silentLogger, tensorData, Trainer, type BatchContext, type Callback, type HookContext } from "./index.js";
import { expectNoLeaks } from "./testing/index.js";
import { expectRejected, smallData, smallModel, weightsOf } from "./adversarial/harness.fixture.js";

/** Who owns the gradients a plugin returns from afterGradients (the loop), and what a plugin may keep. */
function run(callbacks: Callback[], epochs = 2) {
  const model = smallModel();
  const { xs, ys } = smallData();
  const trainer = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks });
  return {
    model,
    trainer,
    fit: () => trainer.fit({ epochs, train: tensorData(xs, ys, { batchSize: 8, seed: 1 }) }),
    dispose() {
      model.dispose();
      tf.dispose([xs, ys]);
    },
  };
}

/** Freezes the first kernel by returning cached zeros for its gradient. */
class FreezeFirst implements Callback {
  readonly name = "FreezeFirst";
  zeros: tf.Tensor | undefined;
  constructor(private readonly make: "beforeFit" | "keep" | "plain") {}
  beforeFit(ctx: HookContext): void {
    if (this.make === "beforeFit") this.zeros ??= tf.zeros(ctx.model.trainableWeights[0]!.shape as number[]);
  }
  afterGradients(ctx: BatchContext): tf.NamedTensorMap {
    const grads = { ...ctx.grads! };
    const first = Object.keys(grads)[0]!;
    if (!this.zeros) this.zeros = this.make === "keep" ? tf.tidy(() => tf.keep(tf.zerosLike(grads[first]!))) : tf.zerosLike(grads[first]!);
    grads[first] = this.zeros;
    return grads;
  }
}

describe("gradients returned from afterGradients", () => {
  it("cached zeros made in beforeFit stay the plugin's: reused every step, never disposed by the loop, no leak; the frozen weight does not move", async () => {
    const plugin = new FreezeFirst("beforeFit");
    const r = run([plugin]);
    const before = weightsOf(r.model);
    await r.fit();
    expect(plugin.zeros!.isDisposed).toBe(false);
    const after = weightsOf(r.model);
    expect(after[0]).toEqual(before[0]); // frozen
    expect(after[2]).not.toEqual(before[2]); // the others train
    await expectNoLeaks(() => r.fit(), { warmup: 1, iterations: 3 });
    plugin.zeros!.dispose();
    r.dispose();
  });

  for (const make of ["plain", "keep"] as const) {
    it(`a cache made lazily during a step${make === "keep" ? " (tf.keep-ed)" : ""} is the loop's once returned: returning it again is INVALID_GRADIENTS saying how to keep one`, async () => {
      const plugin = new FreezeFirst(make);
      const r = run([plugin]);
      await r.fit().catch(() => undefined); // the optimizer's scalar exists before counting
      plugin.zeros = undefined;
      await expectRejected(() => r.fit(), FitloopError, "INVALID_GRADIENTS", ['"FreezeFirst"', "disposed", "belong to the loop", "beforeFit"]);
      r.dispose();
    });
  }

  it("refused replacements (a missing variable) are disposed, except a tensor the plugin keeps; weights unchanged", async () => {
    const cached = tf.scalar(1); // the plugin's, made before the run
    const bad: Callback = {
      name: "DropsOne",
      afterGradients: (ctx) => {
        const names = Object.keys(ctx.grads!);
        // fresh tensors for all but the last variable, plus the cached one under an unknown name
        return { ...Object.fromEntries(names.slice(0, -1).map((n) => [n, tf.mul(ctx.grads![n]!, 2)])), bogus: cached };
      },
    };
    const r = run([bad]);
    const err = await expectRejected(() => r.fit(), FitloopError, "INVALID_GRADIENTS", ['"DropsOne"', "missing", "unknown bogus"], { model: r.model });
    expect(err).toBeDefined();
    expect(cached.isDisposed).toBe(false);
    cached.dispose();
    r.dispose();
  });

  it("a variable returned as a gradient is not disposed (the loop uses a clone); the model stays usable", async () => {
    const r = run([{ name: "SelfGrad", afterGradients: (ctx) => ({ ...ctx.grads!, [Object.keys(ctx.grads!)[0]!]: ctx.model.trainableWeights[0]!.read() }) }], 1);
    await r.fit();
    expect(r.model.trainableWeights[0]!.read().isDisposed).toBe(false);
    await r.fit();
    r.dispose();
  });

  it("one fresh tensor for two variables of the same shape: no double dispose, no leak", async () => {
    const model = seeded(5, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ inputShape: [4], units: 4, activation: "relu" }));
      m.add(tfl.layers.dense({ units: 4, activation: "relu" }));
      m.add(tfl.layers.dense({ units: 3, activation: "softmax" }));
      return m;
    });
    const { xs, ys } = smallData();
    const shared: Callback = {
      name: "Shared",
      afterGradients: (ctx) => {
        const g = { ...ctx.grads! };
        const [a, b] = Object.keys(g).filter((n) => g[n]!.shape.join() === "4");
        const zeros = tf.zeros([4]);
        g[a!] = zeros;
        g[b!] = zeros;
        return g;
      },
    };
    const trainer = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [shared] });
    await expectNoLeaks(() => trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) }), { warmup: 1, iterations: 3 });
    model.dispose();
    tf.dispose([xs, ys]);
  });

  for (const [what, value, culprit] of [
    ["null", null, "returned null"],
    ["a number", 0, "returned number"],
    ["an int32 tensor", "int32", "int32 gradient"],
  ] as const) {
    it(`${what} for a gradient: INVALID_GRADIENTS naming plugin and variable; nothing leaks`, async () => {
      const r = run([
        {
          name: "BadValue",
          afterGradients: (ctx) => {
            const g = { ...ctx.grads! } as Record<string, unknown>;
            const first = Object.keys(g)[0]!;
            g[first] = value === "int32" ? tf.zeros((ctx.grads![first] as tf.Tensor).shape, "int32") : value;
            return g as tf.NamedTensorMap;
          },
        },
      ]);
      await expectRejected(() => r.fit(), FitloopError, "INVALID_GRADIENTS", ['"BadValue"', culprit], { model: r.model });
      r.dispose();
    });
  }
});
