/**
 * Adversarial suite: silent mistakes. Options, hooks, plugins and metrics that a framework could
 * quietly ignore (a typo'd option, a Keras hook name, a plain function as a plugin, a metric that
 * overwrites `loss`) must be refused with a typed error naming the culprit, before any tensor is
 * made or any weight changes. Also: two concurrent `fit()` calls, and `outcome.reason`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import {
  BaseCallback,
  CancelFit,
  DuplicateStateKeyError,
  FitloopError,
  OptionsError,
  PluginOrderError,
  Trainer,
  silentLogger,
  type Callback,
  type FitOutcome,
  type PluginClass,
  type TrainerOptions,
} from "../index.js";
import { expectRefused, expectRejected, smallRun, weightsOf } from "./harness.fixture.js";

type Run = ReturnType<typeof smallRun>;
let r: Run;
/** Valid Trainer options on the shared model (no callbacks). */
let base: TrainerOptions;

beforeAll(() => {
  r = smallRun();
  base = { model: r.model, optimizer: r.trainer.optimizer, loss: "sparseCategoricalCrossentropy", logger: silentLogger };
});
afterAll(() => {
  r.trainer.optimizer.dispose();
  r.dispose();
});

const trainerWith = (extra: Record<string, unknown>) => () => new Trainer({ ...base, ...extra } as TrainerOptions);
const issuePaths = (e: OptionsError) => e.issues.map((i) => i.path);

describe("unknown option keys are refused with a 'did you mean'", () => {
  // key -> the option that was probably meant (in this call, or in the other one / the data source)
  const trainerCases: [string, string, RegExp][] = [
    ["metric", "metrics", /"metric" \(did you mean "metrics"\?\)/],
    ["callback", "callbacks", /"callback" \(did you mean "callbacks"\?\)/],
    ["valdation", "validation", /"valdation" \(did you mean "validation"\? it is an option of trainer\.fit/],
    ["epoch", "epochs", /"epoch" \(did you mean "epochs"\? it is an option of trainer\.fit/],
    ["batchSize", "batchSize", /"batchSize" \(it is an option of the data source: tensorData/],
  ];
  for (const [key, meant, hint] of trainerCases) {
    it(`new Trainer({ ${key} }) -> OptionsError naming "${key}" and suggesting "${meant}"`, () => {
      const e = expectRefused(trainerWith({ [key]: 1 }), OptionsError, "INVALID_OPTIONS", [`"${key}"`, hint, /accepted: model, optimizer, loss, metrics, callbacks/], { model: r.model });
      expect(issuePaths(e)).toEqual([key]);
    });
  }

  const fitCases: [string, string, RegExp][] = [
    ["valdation", "validation", /"valdation" \(did you mean "validation"\?\)/],
    ["epoch", "epochs", /"epoch" \(did you mean "epochs"\?\)/],
    ["metric", "metrics", /"metric" \(did you mean "metrics"\? it is an option of new Trainer/],
    ["callback", "callbacks", /"callback" \(did you mean "callbacks"\? it is an option of new Trainer/],
    ["batchSize", "batchSize", /"batchSize" \(it is an option of the data source: tensorData/],
  ];
  for (const [key, meant, hint] of fitCases) {
    it(`trainer.fit({ ${key} }) -> OptionsError naming "${key}" and suggesting "${meant}"`, async () => {
      const t = new Trainer(base);
      const e = await expectRejected(() => t.fit({ epochs: 1, train: r.train(), [key]: 1 } as never), OptionsError, "INVALID_OPTIONS", [`"${key}"`, hint, /accepted: epochs, train, validation/], { model: r.model });
      expect(issuePaths(e)).toEqual([key]);
    });
  }

  it("several unknown keys at once are all listed, each with its own hint", () => {
    const e = expectRefused(trainerWith({ metric: ["acc"], callback: [], batchSize: 8 }), OptionsError, "INVALID_OPTIONS", [
      /"metric" \(did you mean "metrics"\?\)/,
      /"callback" \(did you mean "callbacks"\?\)/,
      /"batchSize" \(it is an option of the data source/,
    ], { model: r.model });
    expect(e.issues).toHaveLength(1);
  });

  it("several unknown fit() keys at once are all listed", async () => {
    const t = new Trainer(base);
    await expectRejected(() => t.fit({ epochs: 1, train: r.train(), epoch: 2, valdation: r.train(), batchSize: 8 } as never), OptionsError, "INVALID_OPTIONS", ['"epoch"', '"valdation"', '"batchSize"', 'did you mean "epochs"', 'did you mean "validation"'], { model: r.model });
  });

  it("an unknown key inside dataChecks suggests dataChecks' own key, not the top-level ones", () => {
    const e = expectRefused(trainerWith({ dataChecks: { evry: 1 } }), OptionsError, "INVALID_OPTIONS", ["dataChecks", /unknown option "evry" \(did you mean "every"\?\); accepted: every$/m], { model: r.model });
    expect(issuePaths(e)).toContain("dataChecks");
    expect(e.message).not.toMatch(/evry.*accepted: model/);
  });
});

describe("wrong types for every option are refused, naming the option", () => {
  const cases: [string, Record<string, unknown>, string | RegExp][] = [
    ["model: a plain object", { model: {} }, /model: must be a tfjs-layers model/],
    ["model: a tensor", { model: "tensor" }, /model: must be a tfjs-layers model/],
    ["model missing", { model: undefined }, /model: must be a tfjs-layers model/],
    ["loss: an unknown name", { loss: "mse" }, /loss: must be one of sparseCategoricalCrossentropy/],
    ["loss: a number", { loss: 5 }, /loss: must be one of/],
    ["metrics: not an array", { metrics: "acc" }, /metrics: .*expected array/],
    ["metrics: an unknown metric name", { metrics: ["f1"] }, /metrics\.0: must be "acc", "accuracy"/],
    ["seed: 1.5", { seed: 1.5 }, /seed: must be an integer/],
    ["seed: a string", { seed: "1" }, /seed: .*expected number/],
    ["hookTimeoutMs: 0", { hookTimeoutMs: 0 }, /hookTimeoutMs: must be a number of milliseconds > 0/],
    ["hookTimeoutMs: -1", { hookTimeoutMs: -1 }, /hookTimeoutMs: must be a number of milliseconds > 0/],
    ["hookTimeoutMs: NaN", { hookTimeoutMs: Number.NaN }, /hookTimeoutMs: .*NaN/],
    ["hookTimeoutMs: a string", { hookTimeoutMs: "50" }, /hookTimeoutMs: .*expected number/],
    ["callbacks: not an array", { callbacks: "EarlyStopping" }, /callbacks: .*expected array/],
    ["callbacks: a number in the array", { callbacks: [5] }, /callbacks\.0: must be a plugin instance/],
    ["logger: an empty object", { logger: {} }, /logger: must be a logger/],
    ["container: an empty object", { container: {} }, /container: must be a tsyringe container/],
    ["dataChecks: { every: -1 }", { dataChecks: { every: -1 } }, /dataChecks\.every: must be an integer >= 0/],
    ["dataChecks: { every: 1.5 }", { dataChecks: { every: 1.5 } }, /dataChecks\.every: .*int/],
    ["dataChecks: 1", { dataChecks: 1 }, /dataChecks: .*expected object/],
  ];
  for (const [label, extra, culprit] of cases) {
    it(`new Trainer({ ${label} })`, () => {
      const opts = { ...extra };
      if (opts["model"] === "tensor") opts["model"] = r.xs; // a tensor is not a model
      expectRefused(trainerWith(opts), OptionsError, "INVALID_OPTIONS", culprit, { model: r.model });
    });
  }

  it("every wrong option of one call is listed in one OptionsError", () => {
    const e = expectRefused(trainerWith({ seed: 1.5, hookTimeoutMs: 0, metrics: "acc", loss: "mse" }), OptionsError, "INVALID_OPTIONS", ["seed", "hookTimeoutMs", "metrics", "loss"], { model: r.model });
    expect(issuePaths(e).sort()).toEqual(["hookTimeoutMs", "loss", "metrics", "seed"]);
  });

  const fitCases: [string, Record<string, unknown>, string | RegExp][] = [
    ["epochs: 0", { epochs: 0 }, /epochs: must be >= 1/],
    ["epochs: 1.5", { epochs: 1.5 }, /epochs: must be an integer/],
    ['epochs: "3"', { epochs: "3" }, /epochs: .*expected number/],
    ["epochs missing", { epochs: undefined }, /epochs: /],
    ["train: a plain object", { train: {} }, /train: must be a data source/],
    ["train: a tensor", { train: "tensor" }, /train: must be a data source/],
    ["validation: a plain object", { validation: {} }, /validation: must be a data source/],
    ["initialEpoch: -1", { initialEpoch: -1 }, /initialEpoch: .*>=0/],
    ["initialEpoch: 1.5", { initialEpoch: 1.5 }, /initialEpoch: .*int/],
    ["resumeFrom: a number", { resumeFrom: 5 }, /resumeFrom: must be a run snapshot/],
  ];
  for (const [label, extra, culprit] of fitCases) {
    it(`trainer.fit({ ${label} })`, async () => {
      const t = new Trainer(base);
      const opts: Record<string, unknown> = { epochs: 1, train: r.train(), ...extra };
      if (opts["train"] === "tensor") opts["train"] = r.xs;
      await expectRejected(() => t.fit(opts as never), OptionsError, "INVALID_OPTIONS", culprit, { model: r.model });
    });
  }

  it("a fit() refused for its options leaves the Trainer usable", async () => {
    const t = new Trainer(base);
    await expect(t.fit({ epochs: 0, train: r.train() })).rejects.toBeInstanceOf(OptionsError);
    const res = await t.fit({ epochs: 1, train: r.train() });
    expect(res.outcome.status).toBe("completed");
  });
});

describe("optimizer and callbacks of the wrong kind", () => {
  const optimizers: [string, () => unknown][] = [
    ["undefined", () => undefined],
    ["null", () => null],
    ["{}", () => ({})],
    ["tf.train.adam (the factory, not an instance)", () => tf.train.adam],
    ["tf.AdamOptimizer (the class, not an instance)", () => tf.AdamOptimizer],
    ["an object with minimize only", () => ({ minimize: () => null })],
  ];
  for (const [label, make] of optimizers) {
    it(`optimizer: ${label} -> OptionsError naming optimizer`, () => {
      const optimizer = make();
      const e = expectRefused(trainerWith({ optimizer }), OptionsError, "INVALID_OPTIONS", /optimizer: must be a tfjs optimizer instance/, { model: r.model });
      expect(issuePaths(e)).toEqual(["optimizer"]);
    });
  }

  const callbacks: [string, unknown, string | RegExp][] = [
    ["an arrow function in callbacks", [(ctx: unknown) => void ctx], /callbacks\.0: must be a plugin instance, a plugin class or an object of hooks/],
    ["an async arrow function in callbacks", [async () => {}], /callbacks\.0: must be a plugin instance/],
    ["a plain function in callbacks", [function afterEpoch(ctx: unknown) { void ctx; }], /callbacks\.0: must be a plugin instance, a plugin class or an object of hooks .*a bare function is neither/],
    ["a bare function instead of the array", (ctx: unknown) => void ctx, /callbacks: .*expected array/],
    ["an array inside callbacks", [[{ afterEpoch: () => {} }]], /callbacks\.0: must be a plugin instance/],
    ["null in callbacks", [null], /callbacks\.0: must be a plugin instance/],
  ];
  for (const [label, value, culprit] of callbacks) {
    it(`${label} -> OptionsError`, () => {
      expectRefused(trainerWith({ callbacks: value }), OptionsError, "INVALID_OPTIONS", culprit, { model: r.model });
    });
  }

  it("a plugin class (with or without prototype hooks) is still accepted", async () => {
    const seen: string[] = [];
    class WithMethod {
      afterEpoch() {
        seen.push("method");
      }
    }
    class WithField {
      readonly afterEpoch = () => void seen.push("field");
    }
    const t = new Trainer({ ...base, callbacks: [WithMethod, WithField] });
    const res = await t.fit({ epochs: 1, train: r.train() });
    expect(res.outcome.status).toBe("completed");
    expect(seen.sort()).toEqual(["field", "method"]);
  });
});

describe("hooks under foreign or misspelled names, and hooks that are not functions", () => {
  const foreign: [string, string][] = [
    ["onEpochEnd", "afterEpoch"],
    ["on_train_batch_end", "afterBatch"],
    ["on_epoch_end", "afterEpoch"],
    ["onTrainBegin", "beforeFit"],
    ["on_train_begin", "beforeFit"],
    ["onBatchEnd", "afterBatch"],
    ["on_validation_batch_end", "afterValBatch"],
  ];
  const misspelled: [string, string][] = [
    ["afterEpochs", "afterEpoch"],
    ["beforebatch", "beforeBatch"],
    ["afterStepp", "afterStep"],
    ["AfterEpoch", "afterEpoch"],
    ["after_epoch", "afterEpoch"],
    ["beforeValidation", "beforeValidate"],
  ];
  // what the code does: refuses the run (OptionsError when fit() starts, and in describeLoop()), naming the event meant
  for (const [key, meant] of [...foreign, ...misspelled]) {
    it(`{ ${key}() } is refused, naming "${meant}"`, async () => {
      const plugin = { name: "P", [key]: () => {} } as Callback;
      const t = new Trainer({ ...base, callbacks: [plugin] });
      const e = await expectRejected(() => t.fit({ epochs: 1, train: r.train() }), OptionsError, "INVALID_OPTIONS", ['plugin "P"', `${key}:`, `"${meant}"`], { model: r.model });
      expect(issuePaths(e)).toEqual([key]);
      expectRefused(() => t.describeLoop(), OptionsError, "INVALID_OPTIONS", [`${key}:`, `"${meant}"`]);
    });
  }

  it("a plugin class instance whose prototype has such methods: every one is listed", async () => {
    class KerasStyle extends BaseCallback {
      onEpochEnd() {}
      on_train_batch_end() {}
      beforebatch() {}
      afterEpoch() {} // a real hook beside them is fine
    }
    const t = new Trainer({ ...base, callbacks: [new KerasStyle()] });
    const e = await expectRejected(() => t.fit({ epochs: 1, train: r.train() }), OptionsError, "INVALID_OPTIONS", ['plugin "KerasStyle"', /onEpochEnd: .*"afterEpoch"/, /on_train_batch_end: .*"afterBatch"/, /beforebatch: .*"beforeBatch"/], { model: r.model });
    expect(issuePaths(e).sort()).toEqual(["beforebatch", "onEpochEnd", "on_train_batch_end"]);
  });

  it("the same class passed as a class (constructed by the run container) is refused the same way", async () => {
    class OnEpochEndPlugin {
      onEpochEnd() {}
    }
    const t = new Trainer({ ...base, callbacks: [OnEpochEndPlugin as unknown as PluginClass] });
    await expectRejected(() => t.fit({ epochs: 1, train: r.train() }), OptionsError, "INVALID_OPTIONS", ['plugin "OnEpochEndPlugin"', /onEpochEnd: .*"afterEpoch"/], { model: r.model });
  });

  it("a subclass inherits the check (the method sits on the parent's prototype)", async () => {
    class Parent {
      on_epoch_end() {}
    }
    class Child extends Parent {}
    const t = new Trainer({ ...base, callbacks: [new Child() as Callback] });
    await expectRejected(() => t.fit({ epochs: 1, train: r.train() }), OptionsError, "INVALID_OPTIONS", ['plugin "Child"', /on_epoch_end: .*"afterEpoch"/], { model: r.model });
  });

  const notFunctions: [string, unknown, string][] = [
    ["afterEpoch", 5, "number"],
    ["afterBatch", "x", "string"],
    ["beforeFit", {}, "object"],
    ["afterFit", null, "object"],
  ];
  for (const [key, value, type] of notFunctions) {
    it(`{ ${key}: ${JSON.stringify(value)} } is refused: must be a function`, async () => {
      const t = new Trainer({ ...base, callbacks: [{ name: "P", [key]: value } as Callback] });
      await expectRejected(() => t.fit({ epochs: 1, train: r.train() }), OptionsError, "INVALID_OPTIONS", ['plugin "P"', `${key}: must be a function (ctx) => ..., got ${type}`], { model: r.model });
    });
  }

  it("helper methods and fields that are not hook-like are left alone", async () => {
    class Helper {
      readonly name = "Helper";
      readonly onlyOnce = true; // a field named on*, not a function
      afterwards() {
        return 1;
      }
      describe() {
        return "";
      }
      afterEpoch() {}
    }
    const res = await new Trainer({ ...base, callbacks: [new Helper()] }).fit({ epochs: 1, train: r.train() });
    expect(res.outcome.status).toBe("completed");
  });
});

describe("plugin order and identity", () => {
  const fitWith = (callbacks: Callback[]) => () => new Trainer({ ...base, callbacks }).fit({ epochs: 1, train: r.train() });
  const stateful = (name: string, stateKey: string): Callback => ({ name, stateKey, stateDict: () => ({}), loadStateDict: () => {} });

  it('runsAfter: "name" (a string, not an array) -> OptionsError', async () => {
    await expectRejected(fitWith([{ name: "a" }, { name: "b", runsAfter: "a" as never }]), OptionsError, "INVALID_OPTIONS", ['plugin "b"', 'runsAfter: must be an array of plugin names, got "a"'], { model: r.model });
  });

  it("runsAfter: [1] -> OptionsError", async () => {
    await expectRejected(fitWith([{ name: "b", runsAfter: [1] as never }]), OptionsError, "INVALID_OPTIONS", ['plugin "b"', "runsAfter: must be an array of plugin names, got [1]"], { model: r.model });
  });

  it("runsBefore: a string -> OptionsError", async () => {
    await expectRejected(fitWith([{ name: "a" }, { name: "b", runsBefore: "a" as never }]), OptionsError, "INVALID_OPTIONS", ['plugin "b"', "runsBefore: must be an array"], { model: r.model });
  });

  it("runsAfter naming a plugin that is not registered -> MISSING_PLUGIN", async () => {
    await expectRejected(fitWith([{ name: "a" }, { name: "b", runsAfter: ["early-stopping"] }]), PluginOrderError, "MISSING_PLUGIN", ['plugin "b"', 'runsAfter: "early-stopping"', "registered: a, b"], { model: r.model });
  });

  it("a cycle -> ORDER_CYCLE naming the plugins on it", async () => {
    await expectRejected(fitWith([{ name: "a", runsAfter: ["c"] }, { name: "b" }, { name: "c", runsAfter: ["a"] }]), PluginOrderError, "ORDER_CYCLE", [/a -> c -> a|c -> a -> c/], { model: r.model });
  });

  it("a plugin that runs after itself -> ORDER_CYCLE", async () => {
    await expectRejected(fitWith([{ name: "a", runsAfter: ["a"] }]), PluginOrderError, "ORDER_CYCLE", ["a -> a"], { model: r.model });
  });

  for (const key of ["__proto__", "constructor", "prototype", ""]) {
    it(`stateKey ${JSON.stringify(key)} -> OptionsError`, async () => {
      await expectRejected(fitWith([stateful("s", key)]), OptionsError, "INVALID_OPTIONS", ['plugin "s"', `stateKey: must be a non-empty string`, `got ${JSON.stringify(key)}`], { model: r.model });
    });
  }

  it("a stateKey without stateDict/loadStateDict -> OptionsError (the state would silently not be saved)", async () => {
    await expectRejected(fitWith([{ name: "s", stateKey: "k" }]), OptionsError, "INVALID_OPTIONS", ["stateKey", '"k" is set, but stateDict() and loadStateDict() are not both implemented'], { model: r.model });
  });

  it("two plugins with the same stateKey -> DUPLICATE_STATE_KEY naming both", async () => {
    await expectRejected(fitWith([stateful("first", "k"), stateful("second", "k")]), DuplicateStateKeyError, "DUPLICATE_STATE_KEY", ['stateKey "k"', "first", "second"], { model: r.model });
  });

  it("two plugins with the same name -> DUPLICATE_PLUGIN_NAME", async () => {
    await expectRejected(fitWith([{ name: "twin" }, { name: "twin" }]), PluginOrderError, "DUPLICATE_PLUGIN_NAME", ['two plugins are named "twin"'], { model: r.model });
  });

  it("two instances of one class (same default name) -> DUPLICATE_PLUGIN_NAME", async () => {
    class Same {
      afterEpoch() {}
    }
    await expectRejected(fitWith([new Same(), new Same()]), PluginOrderError, "DUPLICATE_PLUGIN_NAME", ['"Same"'], { model: r.model });
  });

  it("order: NaN -> OptionsError", async () => {
    await expectRejected(fitWith([{ name: "o", order: Number.NaN }]), OptionsError, "INVALID_OPTIONS", ["o", "order: must be a finite number"], { model: r.model });
  });
});

describe("metric names the loop writes, and metrics that collide", () => {
  const metric = () => tf.scalar(0);
  for (const name of ["loss", "lr", "val_acc", "val_loss"]) {
    it(`a metric named "${name}" is refused at construction`, () => {
      expectRefused(trainerWith({ metrics: [{ [name]: metric }] }), OptionsError, "INVALID_OPTIONS", ["metrics[0]", `"${name}" is a name the loop writes`], { model: r.model });
    });
  }

  it('"acc" and { acc: fn } collide', () => {
    expectRefused(trainerWith({ metrics: ["acc", { acc: metric }] }), OptionsError, "INVALID_OPTIONS", ['metrics[1]: "acc" appears twice'], { model: r.model });
  });

  it("two { f1 } metrics collide", () => {
    expectRefused(trainerWith({ metrics: [{ f1: metric }, { f1: metric }] }), OptionsError, "INVALID_OPTIONS", ['metrics[1]: "f1" appears twice'], { model: r.model });
  });

  it("several bad metric names are all listed", () => {
    const e = expectRefused(trainerWith({ metrics: [{ loss: metric, lr: metric }, "acc", "acc"] }), OptionsError, "INVALID_OPTIONS", ['"loss"', '"lr"', '"acc" appears twice'], { model: r.model });
    expect(e.issues).toHaveLength(3);
  });
});

describe("two fit() calls at once on one Trainer", () => {
  it("the second is refused with FIT_IN_PROGRESS; the first completes as a lone run would; a new fit works afterwards", async () => {
    let release!: () => void;
    const gate = new Promise<void>((res) => (release = res));
    let parked!: () => void;
    const atGate = new Promise<void>((res) => (parked = res));
    const gated: Callback = {
      name: "gate",
      beforeBatch: async (ctx) => {
        if (ctx.state.globalBatch !== 1) return;
        parked();
        await gate;
      },
    };
    const a = smallRun({ callbacks: [gated] });
    const lone = smallRun({ callbacks: [{ name: "gate", beforeBatch: async () => {} }] });
    try {
      const first = a.trainer.fit({ epochs: 2, train: a.train() });
      await atGate; // the first run is parked inside a hook, after one update
      const midRun = weightsOf(a.model);
      await expectRejected(() => a.trainer.fit({ epochs: 1, train: a.train() }), FitloopError, "FIT_IN_PROGRESS", ["already running fit()"], { model: a.model });
      // also with options that would be refused: the run in progress is what is reported
      await expectRejected(() => a.trainer.fit({ epochs: 0 } as never), FitloopError, "FIT_IN_PROGRESS", ["already running fit()"], { model: a.model });
      expect(weightsOf(a.model)).toEqual(midRun);
      release();
      const res = await first;
      expect(res.outcome.status).toBe("completed");
      expect(res.state.step).toBe(6);

      const loneRes = await lone.trainer.fit({ epochs: 2, train: lone.train() });
      expect(loneRes.state.step).toBe(6);
      expect(weightsOf(a.model)).toEqual(weightsOf(lone.model));
      expect(res.state.history).toEqual(loneRes.state.history);

      const again = await a.trainer.fit({ epochs: 1, train: a.train() });
      expect(again.outcome.status).toBe("completed");
      expect(again.state.step).toBe(3);
    } finally {
      release();
      a.trainer.optimizer.dispose();
      lone.trainer.optimizer.dispose();
      a.dispose();
      lone.dispose();
    }
  });

  it("after a failed fit, the Trainer is not stuck in progress", async () => {
    const t = new Trainer({ ...base, callbacks: [{ name: "boom", beforeEpoch: () => { throw new Error("boom"); } }] });
    await expect(t.fit({ epochs: 1, train: r.train() })).rejects.toMatchObject({ code: "PLUGIN_FAILED" });
    await expect(t.fit({ epochs: 1, train: r.train() })).rejects.toMatchObject({ code: "PLUGIN_FAILED" }); // not FIT_IN_PROGRESS
  });
});

describe("outcome.reason", () => {
  /** Runs with `plugin` and returns the outcome afterFit saw, and the result or the rejection. */
  async function outcomeOf(plugin: Callback): Promise<{ seen: FitOutcome; result?: FitOutcome; error?: unknown }> {
    let seen: FitOutcome | undefined;
    const watcher: Callback = { name: "watcher", afterFit: (ctx) => void (seen = ctx.outcome) };
    const t = new Trainer({ ...base, callbacks: [plugin, watcher] });
    try {
      const res = await t.fit({ epochs: 2, train: r.train() });
      return { seen: seen!, result: res.outcome };
    } catch (error) {
      return { seen: seen!, error };
    }
  }

  it("completed: no reason, no error", async () => {
    const o = await outcomeOf({ name: "quiet" });
    expect(o.result).toEqual({ status: "completed", stopRequests: [] });
    expect(o.result!.reason).toBeUndefined();
    expect(o.seen).toEqual(o.result);
  });

  it("stopped: the reason names who asked and why (every request)", async () => {
    const o = await outcomeOf({ name: "stopper", afterBatch: (ctx) => ctx.requestStop("enough", { at: 1 }) });
    expect(o.result!.status).toBe("stopped");
    expect(o.result!.reason).toBe("stopper: enough");
    expect(o.result!.stopRequests).toEqual([{ by: "stopper", reason: "enough", epoch: 0, step: 1, details: { at: 1 } }]);
    expect(o.seen).toEqual(o.result);
  });

  it("cancelled: the reason is CancelFit's", async () => {
    const o = await outcomeOf({ name: "canceller", afterBatch: () => { throw new CancelFit("user pressed stop"); } });
    expect(o.result).toMatchObject({ status: "cancelled", reason: "user pressed stop" });
    expect(o.seen).toEqual(o.result);
  });

  it("cancelled without a reason: reason is set, but empty", async () => {
    // what the code does: the CancelFit's (empty) reason; it does not say who cancelled
    const o = await outcomeOf({ name: "canceller", beforeEpoch: () => { throw new CancelFit(); } });
    expect(o.result!.status).toBe("cancelled");
    expect(o.result!.reason).toBe("");
  });

  it("failed: the reason is the error's message and the error is the rejection", async () => {
    const o = await outcomeOf({ name: "thrower", afterLoss: () => { throw new Error("disk full"); } });
    expect(o.result).toBeUndefined();
    expect(o.seen.status).toBe("failed");
    expect(o.seen.reason).toBe('plugin "thrower" threw in afterLoss: disk full');
    expect(o.seen.error).toBe(o.error);
  });
});
