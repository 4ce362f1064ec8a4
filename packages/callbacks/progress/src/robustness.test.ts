import { Writable } from "node:stream";
import { setImmediate as tick } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelFit, OptionsError, type Callback } from "@fitloop/core";
import { expectNoLeaks, expectRefused, failingPlugins, tinyFixture } from "@fitloop/core/testing";
import { ProgressBar, type ProgressStream } from "./index.js";
import { Collect, trainer, warnings } from "./harness.fixture.js";

afterEach(() => void vi.unstubAllEnvs());

/** A stream whose writes fail from the `failFrom`-th on (1-based), the way a closed pipe does: the callback and an 'error' event. */
class Failing extends Writable {
  calls = 0;
  constructor(
    private readonly failFrom: number,
    readonly isTTY = false,
  ) {
    super({ decodeStrings: false });
  }
  override _write(_chunk: unknown, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.calls++;
    done(this.calls >= this.failFrom ? Object.assign(new Error("write EPIPE"), { code: "EPIPE" }) : null);
  }
}

const fitWith = async (stream: ProgressStream, extra: Callback[] = [], epochs = 2) => {
  const fx = tinyFixture({ samples: 64 });
  const log = warnings();
  const r = await trainer(fx, [new ProgressBar({ stream, everyBatches: 1 }), ...extra], log).fit({ epochs, train: fx.data(16), validation: fx.data(64) });
  await tick(); // an 'error' event of the last write arrives on the event loop
  fx.dispose();
  return { status: r.outcome.status, epochs: r.state.history.length, warnings: log.lines };
};

describe("a closed or broken stream: reported once, training goes on", () => {
  it("a stream closed before the run", async () => {
    const closed = new Collect();
    closed.destroy();
    const r = await fitWith(closed);
    expect(r).toEqual({ status: "completed", epochs: 2, warnings: ["ProgressBar: cannot write to its stream (the stream is closed); progress output stops, training goes on"] });
  });

  it("a stream whose write throws (no 'error' events): one attempt, one warning", async () => {
    let attempts = 0;
    const throwing: ProgressStream = {
      write: () => {
        attempts++;
        throw new Error("EBADF: bad file descriptor");
      },
    };
    const r = await fitWith(throwing);
    expect(r.status).toBe("completed");
    expect(r.warnings).toEqual(["ProgressBar: cannot write to its stream (EBADF: bad file descriptor); progress output stops, training goes on"]);
    expect(attempts).toBe(1);
  });

  it("a pipe that breaks mid-run (an asynchronous 'error' event): one warning, no more writes, no crash", async () => {
    const pipe = new Failing(3);
    const r = await fitWith(pipe);
    expect(r.status).toBe("completed");
    expect(r.warnings).toEqual(["ProgressBar: cannot write to its stream (write EPIPE); progress output stops, training goes on"]);
    expect(pipe.calls).toBe(3);
  });

  it("a write that fails after the run (its error arrives once fit() is done) does not crash the process", async () => {
    const fx = tinyFixture({ samples: 32 });
    const pipe = new Failing(2); // the second line is the run's last
    const r = await trainer(fx, [new ProgressBar({ stream: pipe })]).fit({ epochs: 2, train: fx.data(16) });
    await tick();
    await tick();
    expect(r.outcome.status).toBe("completed");
    expect(pipe.destroyed).toBe(true);
    fx.dispose();
  });

  it("as a bar on a terminal: cli-progress's redraws (also on its timer) never throw; one warning; no timer left", async () => {
    vi.stubEnv("CI", "");
    let n = 0;
    const tty: ProgressStream = {
      isTTY: true,
      columns: 100,
      write: () => {
        if (++n > 4) throw new Error("EIO: i/o error");
        return true;
      },
    };
    const timers = () => process.getActiveResourcesInfo().filter((x) => x === "Timeout").length;
    const before = timers();
    const slow: Callback = { name: "Slow", afterStep: () => new Promise((r) => setTimeout(r, 30)) }; // lets the redraw timer fire
    const r = await fitWith(tty, [slow]);
    expect(r).toEqual({ status: "completed", epochs: 2, warnings: ["ProgressBar: cannot write to its stream (EIO: i/o error); progress output stops, training goes on"] });
    expect(timers()).toBeLessThanOrEqual(before);
  });

  it("many runs on one stream add one 'error' listener, not one per run", async () => {
    const out = new Collect();
    const fx = tinyFixture({ samples: 16 });
    for (let i = 0; i < 12; i++) await trainer(fx, [new ProgressBar({ stream: out })]).fit({ epochs: 1, train: fx.data(16) });
    expect(out.listenerCount("error")).toBe(1);
    expect(out.lines).toHaveLength(12);

    // a stream others already listen on (tfjs-wasm's threads add 9 'error' listeners to stderr): no leak warning for ours
    const busy = new Collect();
    for (let i = 0; i < 10; i++) busy.on("error", () => undefined);
    const seen: string[] = [];
    const onWarning = (w: Error) => void seen.push(w.name);
    process.on("warning", onWarning);
    await trainer(fx, [new ProgressBar({ stream: busy })]).fit({ epochs: 1, train: fx.data(16) });
    await tick();
    process.off("warning", onWarning);
    expect(seen).toEqual([]);
    expect(busy.listenerCount("error")).toBe(11);
    fx.dispose();
  });
});

describe("options", () => {
  it("one OptionsError naming every bad option", () => {
    const e = expectRefused(
      () => new ProgressBar({ verbose: 3 as never, stream: {} as never, metrics: "loss" as never, everyBatches: 1.5, now: 7 as never, everyBatch: 2 } as never),
      OptionsError,
      "INVALID_OPTIONS",
      [/verbose: must be 0 \(silent\), 1 .* or 2/, /stream: must be a writable stream/, /metrics: must be an array of log names/, /everyBatches: must be an integer >= 1/, /now: must be a function/, /unknown option "everyBatch" \(did you mean "everyBatches"\?\)/],
    );
    expect(e.owner).toBe("ProgressBar");
    expect(e.issues).toHaveLength(6);
    expectRefused(() => new ProgressBar({ everyBatches: 0 }), OptionsError, "INVALID_OPTIONS", "everyBatches: must be an integer >= 1");
    expectRefused(() => new ProgressBar({ metrics: ["loss", ""] }), OptionsError, "INVALID_OPTIONS", "metrics.1: must be a non-empty log name");
    expectRefused(() => new ProgressBar({ verbose: "1" as never }), OptionsError, "INVALID_OPTIONS", "verbose");
    expectRefused(() => new ProgressBar({ stream: null as never }), OptionsError, "INVALID_OPTIONS", "stream");
    for (const bad of [null, 1, "bar", [], true]) expectRefused(() => new ProgressBar(bad as never), OptionsError, "INVALID_OPTIONS", "ProgressBar");
  });

  it("metrics naming logs that do not exist show nothing for them (logs appear later in some runs)", async () => {
    const fx = tinyFixture({ samples: 32 });
    const out = new Collect();
    await trainer(fx, [new ProgressBar({ stream: out, metrics: ["nope"] })]).fit({ epochs: 1, train: fx.data(16) });
    expect(out.lines).toEqual([expect.stringMatching(/^Epoch 1\/1 - 2\/2 - [\d.]+s [\d.]+ms\/step - [\d.]+ samples\/s$/)]);
    fx.dispose();
  });
});

describe("no tensor leaks; another plugin's failure is printed, never made worse", () => {
  for (const terminal of [false, true]) {
    it(terminal ? "as a bar" : "as lines", async () => {
      vi.stubEnv("CI", "");
      const fx = tinyFixture({ samples: 32 });
      const out = new Collect(terminal);
      const log = warnings();
      const opt = tf.train.adam(0.01); // one optimizer: its slots are made once
      const run = (extra: Callback[]) => trainer(fx, [new ProgressBar({ stream: out, everyBatches: 1 }), ...extra], log, opt).fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) });
      await expectNoLeaks(() => run([]), { warmup: 1, iterations: 2 });
      for (const { where, plugin } of failingPlugins({ when: (ctx) => ctx.state.epoch === 1 || ctx.event === "beforeFit" || ctx.event === "afterFit" })) {
        out.chunks.length = 0;
        let error: unknown;
        await expectNoLeaks(() => run([plugin]).catch((e: unknown) => (error = e)), { warmup: 0, iterations: 1 });
        const last = out.lines.at(-1)!;
        if (where === "cancel") expect(last).toBe("Cancelled (epoch 2/2, batch 0/4): test cancel"); // cancelled in afterBatch: the batch is not counted
        else if (where === "afterFit") expect(last).toMatch(/^Epoch 2\/2 - 4\/4/); // the run itself completed
        else expect(last, where).toMatch(new RegExp(`^Failed \\(.*\\): plugin "FailIn-${where}" threw in ${where}: test failure in ${where}$`));
        if (where !== "cancel") expect((error as Error).message).toMatch(/test failure/);
      }
      await expectNoLeaks(() => run([{ name: "C", afterStep: (ctx) => { if (ctx.state.step === 3) throw new CancelFit("stop"); } }]), { warmup: 0, iterations: 2 });
      expect(log.lines).toEqual([]);
      fx.dispose();
    });
  }
});
