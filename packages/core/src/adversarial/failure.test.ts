/**
 * Adversarial suite: failure paths. Whatever a hook throws (an Error, a string, undefined, a plain
 * object, a rejected promise, a `Cancel*`), wherever it throws it (every event of the loop, with and
 * without validation data), whatever a data source does wrong (throws mid-epoch, yields a disposed
 * tensor or no tensor), and whatever `afterFit` hooks do, the run ends the documented way: a typed
 * error naming plugin and event (the original as `cause`), or the cancellation events.ts documents;
 * `afterFit` runs; no tensor is left behind; and a run that failed before its first update leaves the
 * weights as they were.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import {
  CancelBatch,
  CancelEpoch,
  CancelFit,
  CancelStep,
  EVENTS,
  FitloopError,
  PluginError,
  Trainer,
  globalNorm,
  silentLogger,
  tensorData,
  type Batch,
  type Callback,
  type CancellationClass,
  type DataSource,
  type EventName,
  type FitOutcome,
  type Logger,
  type TrainerOptions,
} from "../index.js";
import { failingPlugins } from "../testing/index.js";
import { expectRejected, smallRun, weightsOf } from "./harness.fixture.js";

type Run = ReturnType<typeof smallRun>;
let r: Run;
let base: TrainerOptions;
let validation: DataSource;

beforeAll(async () => {
  r = smallRun();
  base = { model: r.model, optimizer: r.trainer.optimizer, loss: "sparseCategoricalCrossentropy", logger: silentLogger };
  validation = tensorData(r.xs, r.ys, { batchSize: 12, seed: 4 });
  // one plain run first: the optimizer's slots exist, so a run's tensor count is back where it started
  await new Trainer(base).fit({ epochs: 1, train: r.train(), validation });
});
afterAll(() => {
  r.trainer.optimizer.dispose();
  r.dispose();
});

/** Events that fire before the run's first update (a throw there on the first call must leave the weights). */
const PRE_UPDATE: ReadonlySet<EventName> = new Set<EventName>(["beforeFit", "beforeEpoch", "beforeTrain", "beforeBatch", "afterForward", "afterLoss", "afterGradients", "beforeStep"]);
const VAL_EVENTS: ReadonlySet<EventName> = new Set<EventName>(["beforeValidate", "beforeValBatch", "afterValBatch", "afterValidate"]);
/** Where each cancellation cancels something (events.ts, cancel.ts): anywhere else it is CANCEL_OUT_OF_SCOPE. */
const SCOPE: Record<string, ReadonlySet<EventName>> = {
  CancelBatch: new Set<EventName>(["beforeBatch", "afterForward", "afterLoss", "afterGradients", "beforeStep", "afterStep", "beforeValBatch"]),
  CancelStep: new Set<EventName>(["afterForward", "afterLoss", "afterGradients", "beforeStep"]),
  // beforeUpdate is the update's commit phase (weights may be half-changed there): nothing cancels in it.
  CancelEpoch: new Set<EventName>(EVENTS.filter((e) => !["beforeFit", "beforeUpdate", "afterEpoch", "epochCheckpoint", "afterFit"].includes(e))),
  CancelFit: new Set<EventName>(EVENTS.filter((e) => !["beforeUpdate", "afterFit"].includes(e))),
};
const EPOCHS = 2;
const BATCHES = 3; // 24 samples, batch size 8
const VAL_BATCHES = 2; // 24 samples, batch size 12

interface Recording {
  timeline: string[];
  outcome: FitOutcome | undefined;
}

/** A plugin that records every event (registered first: its before* hooks run before the thrower's, its after* hooks after). */
function recorder(rec: Recording): Callback {
  const cb: Record<string, unknown> = { name: "R" };
  for (const e of EVENTS) cb[e] = () => void rec.timeline.push(e);
  cb["afterFit"] = (ctx: { outcome: FitOutcome }) => {
    rec.timeline.push("afterFit");
    rec.outcome = ctx.outcome;
  };
  return cb as Callback;
}

/** A plugin "T" that throws `make()` from `event` on every call (marking the throw in the timeline). */
function thrower(rec: Recording, event: EventName, make: () => unknown, async = false): Callback {
  const hook = async
    ? async () => {
        rec.timeline.push(`!${event}`);
        await null;
        throw make();
      }
    : () => {
        rec.timeline.push(`!${event}`);
        throw make();
      };
  return { name: "T", [event]: hook } as Callback;
}

const count = (timeline: string[], event: string) => timeline.filter((e) => e === event).length;
/** What ran after the first throw. */
const afterThrow = (timeline: string[]) => timeline.slice(timeline.findIndex((e) => e.startsWith("!")) + 1);

interface ThrowKind {
  label: string;
  make: () => unknown;
  async?: boolean;
  /** fitloop's own error: passes through unwrapped. */
  own?: boolean;
}
const THROWS: ThrowKind[] = [
  { label: "an Error", make: () => new Error("boom") },
  { label: "a string", make: () => "boom as a string" },
  { label: "undefined", make: () => undefined },
  { label: "a non-Error object", make: () => ({ code: 42, detail: "not an Error" }) },
  { label: "a rejected promise", make: () => new Error("async boom"), async: true },
  { label: "a FitloopError (passes through)", make: () => new FitloopError("MY_CODE", "a fitloop error of my own"), own: true },
];
const CANCELS: CancellationClass[] = [CancelBatch, CancelStep, CancelEpoch, CancelFit];

for (const withVal of [false, true]) {
  describe(`a throw from every hook (${withVal ? "with" : "without"} validation data)`, () => {
    const fitOpts = () => ({ epochs: EPOCHS, train: r.train(), ...(withVal ? { validation } : {}) });
    const fires = (event: EventName) => withVal || !VAL_EVENTS.has(event);

    for (const event of EVENTS) {
      for (const kind of THROWS) {
        it(`${kind.label} in ${event}`, async () => {
          const rec: Recording = { timeline: [], outcome: undefined };
          let thrown: unknown;
          const make = () => (thrown = kind.make());
          const trainer = new Trainer({ ...base, callbacks: [recorder(rec), thrower(rec, event, make, kind.async)] });
          if (!fires(event)) {
            const before = tf.memory().numTensors;
            const res = await trainer.fit(fitOpts());
            expect(res.outcome.status).toBe("completed");
            expect(rec.timeline.some((e) => e.startsWith("!"))).toBe(false);
            expect(tf.memory().numTensors).toBe(before);
            return;
          }
          const guard = PRE_UPDATE.has(event) ? { model: r.model } : {};
          if (kind.own) {
            const err = await expectRejected(() => trainer.fit(fitOpts()), FitloopError, "MY_CODE", "a fitloop error of my own", guard);
            expect(err).toBe(thrown); // not wrapped
          } else {
            const err = await expectRejected(() => trainer.fit(fitOpts()), PluginError, "PLUGIN_FAILED", [`plugin "T" threw in ${event}`], guard);
            expect(err).toMatchObject({ plugin: "T", event });
            expect(Object.hasOwn(err, "cause")).toBe(true);
            expect(err.cause).toBe(thrown);
            if (thrown instanceof Error) expect(err.message).toContain(thrown.message);
            if (typeof thrown === "string") expect(err.message).toContain(thrown);
            // afterFit saw the failure (unless afterFit itself threw: the run had completed)
            if (event !== "afterFit") expect(rec.outcome).toMatchObject({ status: "failed", error: err, reason: err.message });
            else expect(rec.outcome?.status).toBe("completed");
          }
          expect(count(rec.timeline, `!${event}`)).toBe(1);
          expect(afterThrow(rec.timeline)).toEqual(["afterFit"]); // nothing else ran; afterFit always does
        });
      }

      for (const Cancel of CANCELS) {
        it(`${Cancel.name} in ${event}`, async () => {
          const rec: Recording = { timeline: [], outcome: undefined };
          const trainer = new Trainer({ ...base, callbacks: [recorder(rec), thrower(rec, event, () => new Cancel("test"))] });
          const weights = weightsOf(r.model);
          const before = tf.memory().numTensors;
          const inScope = SCOPE[Cancel.name]!.has(event);
          const t = rec.timeline;

          if (!fires(event) || inScope) {
            const res = await trainer.fit(fitOpts());
            expect(tf.memory().numTensors, "tensors left behind").toBe(before);
            if (PRE_UPDATE.has(event)) expect(weightsOf(r.model), "weights changed").toEqual(weights);
            expect(t.at(-1)).toBe("afterFit");
            if (!fires(event)) {
              expect(res.outcome.status).toBe("completed");
              return;
            }
            if (Cancel === CancelFit) {
              // ends the run now; afterFit runs with outcome cancelled and the reason
              expect(res.outcome).toMatchObject({ status: "cancelled", reason: "test" });
              expect(rec.outcome).toEqual(res.outcome);
              expect(afterThrow(t)).toEqual(["afterFit"]);
              return;
            }
            expect(res.outcome.status).toBe("completed");
            if (Cancel === CancelBatch) {
              // the rest of the batch is skipped (no step); the closing afterBatch / afterValBatch still runs
              if (event === "beforeValBatch") {
                expect(count(t, "afterValBatch")).toBe(EPOCHS * VAL_BATCHES);
                expect(res.state.history.every((h) => !("val_loss" in h.logs))).toBe(true); // no batch was evaluated
              } else {
                expect(count(t, "afterBatch")).toBe(EPOCHS * BATCHES);
                expect(res.state.step).toBe(event === "afterStep" ? EPOCHS * BATCHES : 0);
              }
            }
            if (Cancel === CancelStep) {
              // gradients computed, not applied; afterStep still runs and sees stepSkipped
              expect(res.state.step).toBe(0);
              expect(count(t, "afterStep")).toBe(EPOCHS * BATCHES);
              expect(weightsOf(r.model)).toEqual(weights);
            }
            if (Cancel === CancelEpoch) {
              // the rest of the epoch (validation included) is skipped; afterEpoch and the epoch's safe point still run
              expect(count(t, "afterEpoch")).toBe(EPOCHS);
              expect(count(t, "epochCheckpoint")).toBe(EPOCHS);
              expect(count(t, `!${event}`)).toBe(EPOCHS);
              expect(res.state.history).toEqual([]); // no epoch finished its record
              if (!VAL_EVENTS.has(event) && event !== "afterTrain") expect(count(t, "beforeValidate")).toBe(0);
            }
            return;
          }

          // out of scope: a typed error naming who threw it where, with the cancellation as its cause
          const err = await expectRejected(() => trainer.fit(fitOpts()), FitloopError, "CANCEL_OUT_OF_SCOPE", [`${Cancel.name} was thrown by "T" in ${event}`, "where it cancels nothing"], PRE_UPDATE.has(event) ? { model: r.model } : {});
          expect(err.cause).toBeInstanceOf(Cancel);
          expect(err).not.toBeInstanceOf(PluginError);
          expect(afterThrow(t)).toEqual(["afterFit"]);
          if (event !== "afterFit") {
            expect(rec.outcome).toMatchObject({ status: "failed", error: err });
            // the message says where the cancellation is valid, and that is not where it was thrown
            const valid = /it is valid in ([^.]*(?:\.\.[^.]*)*)\./.exec(err.message)?.[1] ?? "";
            expect(valid).not.toBe("");
            expect(valid).not.toMatch(/its phase/);
          }
        });
      }
    }
  });
}

describe("failingPlugins() from @fitloop/core/testing, every failure point", () => {
  for (const { where, plugin } of failingPlugins()) {
    it(`FailIn-${where}`, async () => {
      const trainer = new Trainer({ ...base, callbacks: [plugin] });
      const fitOpts = { epochs: EPOCHS, train: r.train(), validation };
      if (where === "cancel") {
        const before = tf.memory().numTensors;
        const res = await trainer.fit(fitOpts);
        expect(res.outcome).toMatchObject({ status: "cancelled", reason: "test cancel" });
        expect(tf.memory().numTensors).toBe(before);
        return;
      }
      const err = await expectRejected(() => trainer.fit(fitOpts), PluginError, "PLUGIN_FAILED", [`plugin "FailIn-${where}" threw in ${where}: test failure in ${where}`], PRE_UPDATE.has(where) ? { model: r.model } : {});
      expect(err.cause).toBeInstanceOf(Error);
    });
  }

  it("in the second epoch only (when), every failure point: no leak", async () => {
    for (const { where, plugin } of failingPlugins({ when: (ctx) => ctx.state.epoch === 1 })) {
      const before = tf.memory().numTensors;
      const res = await new Trainer({ ...base, callbacks: [plugin] }).fit({ epochs: EPOCHS, train: r.train(), validation }).catch((e: unknown) => e);
      expect(tf.memory().numTensors, `tensors left behind by FailIn-${where}`).toBe(before);
      if (where === "cancel") expect(res).toMatchObject({ outcome: { status: "cancelled" } });
      // beforeFit sees epoch 0 and afterFit epoch 2 (the loop's counter after the last epoch): never epoch 1
      else if (where === "beforeFit" || where === "afterFit") expect(res).toMatchObject({ outcome: { status: "completed" } });
      else expect(res).toMatchObject({ code: "PLUGIN_FAILED", event: where });
    }
  });
});

describe("validation failures", () => {
  /** Throws (or cancels with) `make()` on the `at`-th call (0-based) of `event`. */
  const onCall = (event: EventName, at: number, make: () => unknown, async = false): Callback => {
    let n = 0;
    return {
      name: "V",
      [event]: async ? async () => { await null; if (n++ === at) throw make(); } : () => { if (n++ === at) throw make(); },
    } as Callback;
  };
  const fitVal = (plugin: Callback) => new Trainer({ ...base, callbacks: [plugin] }).fit({ epochs: EPOCHS, train: r.train(), validation });

  for (const event of ["beforeValBatch", "afterValBatch"] as const) {
    for (const async of [false, true]) {
      it(`a ${async ? "rejection" : "throw"} in ${event} of the 2nd validation batch (running sums alive): PluginError, no leak`, async () => {
        const boom = new Error("val boom");
        const err = await expectRejected(() => fitVal(onCall(event, 1, () => boom, async)), PluginError, "PLUGIN_FAILED", [`plugin "V" threw in ${event}: val boom`]);
        expect(err.cause).toBe(boom);
      });
    }
  }

  it("CancelEpoch from afterValBatch (2nd batch): the epoch ends, afterEpoch runs, no val logs, no leak", async () => {
    const seen: string[] = [];
    let n = 0;
    const plugin: Callback = {
      name: "V",
      afterValBatch: () => {
        if (n++ % VAL_BATCHES === 1) throw new CancelEpoch("enough validation");
      },
      afterEpoch: () => void seen.push("afterEpoch"),
    };
    const before = tf.memory().numTensors;
    const res = await fitVal(plugin);
    expect(tf.memory().numTensors).toBe(before);
    expect(res.outcome.status).toBe("completed");
    expect(seen).toEqual(["afterEpoch", "afterEpoch"]);
    expect(res.state.history).toEqual([]);
  });

  it("CancelFit from afterValBatch (2nd batch): cancelled, no leak", async () => {
    const before = tf.memory().numTensors;
    const res = await fitVal(onCall("afterValBatch", 1, () => new CancelFit("stop in validation")));
    expect(tf.memory().numTensors).toBe(before);
    expect(res.outcome).toMatchObject({ status: "cancelled", reason: "stop in validation" });
  });

  it("CancelBatch from afterValBatch is out of scope: CANCEL_OUT_OF_SCOPE naming plugin and event, no leak", async () => {
    await expectRejected(() => fitVal(onCall("afterValBatch", 1, () => new CancelBatch())), FitloopError, "CANCEL_OUT_OF_SCOPE", ['CancelBatch was thrown by "V" in afterValBatch', "not in the closing afterBatch / afterValBatch"]);
  });
});

/** A streaming source (no peekAll) over the shared data in 3 batches of 8; `bad(index)` replaces a batch or throws. */
function source(opts: { async?: boolean; bad?: (index: number) => unknown } = {}): DataSource {
  const make = (b: number): unknown => {
    const replaced = opts.bad?.(b);
    if (replaced !== undefined) return replaced;
    return { xs: tf.slice(r.xs, b * 8, 8), ys: tf.slice(r.ys, b * 8, 8) };
  };
  return {
    batchesPerEpoch: BATCHES,
    batches: opts.async
      ? async function* (cursor) {
          for (let b = cursor.batchIndex; b < BATCHES; b++) {
            await null;
            yield make(b) as Batch;
          }
        }
      : function* (cursor) {
          for (let b = cursor.batchIndex; b < BATCHES; b++) yield make(b) as Batch;
        },
  };
}

describe("data sources that fail mid-epoch", () => {
  const boom = new Error("disk read failed");
  const throwAt1 = (b: number) => {
    if (b === 1) throw boom;
    return undefined;
  };

  for (const async of [false, true]) {
    const kind = async ? "async" : "sync";
    it(`a ${kind} training iterator that throws on batch 1: the source's error reaches the caller, afterFit sees it, no leak`, async () => {
      let outcome: FitOutcome | undefined;
      const watcher: Callback = { name: "W", afterFit: (ctx) => void (outcome = ctx.outcome) };
      const before = tf.memory().numTensors;
      const err = await new Trainer({ ...base, callbacks: [watcher] }).fit({ epochs: EPOCHS, train: source({ async, bad: throwAt1 }) }).catch((e: unknown) => e);
      expect(tf.memory().numTensors, "tensors left behind").toBe(before);
      expect(err === boom || (err as Error).cause === boom).toBe(true);
      expect(outcome).toMatchObject({ status: "failed", error: err });
    });

    // Regression (was raw): an error the source's iterator throws is a DataError SOURCE_FAILED naming
    // role, epoch and batch, with the source's error as `cause`.
    it(`a ${kind} training iterator that throws on batch 1: the error names the batch`, async () => {
      const err = await new Trainer(base).fit({ epochs: EPOCHS, train: source({ async, bad: throwAt1 }) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FitloopError);
      expect((err as Error).message).toMatch(/train batch 1\b/);
      expect((err as Error).message).toMatch(/epoch 0\b/);
      expect((err as Error).cause).toBe(boom);
    });
  }

  it("a validation iterator that throws on its 2nd batch: no leak (the running sums are released)", async () => {
    const val: DataSource = {
      batchesPerEpoch: 2,
      *batches() {
        // the pre-flight takes the first batch of its own iterator; the loop's 2nd batch throws
        for (let b = 0; b < 2; b++) {
          if (b === 1) throw boom;
          yield { xs: tf.slice(r.xs, b * 12, 12), ys: tf.slice(r.ys, b * 12, 12) };
        }
      },
    };
    const before = tf.memory().numTensors;
    const err = await new Trainer(base).fit({ epochs: EPOCHS, train: r.train(), validation: val }).catch((e: unknown) => e);
    expect(tf.memory().numTensors, "tensors left behind").toBe(before);
    expect(err === boom || (err as Error).cause === boom).toBe(true);
  });

  const badBatches: [string, (b: number) => unknown, RegExp][] = [
    [
      "a disposed tensor",
      (b) => {
        if (b !== 1) return undefined;
        const xs = tf.slice(r.xs, 8, 8);
        xs.dispose();
        return { xs, ys: tf.slice(r.ys, 8, 8) };
      },
      /disposed/,
    ],
    ["a plain array as xs", (b) => (b === 1 ? { xs: [[0, 0, 0, 0]], ys: tf.slice(r.ys, 8, 8) } : undefined), /xs/],
    ["a plain array as ys", (b) => (b === 1 ? { xs: tf.slice(r.xs, 8, 8), ys: [0, 1, 2, 0, 1, 2, 0, 1] } : undefined), /ys/],
    ["null", (b) => (b === 1 ? null : undefined), /null/],
    ["a number", (b) => (b === 1 ? 7 : undefined), /number/],
  ];
  for (const [label, bad, what] of badBatches) {
    for (const async of [false, true]) {
      it(`a ${async ? "async " : ""}training source that yields ${label} as batch 1: a typed error naming the batch, no leak`, async () => {
        const before = tf.memory().numTensors;
        const err = await new Trainer(base).fit({ epochs: EPOCHS, train: source({ async, bad }) }).catch((e: unknown) => e);
        expect(tf.memory().numTensors, "tensors left behind").toBe(before);
        expect(err).toBeInstanceOf(FitloopError);
        expect((err as Error).message).toMatch(/train batch 1\b/);
        expect((err as Error).message).toMatch(what);
      });
    }
  }

  it("a validation source that yields a non-tensor as its 2nd batch: a typed error naming the batch, no leak", async () => {
    const val: DataSource = {
      batchesPerEpoch: 2,
      *batches() {
        yield { xs: tf.slice(r.xs, 0, 12), ys: tf.slice(r.ys, 0, 12) };
        yield { xs: tf.slice(r.xs, 12, 12), ys: "labels" } as unknown as Batch;
      },
    };
    const before = tf.memory().numTensors;
    const err = await new Trainer(base).fit({ epochs: EPOCHS, train: r.train(), validation: val }).catch((e: unknown) => e);
    expect(tf.memory().numTensors, "tensors left behind").toBe(before);
    expect(err).toBeInstanceOf(FitloopError);
    expect((err as Error).message).toMatch(/validation batch 1\b/);
  });
});

describe("afterFit", () => {
  const marker = (name: string, calls: string[], extra: Partial<Callback> = {}): Callback => ({ name, afterFit: () => void calls.push(name), ...extra });

  it("one afterFit hook throws: the other plugins' afterFit still run, and fit rejects with that error", async () => {
    const calls: string[] = [];
    const boom = new Error("cleanup failed");
    const failing: Callback = { name: "B", afterFit: () => { calls.push("B"); throw boom; } };
    const trainer = new Trainer({ ...base, callbacks: [marker("A", calls), failing, marker("C", calls)] });
    const err = await expectRejected(() => trainer.fit({ epochs: 1, train: r.train() }), PluginError, "PLUGIN_FAILED", ['plugin "B" threw in afterFit: cleanup failed']);
    expect(err.cause).toBe(boom);
    expect(calls).toEqual(["C", "B", "A"]); // reverse order, every one
  });

  it("an async afterFit hook that rejects: the others still run", async () => {
    const calls: string[] = [];
    const failing: Callback = { name: "B", afterFit: async () => { calls.push("B"); await null; throw new Error("async cleanup failed"); } };
    const trainer = new Trainer({ ...base, callbacks: [marker("A", calls), failing, marker("C", calls)] });
    await expectRejected(() => trainer.fit({ epochs: 1, train: r.train() }), PluginError, "PLUGIN_FAILED", ['plugin "B" threw in afterFit']);
    expect(calls).toEqual(["C", "B", "A"]);
  });

  it("two afterFit hooks throw: an AggregateError with both, each naming its plugin", async () => {
    const calls: string[] = [];
    const e1 = new Error("first cleanup");
    const e2 = new Error("second cleanup");
    const trainer = new Trainer({
      ...base,
      callbacks: [marker("A", calls), { name: "B", afterFit: () => { throw e1; } }, marker("C", calls), { name: "D", afterFit: () => { throw e2; } }],
    });
    const before = tf.memory().numTensors;
    const err = await trainer.fit({ epochs: 1, train: r.train() }).catch((e: unknown) => e);
    expect(tf.memory().numTensors).toBe(before);
    expect(err).toBeInstanceOf(AggregateError);
    const agg = err as AggregateError;
    expect(agg.errors).toHaveLength(2);
    expect(agg.errors.map((e: PluginError) => [e.plugin, e.event, e.cause])).toEqual([
      ["D", "afterFit", e2],
      ["B", "afterFit", e1],
    ]);
    expect(agg.message).toMatch(/2 afterFit hooks failed/);
    expect(agg.message).toContain("first cleanup");
    expect(agg.message).toContain("second cleanup");
    expect(calls).toEqual(["C", "A"]);
  });

  for (const Cancel of CANCELS) {
    it(`${Cancel.name} thrown in afterFit: a typed CANCEL_OUT_OF_SCOPE error, not the bare control-flow object; the others still run`, async () => {
      const calls: string[] = [];
      const cancel = new Cancel("late");
      const trainer = new Trainer({ ...base, callbacks: [marker("A", calls), { name: "X", afterFit: () => { throw cancel; } }, marker("C", calls)] });
      const err = await expectRejected(() => trainer.fit({ epochs: 1, train: r.train() }), FitloopError, "CANCEL_OUT_OF_SCOPE", [`${Cancel.name} was thrown by "X" in afterFit`, "where it cancels nothing"]);
      expect(err).not.toBeInstanceOf(Cancel);
      expect(err.cause).toBe(cancel);
      expect(calls).toEqual(["C", "A"]);
    });
  }

  // Regression: CancelFit had no scope, and a cancel in afterFit was told to use CancelFit or
  // requestStop; in afterFit the run is over, and the message says so.
  for (const Cancel of CANCELS) {
    it(`${Cancel.name} in afterFit: the message does not contradict itself`, async () => {
      const trainer = new Trainer({ ...base, callbacks: [{ name: "X", afterFit: () => { throw new Cancel(); } }] });
      const err = (await trainer.fit({ epochs: 1, train: r.train() }).catch((e: unknown) => e)) as FitloopError;
      expect(err.code).toBe("CANCEL_OUT_OF_SCOPE");
      expect(err.message).not.toMatch(/its phase/);
      expect(err.message).not.toMatch(/Use CancelFit/); // afterFit runs after the run ended: CancelFit is refused there too
    });
  }

  // Regression: each afterFit cancellation names its own plugin (it named the last thrower).
  it("two afterFit hooks throw cancellations: each error names its own plugin", async () => {
    const trainer = new Trainer({ ...base, callbacks: [{ name: "First", afterFit: () => { throw new CancelBatch(); } }, { name: "Second", afterFit: () => { throw new CancelEpoch(); } }] });
    const err = (await trainer.fit({ epochs: 1, train: r.train() }).catch((e: unknown) => e)) as AggregateError;
    expect(err).toBeInstanceOf(AggregateError);
    const messages = err.errors.map((e: Error) => e.message);
    expect(messages.some((m: string) => m.startsWith('CancelEpoch was thrown by "Second" in afterFit'))).toBe(true);
    expect(messages.some((m: string) => m.startsWith('CancelBatch was thrown by "First" in afterFit'))).toBe(true);
  });

  it("an afterFit throw while the run was already failing: the original failure is what rejects (the afterFit error is logged)", async () => {
    const logged: unknown[][] = [];
    const logger: Logger = { ...silentLogger, error: (...a: unknown[]) => void logged.push(a) };
    const original = new Error("original failure");
    const cleanup = new Error("cleanup failure");
    let outcome: FitOutcome | undefined;
    const trainer = new Trainer({
      ...base,
      logger,
      callbacks: [
        { name: "Fails", afterLoss: () => { throw original; } },
        { name: "Cleanup", afterFit: (ctx) => { outcome = ctx.outcome; throw cleanup; } },
      ],
    });
    const err = await expectRejected(() => trainer.fit({ epochs: 1, train: r.train() }), PluginError, "PLUGIN_FAILED", ['plugin "Fails" threw in afterLoss: original failure'], { model: r.model });
    expect(err.cause).toBe(original);
    expect(outcome).toMatchObject({ status: "failed", error: err });
    expect(logged).toHaveLength(1);
    expect(logged[0]![1]).toMatchObject({ plugin: "Cleanup", event: "afterFit", cause: cleanup });
  });

  it("a Cancel* in afterFit while the run was failing: the original failure rejects", async () => {
    const original = new Error("original failure");
    const trainer = new Trainer({
      ...base,
      callbacks: [{ name: "Fails", beforeEpoch: () => { throw original; } }, { name: "Late", afterFit: () => { throw new CancelFit(); } }],
    });
    const err = await expectRejected(() => trainer.fit({ epochs: 1, train: r.train() }), PluginError, "PLUGIN_FAILED", ['plugin "Fails" threw in beforeEpoch'], { model: r.model });
    expect(err.cause).toBe(original);
  });

  it("an afterFit throw after a CancelFit: the run was cancelled, fit rejects with the afterFit error", async () => {
    const boom = new Error("cleanup after cancel");
    let outcome: FitOutcome | undefined;
    const trainer = new Trainer({
      ...base,
      callbacks: [{ name: "Cancels", afterBatch: () => { throw new CancelFit("enough"); } }, { name: "Cleanup", afterFit: (ctx) => { outcome = ctx.outcome; throw boom; } }],
    });
    await expectRejected(() => trainer.fit({ epochs: 1, train: r.train() }), PluginError, "PLUGIN_FAILED", ['plugin "Cleanup" threw in afterFit']);
    expect(outcome).toMatchObject({ status: "cancelled", reason: "enough" });
  });
});

describe("hookTimeoutMs", () => {
  const TIMEOUT = 25;
  for (const event of EVENTS) {
    it(`an async ${event} hook that never settles: HOOK_TIMEOUT naming plugin and event, within about the timeout, no leak`, async () => {
      const hang: Callback = { name: "Hang", [event]: () => new Promise(() => {}) } as Callback;
      const trainer = new Trainer({ ...base, hookTimeoutMs: TIMEOUT, callbacks: [hang] });
      const t0 = performance.now();
      const err = await expectRejected(() => trainer.fit({ epochs: 1, train: r.train(), validation }), FitloopError, "HOOK_TIMEOUT", [`plugin "Hang" did not finish ${event} within ${TIMEOUT} ms`], PRE_UPDATE.has(event) ? { model: r.model } : {});
      const elapsed = performance.now() - t0;
      expect(err).not.toBeInstanceOf(PluginError);
      expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT - 5);
      expect(elapsed).toBeLessThan(TIMEOUT + 1000);
    });
  }

  it("fast async hooks on every event are unaffected", async () => {
    const fast: Record<string, unknown> = { name: "Fast" };
    let calls = 0;
    for (const e of EVENTS) fast[e] = async () => { await new Promise((res) => setTimeout(res, 0)); calls++; };
    const trainer = new Trainer({ ...base, hookTimeoutMs: 500, callbacks: [fast as Callback] });
    const before = tf.memory().numTensors;
    const res = await trainer.fit({ epochs: 1, train: r.train(), validation });
    expect(res.outcome.status).toBe("completed");
    expect(res.state.step).toBe(BATCHES);
    expect(calls).toBeGreaterThan(BATCHES * 8);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("a hook that settles just under the limit passes; the same hook over it fails", async () => {
    const slow = (ms: number): Callback => ({ name: "Slow", afterEpoch: () => new Promise((res) => setTimeout(res, ms)) });
    const ok = await new Trainer({ ...base, hookTimeoutMs: 300, callbacks: [slow(5)] }).fit({ epochs: 1, train: r.train() });
    expect(ok.outcome.status).toBe("completed");
    await expectRejected(() => new Trainer({ ...base, hookTimeoutMs: 20, callbacks: [slow(200)] }).fit({ epochs: 1, train: r.train() }), FitloopError, "HOOK_TIMEOUT", ['plugin "Slow" did not finish afterEpoch']);
  });
});

describe("a throw inside a plugin's own tf.tidy in afterGradients", () => {
  it("after computing on the gradients: PluginError, no leak, weights unchanged", async () => {
    const plugin: Callback = {
      name: "Tidy",
      afterGradients: (ctx) => {
        tf.tidy(() => {
          const norm = globalNorm(ctx.grads!);
          tf.mul(norm, 2);
          throw new Error("inside tidy");
        });
      },
    };
    const err = await expectRejected(() => new Trainer({ ...base, callbacks: [plugin] }).fit({ epochs: 1, train: r.train() }), PluginError, "PLUGIN_FAILED", ['plugin "Tidy" threw in afterGradients: inside tidy'], { model: r.model });
    expect((err.cause as Error).message).toBe("inside tidy");
  });

  it("after logging a tensor from inside the tidy: PluginError, no leak (the pending log is released)", async () => {
    const plugin: Callback = {
      name: "TidyLog",
      afterGradients: (ctx) => {
        tf.tidy(() => {
          ctx.log("gradNorm", globalNorm(ctx.grads!));
          throw new Error("after logging");
        });
      },
    };
    await expectRejected(() => new Trainer({ ...base, callbacks: [plugin] }).fit({ epochs: 1, train: r.train() }), PluginError, "PLUGIN_FAILED", ['plugin "TidyLog" threw in afterGradients: after logging'], { model: r.model });
  });

  it("after scaling the gradients and reading the scaled ones inside the tidy: PluginError, no leak", async () => {
    const plugin: Callback = {
      name: "TidyScale",
      afterGradients: (ctx) => {
        tf.tidy(() => {
          ctx.scaleGradients(tf.scalar(0.5));
          tf.addN(Object.values(ctx.grads!).map((g) => tf.sum(g)));
          throw new Error("after scaling");
        });
      },
    };
    await expectRejected(() => new Trainer({ ...base, callbacks: [plugin] }).fit({ epochs: 1, train: r.train() }), PluginError, "PLUGIN_FAILED", ['plugin "TidyScale" threw in afterGradients: after scaling'], { model: r.model });
  });

  it("on a later batch (after updates): no leak", async () => {
    let n = 0;
    const plugin: Callback = {
      name: "TidyLater",
      afterGradients: (ctx) => {
        tf.tidy(() => {
          const s = tf.square(globalNorm(ctx.grads!));
          if (++n === 5) throw new Error(`batch ${n}: ${s.shape.length}`);
        });
      },
    };
    await expectRejected(() => new Trainer({ ...base, callbacks: [plugin] }).fit({ epochs: EPOCHS, train: r.train(), validation }), PluginError, "PLUGIN_FAILED", ['plugin "TidyLater" threw in afterGradients: batch 5']);
  });
});

describe("deterministic mode", () => {
  it("a hook that throws synchronously (seed set): Math.random is restored, no leak", async () => {
    const original = Math.random;
    const trainer = new Trainer({ ...base, seed: 7, callbacks: [{ name: "S", afterForward: () => { Math.random(); throw new Error("seeded boom"); } }] });
    await expectRejected(() => trainer.fit({ epochs: 1, train: r.train() }), PluginError, "PLUGIN_FAILED", ['plugin "S" threw in afterForward: seeded boom'], { model: r.model });
    expect(Math.random).toBe(original);
  });

  it("an async hook that rejects (seed set): Math.random is restored", async () => {
    const original = Math.random;
    const trainer = new Trainer({ ...base, seed: 7, callbacks: [{ name: "S", beforeEpoch: async () => { await null; throw new Error("seeded async boom"); } }] });
    await expectRejected(() => trainer.fit({ epochs: 1, train: r.train() }), PluginError, "PLUGIN_FAILED", ['plugin "S" threw in beforeEpoch'], { model: r.model });
    expect(Math.random).toBe(original);
  });
});
