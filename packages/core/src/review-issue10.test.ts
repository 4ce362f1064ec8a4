import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { arrayData, fit, seeded, silentLogger, tensorData, Trainer, type BatchContext, type Callback, type DataSource, type HookContext } from "./index.js";
import { FitloopError } from "./errors.js";
import { ObserverBus } from "./bus.js";
import { comparableName } from "./optimizer-state.js";
import { expectNoLeaks } from "./testing/index.js";
import { smallData, smallModel } from "./adversarial/harness.fixture.js";

/**
 * Review of issue 10's hardening (core): each case is a valid program the change refuses or leaks
 * on, or a mistake it reports in a misleading way. Cases still open are `it.fails` with a BUG note.
 */

function sgdTrainer(model: tfl.LayersModel, callbacks: Callback[] = [], loss: "sparseCategoricalCrossentropy" | "meanSquaredError" = "sparseCategoricalCrossentropy") {
  return new Trainer({ model, optimizer: tf.train.sgd(0.1), loss, logger: silentLogger, callbacks });
}

describe("per-batch data checks", () => {
  it("labels whose non-batch dims the model leaves open (variable-length sequences) may change from batch to batch, like the inputs", async () => {
    // a per-timestep regressor over sequences of any length: input [batch, null, 3], output [batch, null, 2]
    const model = seeded(1, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ inputShape: [null, 3], units: 2 }));
      return m;
    });
    expect(model.outputs[0]!.shape).toEqual([null, null, 2]);
    // padded per batch: the first batch has 4 timesteps, the second 6
    const batches = seeded(2, () => [4, 6].map((t) => ({ xs: tf.randomNormal([2, t, 3]), ys: tf.randomNormal([2, t, 2]) })));
    const trainer = sgdTrainer(model, [], "meanSquaredError");
    const r = await trainer.fit({ epochs: 1, train: arrayData(batches) });
    expect(r.outcome.status).toBe("completed");
    tf.dispose(batches.flatMap((b) => [b.xs, b.ys]));
    model.dispose();
  });

  it("a label dim the model fixes still has to agree from batch to batch", async () => {
    const model = seeded(1, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ inputShape: [null, 3], units: 2 }));
      return m;
    });
    // the second batch's labels have 3 channels where the model outputs 2: refused before its step
    const batches = seeded(2, () => [
      { xs: tf.randomNormal([2, 4, 3]), ys: tf.randomNormal([2, 4, 2]) },
      { xs: tf.randomNormal([2, 4, 3]), ys: tf.randomNormal([2, 4, 3]) },
    ]);
    const trainer = sgdTrainer(model, [], "meanSquaredError");
    await expect(trainer.fit({ epochs: 1, train: arrayData(batches) })).rejects.toMatchObject({ code: "SHAPE_MISMATCH" });
    tf.dispose(batches.flatMap((b) => [b.xs, b.ys]));
    model.dispose();
  });
});

describe("per-batch data checks: validation messages", () => {
  it("a bad validation label is named with the model's class range (not [0, NaN])", async () => {
    const model = smallModel();
    const { xs, ys } = smallData();
    // a streaming validation source (no peekAll): its second batch has label 7 for 3 classes
    const val: DataSource = {
      batchesPerEpoch: 2,
      *batches() {
        yield { xs: tf.slice(xs, 0, 4), ys: tf.tensor1d([0, 1, 2, 0]) };
        yield { xs: tf.slice(xs, 4, 4), ys: tf.tensor1d([0, 7, 2, 0]) };
      },
    };
    const err = (await sgdTrainer(model)
      .fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }), validation: val })
      .catch((e: unknown) => e)) as FitloopError;
    expect(err.code).toBe("LABEL_OUT_OF_RANGE");
    expect(err.message).toContain("validation batch 1 of epoch 0");
    expect(err.message).not.toContain("NaN");
    expect(err.message).toContain("[0, 2]");
    model.dispose();
    tf.dispose([xs, ys]);
  });
});

describe("gradient ownership (afterGradients)", () => {
  it("a fresh tensor tf.keep()-ed only to leave the plugin's tf.tidy and returned is handed over: no leak", async () => {
    // Regression: tf.keep used to mean "the plugin keeps this tensor", which leaked every gradient of
    // this common pattern every step. Only tensors made before the batch are the plugin's now.
    const halve: Callback = {
      name: "Halve",
      afterGradients: (ctx) => {
        const out: tf.NamedTensorMap = {};
        tf.tidy(() => {
          for (const [k, g] of Object.entries(ctx.grads!)) out[k] = tf.keep(tf.mul(g, 0.5));
        });
        return out;
      },
    };
    const model = smallModel();
    const { xs, ys } = smallData();
    const trainer = sgdTrainer(model, [halve]);
    await expectNoLeaks(() => trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) }), { warmup: 1, iterations: 2 });
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it("a single tensor returned instead of a map is INVALID_GRADIENTS saying so, and is not leaked", async () => {
    const model = smallModel();
    const { xs, ys } = smallData();
    const oneTensor: Callback = { name: "OneTensor", afterGradients: (ctx) => tf.mul(Object.values(ctx.grads!)[0]!, 2) as unknown as tf.NamedTensorMap };
    const trainer = sgdTrainer(model, [oneTensor]);
    const train = tensorData(xs, ys, { batchSize: 8 });
    await trainer.fit({ epochs: 1, train }).catch(() => undefined); // the optimizer's own tensors exist before counting
    const before = tf.memory().numTensors;
    const err = (await trainer.fit({ epochs: 1, train }).catch((e: unknown) => e)) as FitloopError;
    expect(err).toBeInstanceOf(FitloopError);
    expect(err.code).toBe("INVALID_GRADIENTS");
    expect(err.message).toContain('"OneTensor"');
    expect(err.message).toMatch(/a tensor|a map|name/);
    expect(err.message).not.toContain('"kept"'); // not a complaint about a tensor's internal fields
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it("a scale a plugin keeps (made in beforeFit) can be passed to ctx.scaleGradients every step, as a kept gradient can be returned", async () => {
    class HalfUpdates implements Callback {
      readonly name = "HalfUpdates";
      half: tf.Scalar | undefined;
      beforeFit(): void {
        this.half ??= tf.scalar(0.5);
      }
      afterGradients(ctx: BatchContext): void {
        ctx.scaleGradients(this.half!);
      }
    }
    const plugin = new HalfUpdates();
    const model = smallModel();
    const { xs, ys } = smallData();
    const trainer = sgdTrainer(model, [plugin]);
    const r = await trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) });
    expect(r.outcome.status).toBe("completed");
    expect(plugin.half!.isDisposed).toBe(false);
    await expectNoLeaks(() => trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) }), { warmup: 1, iterations: 2 });
    plugin.half!.dispose();
    model.dispose();
    tf.dispose([xs, ys]);
  });
});

describe("gradient ownership: cases that work (regression guards)", () => {
  /** 4 -> 1 regressor: its output bias has one value, so its gradient can also be logged. */
  const regressor = () =>
    seeded(4, () => {
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ inputShape: [4], units: 1 }));
      return m;
    });
  const fitTwice = async (callbacks: Callback[]) => {
    const model = regressor();
    const { xs } = smallData();
    const ys = tf.tidy(() => tf.sum(xs, 1, true));
    const trainer = sgdTrainer(model, callbacks, "meanSquaredError");
    await expectNoLeaks(() => trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) }), { warmup: 1, iterations: 2 });
    model.dispose();
    tf.dispose([xs, ys]);
  };
  const biasOf = (g: tf.NamedTensorMap) => Object.keys(g).find((k) => g[k]!.size === 1)!;

  it("a gradient logged with ctx.log and returned (either order, one plugin or two): applied, read, disposed once", async () => {
    await fitTwice([
      {
        name: "LogThenReturn",
        afterGradients: (ctx) => {
          const b = biasOf(ctx.grads!);
          const g = tf.mul(ctx.grads![b]!, 0.5);
          ctx.log("bias_grad", g as tf.Scalar);
          return { ...ctx.grads!, [b]: g };
        },
      },
    ]);
    await fitTwice([
      { name: "Return", order: 0, afterGradients: (ctx) => ({ ...ctx.grads!, [biasOf(ctx.grads!)]: tf.mul(ctx.grads![biasOf(ctx.grads!)]!, 0.5) }) },
      { name: "LogIt", order: 1, afterGradients: (ctx) => ctx.log("bias_grad", ctx.grads![biasOf(ctx.grads!)] as tf.Scalar) },
    ]);
  });

  it("the same returned object from two plugins, ctx.grads values in a new object, and a map made inside tf.tidy: no leak, no double dispose", async () => {
    let shared: tf.NamedTensorMap | undefined;
    await fitTwice([
      { name: "A", order: 0, afterGradients: (ctx) => (shared = tf.tidy(() => Object.fromEntries(Object.entries(ctx.grads!).map(([k, g]) => [k, tf.mul(g, 0.5)])))) },
      { name: "B", order: 1, afterGradients: () => shared },
      { name: "C", order: 2, afterGradients: (ctx) => ({ ...ctx.grads! }) },
    ]);
  });
});

describe("ctx.scaleGradients with ctx.log and replacements", () => {
  for (const order of ["log first", "scale first"] as const) {
    it(`one tensor both logged and passed as the scale (${order}) is applied, not disposed by the read before the update; no leak`, async () => {
      const plugin: Callback = {
        name: "LoggedScale",
        afterGradients: (ctx) => {
          const s = tf.scalar(0.5);
          if (order === "log first") ctx.log("scale", s);
          ctx.scaleGradients(s);
          if (order === "scale first") ctx.log("scale", s);
        },
      };
      const model = smallModel();
      const { xs, ys } = smallData();
      const trainer = sgdTrainer(model, [plugin]);
      const r = await trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) });
      expect(r.outcome.status).toBe("completed");
      expect(r.state.history[0]!.logs["scale"]).toBeCloseTo(0.5);
      await expectNoLeaks(() => trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) }), { warmup: 1, iterations: 2 });
      model.dispose();
      tf.dispose([xs, ys]);
    });
  }

  it("a scale (GradClip-style) followed by a later plugin's replacement of some gradients: the scale reaches every gradient, the replacement is applied, no leak", async () => {
    const model = smallModel();
    const { xs, ys } = smallData();
    const first = (model.trainableWeights[0]!.read() as tf.Variable).name;
    const clip: Callback = { name: "Clip", order: 0, afterGradients: (ctx) => ctx.scaleGradients(tf.scalar(0)) };
    // freezes nothing: returns the (scaled) gradients with one of them replaced by a fresh copy
    const swap: Callback = { name: "Swap", order: 1, afterGradients: (ctx) => ({ ...ctx.grads!, [first]: tf.clone(ctx.grads![first]!) }) };
    const trainer = sgdTrainer(model, [clip, swap]);
    const before = model.getWeights().map((w) => Array.from(w.dataSync()));
    await trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) });
    // a zero scale everywhere: nothing moved, the replaced gradient included
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
    await expectNoLeaks(() => trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) }), { warmup: 1, iterations: 2 });
    model.dispose();
    tf.dispose([xs, ys]);
  });
});

describe("plugin classes (options)", () => {
  // What TypeScript (target ES5) and Babel emit for `class Quiet extends Base {}`: the subclass's
  // prototype holds only `constructor`, every hook is inherited.
  function es5Subclass(): new () => Callback {
    const Base = function (this: { calls: number }) {
      this.calls = 0;
    } as unknown as { prototype: Record<string, unknown> } & (new () => Callback);
    Base.prototype["afterEpoch"] = function (this: { calls: number }) {
      this.calls++;
    };
    const Sub = function (this: unknown) {
      return (Base as unknown as (this: unknown) => unknown).apply(this) || this;
    } as unknown as { prototype: Record<string, unknown> } & (new () => Callback);
    Sub.prototype = Object.create(Base.prototype);
    Sub.prototype["constructor"] = Sub;
    return Sub;
  }

  it("an ES5-compiled plugin class whose hooks are all inherited is accepted", () => {
    const model = smallModel();
    expect(() => new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [es5Subclass()] })).not.toThrow();
    model.dispose();
  });

  it("an ES5 constructor that sets its hooks in the constructor (TS class fields compiled to ES5) is accepted", () => {
    // var P = (function () { function P() { this.afterEpoch = function (ctx) { ... }; } return P; }());
    const P = function (this: Record<string, unknown>) {
      this["name"] = "P";
      this["afterEpoch"] = () => undefined;
    } as unknown as new () => Callback;
    const model = smallModel();
    expect(() => new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [P] })).not.toThrow();
    model.dispose();
  });

  it("helpers a plugin commonly has are not taken for foreign or misspelled hooks: setup() beside beforeFit, an onImprove callback, an afterWarmup() method, an afterEpochs option", async () => {
    const seen: string[] = [];
    class Unfreeze implements Callback {
      readonly name = "Unfreeze";
      constructor(
        readonly afterEpochs: number,
        readonly onImprove: (v: number) => void,
      ) {}
      beforeFit(ctx: HookContext): void {
        this.setup(ctx);
      }
      setup(_ctx: HookContext): void {
        seen.push("setup");
      }
      afterWarmup(): void {
        seen.push("warm");
      }
      afterEpoch(ctx: HookContext): void {
        if (ctx.state.epoch + 1 === this.afterEpochs) this.afterWarmup();
        this.onImprove(ctx.state.epoch);
      }
    }
    const model = smallModel();
    const { xs, ys } = smallData();
    const r = await sgdTrainer(model, [new Unfreeze(1, () => seen.push("improve"))]).fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) });
    expect(r.outcome.status).toBe("completed");
    expect(seen).toEqual(["setup", "warm", "improve"]);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it("still refused (negative controls): a Lightning setup() with no beforeFit, a misspelled afterEpochs() hook, onEpochStart()", async () => {
    const model = smallModel();
    const { xs, ys } = smallData();
    for (const [plugin, path] of [
      [{ name: "L", setup: () => undefined }, "setup"],
      [{ name: "M", afterEpochs: () => undefined }, "afterEpochs"],
      [{ name: "K", onEpochStart: () => undefined }, "onEpochStart"],
    ] as const) {
      const err = (await sgdTrainer(model, [plugin as unknown as Callback])
        .fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) })
        .catch((e: unknown) => e)) as FitloopError;
      expect(err.code).toBe("INVALID_OPTIONS");
      expect(err.message).toContain(`${path}:`);
    }
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it("a plain hook function is still refused (negative control)", () => {
    const model = smallModel();
    const hook = function (ctx: HookContext) {
      return ctx.state.epoch;
    };
    expect(() => new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [hook as never] })).toThrow(/bare function/);
    model.dispose();
  });
});

describe("comparableName (weights and optimizer slots matched by name)", () => {
  it("user names that differ only in a trailing digit (fc1, fc2; conv1, conv2) stay distinct, so swapped same-shape layers are caught", () => {
    expect(comparableName("fc1/kernel")).not.toBe(comparableName("fc2/kernel"));
    expect(comparableName("conv1/kernel_1")).not.toBe(comparableName("conv2/kernel"));
  });

  it("tfjs's counters are still dropped: auto layer names, variable suffixes, Keras-style and model counters", () => {
    expect(comparableName("dense_Dense1/kernel")).toBe(comparableName("dense_Dense13/kernel"));
    expect(comparableName("conv2d_Conv2D1/bias")).toBe(comparableName("conv2d_Conv2D12/bias_2"));
    expect(comparableName("bidirectional_Bidirectional1/forward_simple_rnn_SimpleRNN2/kernel")).toBe(comparableName("bidirectional_Bidirectional4/forward_simple_rnn_SimpleRNN9/kernel_1"));
    expect(comparableName("sequential_1/dense_1/kernel")).toBe(comparableName("sequential_4/dense_3/kernel"));
    expect(comparableName("fc1/kernel")).toBe(comparableName("fc1/kernel_3"));
  });

  it("a snapshot of [fc1, fc2] does not load into a model whose same-shape layers are [fc2, fc1]", async () => {
    const build = (names: [string, string]) =>
      seeded(3, () => {
        const m = tfl.sequential();
        m.add(tfl.layers.dense({ inputShape: [4], units: 4, name: names[0] }));
        m.add(tfl.layers.dense({ units: 4, name: names[1] }));
        m.add(tfl.layers.dense({ units: 3, activation: "softmax", name: "out" }));
        return m;
      });
    const a = build(["fc1", "fc2"]);
    const { xs, ys } = smallData();
    const ta = sgdTrainer(a);
    await ta.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) });
    const snap = await ta.snapshot();
    const b = build(["fc2", "fc1"]);
    const tb = sgdTrainer(b);
    expect(() => tb.loadSnapshot(snap)).toThrow(/fc1|fc2/);
    a.dispose();
    b.dispose();
    tf.dispose([xs, ys]);
  });
});

describe("seeded randomness inside hooks (deterministic mode)", () => {
  it("each validation batch's hook draws its own numbers (not the same stream for every batch of the pass)", async () => {
    const draws: number[] = [];
    const sampler: Callback = { name: "Sampler", afterValBatch: (ctx) => void draws.push(ctx.random()) };
    const model = smallModel();
    const { xs, ys } = smallData();
    const t = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, seed: 7, callbacks: [sampler] });
    await t.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }), validation: tensorData(xs, ys, { batchSize: 6, shuffle: false }) });
    expect(draws).toHaveLength(4);
    expect(new Set(draws).size).toBe(4);
    // and still the same in a second run with the seed
    const again: number[] = [];
    const model2 = smallModel();
    await new Trainer({ model: model2, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, seed: 7, callbacks: [{ name: "Sampler", afterValBatch: (ctx) => void again.push(ctx.random()) }] }).fit({
      epochs: 1,
      train: tensorData(xs, ys, { batchSize: 8 }),
      validation: tensorData(xs, ys, { batchSize: 6, shuffle: false }),
    });
    expect(again).toEqual(draws);
    model.dispose();
    model2.dispose();
    tf.dispose([xs, ys]);
  });
});

describe("one-call fit()", () => {
  it("fit({ ..., resumeFrom }) (typed as accepted: TrainerOptions & FitOptions) resumes instead of refusing resumeFrom as a Trainer option", async () => {
    // Regression: the one-call form passed resumeFrom to the (strict) Trainer options.
    const model = smallModel();
    const { xs, ys } = smallData();
    const t = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger });
    await t.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) });
    const snap = await t.snapshot();
    const r = await fit({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, epochs: 2, train: tensorData(xs, ys, { batchSize: 8 }), resumeFrom: snap });
    expect(r.state.history).toHaveLength(2);
    model.dispose();
    tf.dispose([xs, ys]);
  });
});

describe("observer bus", () => {
  it("flush() awaited from a hook during fit waits for the async observers so far; a rejecting observer and one subscribed during flush do not break it", async () => {
    const done: string[] = [];
    const model = smallModel();
    const { xs, ys } = smallData();
    let trainer: Trainer;
    let late = 0;
    const waiter: Callback = {
      name: "Waiter",
      afterEpoch: async () => {
        const flushed = trainer.bus.flush(1000);
        trainer.on("afterFit", () => void late++); // subscribed while flushing
        expect(await flushed).toBe(true);
        expect(done).toContain("slow"); // the slow observer of afterTrain finished first
      },
    };
    trainer = sgdTrainer(model, [waiter]);
    trainer.on("afterTrain", async () => {
      await new Promise((r) => setTimeout(r, 30));
      done.push("slow");
    });
    trainer.on("afterTrain", async () => {
      throw new Error("observer failed");
    });
    const r = await trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) });
    expect(r.outcome.status).toBe("completed");
    expect(await trainer.bus.flush(1000)).toBe(true);
    expect(late).toBe(1);
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it("an async observer that awaits bus.flush() (to let the others finish first) does not deadlock every later flush", async () => {
    // Regression: flush() waited for the calling observer's own promise, so it never resolved.
    const bus = new ObserverBus(silentLogger);
    bus.on("afterFit", async () => {
      await bus.flush();
    });
    bus.emit("afterFit", { epoch: 0, epochs: 1, step: 0, globalBatch: 0, batchIndex: 0, batchesPerEpoch: 1, stopRequests: [], history: [], logs: {} } as never);
    expect(await bus.flush(500)).toBe(true);
  });
});

describe("sourceBatches", () => {
  it("a source that yields promises of batches from a sync iterable still trains (for await unwrapped them before)", async () => {
    const model = smallModel();
    const { xs, ys } = smallData();
    const source: DataSource = {
      batchesPerEpoch: 3,
      *batches(cursor) {
        for (let b = cursor.batchIndex; b < 3; b++) yield Promise.resolve({ xs: tf.slice(xs, b * 8, 8), ys: tf.slice(ys, b * 8, 8) }) as never;
      },
    };
    const r = await sgdTrainer(model).fit({ epochs: 1, train: source });
    expect(r.outcome.status).toBe("completed");
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
