import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER, PluginOrderError, Trainer, resolveOrder, silentLogger, type Callback } from "./index.js";
import { tinyFixture } from "./testing/index.js";

const names = (cbs: Callback[]) => resolveOrder(cbs).map((p) => p.name);

describe("plugin order", () => {
  it("sorts by numeric order, then registration", () => {
    expect(names([{ name: "log", order: ORDER.LOG }, { name: "sched", order: ORDER.SCHEDULE }, { name: "a" }, { name: "b" }])).toEqual(["sched", "a", "b", "log"]);
  });

  it("honours runsAfter and runsBefore over numeric order", () => {
    const cbs: Callback[] = [
      { name: "clip", order: ORDER.GRADIENT },
      { name: "noise", order: ORDER.LAST, runsBefore: ["clip"] },
      { name: "first", order: ORDER.FIRST, runsAfter: ["clip"] },
    ];
    expect(names(cbs)).toEqual(["noise", "clip", "first"]);
  });

  it("rejects cycles and names the plugins in the cycle", () => {
    const cbs: Callback[] = [{ name: "a", runsAfter: ["c"] }, { name: "b", runsAfter: ["a"] }, { name: "c", runsAfter: ["b"] }, { name: "free" }];
    expect(() => resolveOrder(cbs)).toThrow(PluginOrderError);
    expect(() => resolveOrder(cbs)).toThrow(/cycle.*a.*->.*a|cycle.*b.*->.*b|cycle.*c.*->.*c/);
  });

  it("rejects a dependency on a plugin that is not registered, listing the registered ones", () => {
    expect(() => resolveOrder([{ name: "a", runsAfter: ["EarlyStopping"] }, { name: "b" }])).toThrow(/"a" declares runsAfter: "EarlyStopping".*registered: a, b/);
  });

  it("rejects two plugins with the same name", () => {
    expect(() => resolveOrder([{ name: "x" }, { name: "x" }])).toThrow(/two plugins are named "x"/);
  });

  it("names class plugins after their class and inline ones by index", () => {
    class Progress implements Callback {
      afterBatch() {}
    }
    expect(names([new Progress(), {}, { name: "mine" }])).toEqual(["Progress", "inline#1", "mine"]);
  });

  it("the trainer checks order when the run starts, before any hook or step", async () => {
    const fx = tinyFixture({ samples: 8 });
    const calls: string[] = [];
    const t = new Trainer({
      model: fx.model,
      optimizer: tf.train.sgd(0.1),
      loss: "sparseCategoricalCrossentropy",
      logger: silentLogger,
      callbacks: [{ name: "a", runsAfter: ["b"], beforeFit: () => void calls.push("a") }, { name: "b", runsAfter: ["a"] }],
    });
    await expect(t.fit({ epochs: 1, train: fx.data(4) })).rejects.toThrow(PluginOrderError);
    expect(calls).toEqual([]);
    fx.dispose();
  });

  it("hooks run in the declared order and describeLoop prints it", async () => {
    const fx = tinyFixture({ samples: 8 });
    const calls: string[] = [];
    const mk = (name: string, extra: Partial<Callback> = {}): Callback => ({
      name,
      ...extra,
      beforeBatch: () => void calls.push(`${name}:before`),
      afterBatch: () => void calls.push(`${name}:after`),
    });
    const t = new Trainer({
      model: fx.model,
      optimizer: tf.train.sgd(0.1),
      loss: "sparseCategoricalCrossentropy",
      logger: silentLogger,
      callbacks: [mk("logger", { order: ORDER.LOG }), mk("sched", { order: ORDER.SCHEDULE }), mk("guard", { runsBefore: ["sched"] })],
    });
    await t.fit({ epochs: 1, train: fx.data(8) });
    expect(calls).toEqual(["guard:before", "sched:before", "logger:before", "logger:after", "sched:after", "guard:after"]);
    const text = t.describeLoop();
    expect(text).toMatch(/beforeBatch\s+guard -> sched -> logger/);
    expect(text).toMatch(/afterBatch\s+logger -> sched -> guard/);
    expect(text).toMatch(/afterFit\s+-/);
    fx.dispose();
  });
});
