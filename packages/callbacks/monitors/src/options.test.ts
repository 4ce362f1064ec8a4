import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelFit, OptionsError, type Callback } from "@fitloop/core";
import { expectNoLeaks, expectRefused, failingPlugins, tinyFixture } from "@fitloop/core/testing";
import { LRMonitor, Throughput, Timer } from "./index.js";
import { trainer } from "./harness.fixture.js";

describe("options", () => {
  it("one OptionsError naming every bad option, with a did-you-mean for typos", () => {
    const e = expectRefused(() => new Timer({ now: 5 as never, name: "", nwo: 1 } as never), OptionsError, "INVALID_OPTIONS", [/now: must be a function returning milliseconds/, /name: must be a non-empty string/, /unknown option "nwo" \(did you mean "now"\?\)/]);
    expect(e.owner).toBe("Timer");
    expect(e.issues).toHaveLength(3);
    expectRefused(() => new Throughput({ now: "performance.now" as never }), OptionsError, "INVALID_OPTIONS", [/Throughput/, /now: must be a function/]);
    expectRefused(() => new LRMonitor({ momentum: "yes" as never, beta1: true } as never), OptionsError, "INVALID_OPTIONS", [/LRMonitor/, /momentum: must be true or false/, /unknown option "beta1"/]);
  });

  it("options that are not an object at all", () => {
    for (const bad of [null, 42, "fast", [], () => 0]) {
      expectRefused(() => new Timer(bad as never), OptionsError, "INVALID_OPTIONS", "Timer");
      expectRefused(() => new LRMonitor(bad as never), OptionsError, "INVALID_OPTIONS", "LRMonitor");
    }
  });

  it("a clock that returns garbage does not break training (the values are what the clock says)", async () => {
    const fx = tinyFixture({ samples: 32 });
    const r = await trainer(fx, [new Timer({ now: () => Number.NaN }), new Throughput({ now: () => Number.NaN })]).fit({ epochs: 1, train: fx.data(16) });
    expect(r.outcome.status).toBe("completed");
    expect(r.state.history[0]!.logs["step_time"]).toBeNaN();
    fx.dispose();
  });

  it("names: two Timers need two names, and then log under one key is refused as two owners", async () => {
    const fx = tinyFixture({ samples: 32 });
    await expect(trainer(fx, [new Timer(), new Timer()]).fit({ epochs: 1, train: fx.data(16) })).rejects.toThrow(/two plugins are named "Timer"/);
    await expect(trainer(fx, [new Timer(), new Timer({ name: "Timer2" })]).fit({ epochs: 1, train: fx.data(16) })).rejects.toThrow(/"step_time" was already logged in this step by "Timer2"/);
    fx.dispose();
  });
});

describe("no tensor leaks, and never in the way", () => {
  const monitors = (): Callback[] => [new LRMonitor(), new Timer(), new Throughput()];

  it("on success, with a throw in every hook of another plugin, and on CancelFit", async () => {
    const fx = tinyFixture({ samples: 32 });
    const opt = tf.train.adam(0.01);
    const run = (extra: Callback[]) => trainer(fx, [...monitors(), ...extra], { optimizer: opt }).fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) });
    await expectNoLeaks(() => run([]));
    for (const { where, plugin } of failingPlugins({ when: (ctx) => ctx.state.epoch === 1 || ctx.event === "beforeFit" || ctx.event === "afterFit" })) {
      let outcome: unknown;
      await expectNoLeaks(() => run([plugin]).then((r) => (outcome = r.outcome.status), (e: unknown) => (outcome = e)), { warmup: 1, iterations: 2 });
      // the other plugin's error is what the run reports, not one of the monitors'
      if (where === "cancel") expect(outcome).toBe("cancelled");
      else expect((outcome as Error).message, where).toMatch(new RegExp(`test failure in ${where}`));
    }
    await expectNoLeaks(() => run([{ name: "Cancel", afterStep: (ctx) => { if (ctx.state.step === 3) throw new CancelFit("enough"); } }]));
    fx.dispose();
  });
});
