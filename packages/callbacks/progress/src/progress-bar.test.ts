import { afterEach, describe, expect, it, vi } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelFit, Trainer, type Callback, type Logs } from "@fitloop/core";
import { tinyFixture } from "@fitloop/core/testing";
import { ProgressBar } from "./index.js";
import { ANSI, batches, Collect, manualClock, streaming, trainer, warnings, work } from "./harness.fixture.js";

/** `key: value` pairs of a line, values as numbers. */
const pairs = (line: string) => [...line.matchAll(/ - (\w+): (\S+)/g)].map((m) => [m[1]!, Number(m[2])] as const);
/** The line shows `logs` (keys in this order) to 4 significant digits. */
const expectShows = (line: string, keys: string[], logs: Logs) => {
  const got = pairs(line);
  expect(got.map(([k]) => k)).toEqual(keys);
  for (const [k, v] of got) expect(Math.abs(v - logs[k]!), `${k} in ${line}`).toBeLessThanOrEqual(Math.abs(logs[k]!) * 6e-4 + 1e-12);
};

afterEach(() => void vi.unstubAllEnvs());

describe("lines (the stream is not a terminal)", () => {
  it("verbose 1: one line per epoch with its time, throughput, logs and validation metrics, and one every N batches with the running means and ETA", async () => {
    const fx = tinyFixture({ samples: 64 });
    const clock = manualClock();
    const out = new Collect();
    const seen = batches();
    const r = await trainer(fx, [new ProgressBar({ stream: out, everyBatches: 2, now: clock.now }), work(clock, { batchMs: 500, valMs: 1000 }), seen]).fit({ epochs: 2, train: fx.data(16), validation: fx.data(64) });
    const lines = out.lines;
    expect(lines).toHaveLength(4);
    expect(ANSI.test(out.text)).toBe(false);
    for (const e of [0, 1]) {
      const mid = lines[2 * e]!;
      expect(mid).toMatch(new RegExp(`^Epoch ${e + 1}/2 - 2/4 - ETA 1\\.0s - 32\\.0 samples/s - loss: `));
      const [b0, b1] = seen.seen.filter((s) => s.epoch === e);
      expectShows(mid, ["loss", "acc"], { loss: (b0!.logs["loss"]! + b1!.logs["loss"]!) / 2, acc: (b0!.logs["acc"]! + b1!.logs["acc"]!) / 2 });
      const end = lines[2 * e + 1]!;
      expect(end).toMatch(new RegExp(`^Epoch ${e + 1}/2 - 4/4 - 3\\.0s 500ms/step - 32\\.0 samples/s - loss: `));
      expectShows(end, ["loss", "acc", "lr", "val_loss", "val_acc"], r.state.history[e]!.logs);
    }
    fx.dispose();
  });

  it("verbose 2: one line per epoch, also on a terminal; metrics picks the values (with their val_ forms)", async () => {
    vi.stubEnv("CI", "");
    const fx = tinyFixture({ samples: 64 });
    const out = new Collect(true);
    const r = await trainer(fx, [new ProgressBar({ verbose: 2, stream: out, metrics: ["acc"] })]).fit({ epochs: 3, train: fx.data(16), validation: fx.data(64) });
    expect(ANSI.test(out.text)).toBe(false);
    expect(out.lines).toHaveLength(3);
    out.lines.forEach((line, e) => {
      expect(line).toMatch(new RegExp(`^Epoch ${e + 1}/3 - 4/4 - [\\d.]+s [\\d.]+ms/step - [\\d.]+ samples/s - acc: `));
      expectShows(line, ["acc", "val_acc"], r.state.history[e]!.logs);
    });
    fx.dispose();
  });

  it("verbose 0: nothing at all, on any stream (the default, stderr, included)", async () => {
    vi.stubEnv("CI", "");
    const fx = tinyFixture({ samples: 32 });
    const tty = new Collect(true);
    const stderr = vi.spyOn(process.stderr, "write");
    await trainer(fx, [new ProgressBar({ verbose: 0, stream: tty }), new ProgressBar({ verbose: 0, name: "Default" }), { name: "Stop", afterBatch: (ctx) => void (ctx.state.globalBatch === 2 && ctx.requestStop("x")) } as Callback]).fit({ epochs: 2, train: fx.data(16) });
    expect(tty.text).toBe("");
    expect(stderr.mock.calls.filter(([s]) => /Epoch|Stopped/.test(String(s)))).toEqual([]);
    stderr.mockRestore();
    fx.dispose();
  });

  it("a source of unknown length: a batch counter with the elapsed time instead of a total and an ETA", async () => {
    const fx = tinyFixture({ samples: 48 });
    const clock = manualClock();
    const out = new Collect();
    await trainer(fx, [new ProgressBar({ stream: out, everyBatches: 2, now: clock.now, metrics: ["loss"] }), work(clock, { batchMs: 250 })]).fit({ epochs: 1, train: streaming(fx.data(16)) });
    expect(out.lines.map((l) => l.replace(/ - loss: \S+$/, ""))).toEqual(["Epoch 1/1 - 2 batches - 0.5s - 64.0 samples/s", "Epoch 1/1 - 3 batches - 0.8s 250ms/step - 64.0 samples/s"]);
    fx.dispose();
  });
});

describe("how a run ends", () => {
  const run = async (extra: Callback[], opts: { epochs?: number } = {}) => {
    const fx = tinyFixture({ samples: 64 });
    const out = new Collect();
    const log = warnings();
    const result = await trainer(fx, [new ProgressBar({ stream: out }), ...extra], log)
      .fit({ epochs: opts.epochs ?? 2, train: fx.data(16), validation: fx.data(64) })
      .then((r) => r.outcome.status, (e: unknown) => e);
    fx.dispose();
    return { result, lines: out.lines, warnings: log.lines };
  };

  it("a stop request mid-epoch: the epoch's line (it still validated), then who stopped it and why", async () => {
    const { result, lines } = await run([{ name: "Stopper", afterBatch: (ctx) => void (ctx.state.epoch === 1 && ctx.state.batchIndex === 1 && ctx.requestStop("enough")) }]);
    expect(result).toBe("stopped");
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^Epoch 2\/2 - 2\/4 - .* - val_loss: \S+ - val_acc: \S+$/);
    expect(lines[2]).toBe("Stopped (epoch 2/2, batch 2/4): Stopper: enough");
  });

  it("a stop at the end of an epoch (early stopping)", async () => {
    const { lines } = await run([{ name: "Early", afterEpoch: (ctx) => void ctx.requestStop(`no improvement at epoch ${ctx.state.epoch}`) }], { epochs: 5 });
    expect(lines.map((l) => l.slice(0, 15))).toEqual(["Epoch 1/5 - 4/4", "Stopped (after "]);
    expect(lines[1]).toBe("Stopped (after epoch 1/5): Early: no improvement at epoch 0");
  });

  it("CancelFit mid-epoch: the running values so far, then the reason", async () => {
    const { result, lines } = await run([{ name: "Cancel", afterBatch: (ctx) => { if (ctx.state.globalBatch === 6) throw new CancelFit("user pressed stop"); } }]);
    expect(result).toBe("cancelled");
    expect(lines[1]).toMatch(/^Epoch 2\/2 - 2\/4 - [\d.]+s [\d.]+ms\/step - .*loss: \S+ - acc: \S+$/);
    expect(lines[1]).not.toMatch(/val_/);
    expect(lines[2]).toBe("Cancelled (epoch 2/2, batch 2/4): user pressed stop");
  });

  it("an error in another plugin: the epoch's line ends, the failure is printed, and fit() still rejects with that error", async () => {
    const { result, lines, warnings: w } = await run([{ name: "Boom", afterStep: (ctx) => { if (ctx.state.globalBatch === 5) throw new Error("boom"); } }]);
    expect((result as Error).message).toMatch(/plugin "Boom" threw in afterStep: boom/);
    expect(lines[1]).toMatch(/^Epoch 2\/2 - 1\/4 - /);
    expect(lines[2]).toBe('Failed (epoch 2/2, batch 1/4): plugin "Boom" threw in afterStep: boom');
    expect(w).toEqual([]);
  });

  it("an error during validation, and one before the first epoch", async () => {
    const inVal = await run([{ name: "ValBoom", afterValBatch: () => { throw new Error("val boom"); } }]);
    expect(inVal.lines).toEqual([expect.stringMatching(/^Epoch 1\/2 - 4\/4 - /), 'Failed (epoch 1/2, validation): plugin "ValBoom" threw in afterValBatch: val boom']);
    const early = await run([{ name: "FitBoom", beforeFit: () => { throw new Error("no"); } }]);
    expect(early.lines).toEqual(['Failed (before the first epoch): plugin "FitBoom" threw in beforeFit: no']);
  });
});

describe("a bar on a terminal (in-process; the real terminal is tested in tmux)", () => {
  it("redraws in place, ends each epoch with a full line, leaves no timer behind; CI turns it into lines", async () => {
    vi.stubEnv("CI", "");
    const fx = tinyFixture({ samples: 64 });
    const out = new Collect(true, 120);
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timers();
    const r = await trainer(fx, [new ProgressBar({ stream: out })]).fit({ epochs: 2, train: fx.data(16), validation: fx.data(64) });
    expect(timers()).toBe(before); // cli-progress's redraw timer is stopped
    expect(ANSI.test(out.text)).toBe(true);
    // what stays on the screen: each epoch's final line, full length (not cut at 120 columns), then a newline
    const finals = out.lines;
    expect(finals).toHaveLength(2);
    finals.forEach((l, e) => {
      expect(l).toMatch(new RegExp(`^Epoch ${e + 1}/2 - 4/4 \\[={30}\\] - `));
      expectShows(l, ["loss", "acc", "lr", "val_loss", "val_acc"], r.state.history[e]!.logs);
    });
    expect(out.text.endsWith("\n")).toBe(true);

    vi.stubEnv("CI", "true");
    const ci = new Collect(true);
    await trainer(fx, [new ProgressBar({ stream: ci })]).fit({ epochs: 2, train: fx.data(16) });
    expect(ANSI.test(ci.text)).toBe(false);
    expect(ci.lines.map((l) => l.slice(0, 15))).toEqual(["Epoch 1/2 - 4/4", "Epoch 2/2 - 4/4"]);
    fx.dispose();
  });

  it("progress.logger(): a message another plugin logs mid-epoch clears the bar's line, stands on its own line, and the bar is drawn again below it", async () => {
    vi.stubEnv("CI", "");
    const fx = tinyFixture({ samples: 64 });
    const out = new Collect(true, 120);
    const progress = new ProgressBar({ stream: out });
    // the console on the same terminal: whole lines on the same stream
    const base = { debug: () => {}, info: (m: string) => void out.write(`${m}\n`), warn: (m: string) => void out.write(`WARN ${m}\n`), error: (m: string) => void out.write(`ERROR ${m}\n`) };
    const logger = progress.logger(base);
    logger.info("before the run"); // no bar: straight through
    const chatty: Callback = {
      name: "Chatty",
      batchCheckpoint: (ctx) => {
        if (ctx.state.batchIndex === 2) ctx.logger.info(`saved at step ${ctx.state.step}`);
        if (ctx.state.batchIndex === 3 && ctx.state.epoch === 1) ctx.logger.warn("two\nlines");
      },
    };
    let mid: string[] = [];
    // batchCheckpoint runs in reverse order: the bar, then Chatty, then Look
    const look: Callback = { name: "Look", batchCheckpoint: (ctx) => void (ctx.state.epoch === 1 && ctx.state.batchIndex === 3 && (mid = out.lines)) };
    const r = await new Trainer({ model: fx.model, optimizer: tf.train.adam(0.05), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks: [look, chatty, progress], logger, seed: 1 }).fit({ epochs: 2, train: fx.data(16), validation: fx.data(64) });
    logger.info("after the run");
    const final = (e: number) => expect.stringMatching(new RegExp(`^Epoch ${e + 1}/2 - 4/4 \\[={30}\\] - .* - val_acc: \\S+$`));
    // mid-epoch 2: the messages so far, each whole on its line, and the bar (cut to the width) under the last one
    expect(mid.slice(0, 6)).toEqual(["before the run", "saved at step 2", final(0), "saved at step 6", "WARN two", "lines"]);
    expect(mid[6]).toMatch(/^Epoch 2\/2 - 3\/4 \[={22}>?\.*\] - ETA /);
    expect(mid[6]!.length).toBeLessThan(120);
    expect(mid).toHaveLength(7);
    expect(out.lines).toEqual(["before the run", "saved at step 2", final(0), "saved at step 6", "WARN two", "lines", final(1), "after the run"]);
    expectShows(out.lines[6]!, ["loss", "acc", "lr", "val_loss", "val_acc"], r.state.history[1]!.logs);

    // not a terminal: lines, and messages go straight to the base logger with nothing around them
    const plain = new Collect();
    const lines = new ProgressBar({ stream: plain });
    const seen: string[] = [];
    await trainer(fx, [chatty, lines], lines.logger({ ...base, info: (m: string) => void seen.push(m) })).fit({ epochs: 1, train: fx.data(16) });
    expect(seen).toEqual(["saved at step 2"]);
    expect(ANSI.test(plain.text)).toBe(false);
    expect(plain.lines).toEqual([expect.stringMatching(/^Epoch 1\/1 - 4\/4 - /)]);
    fx.dispose();
  });

  it("costs little per step: the hook updates a counter, redraws are throttled", async () => {
    vi.stubEnv("CI", "");
    const fx = tinyFixture({ samples: 512 });
    const out = new Collect(true);
    let spent = 0;
    let calls = 0;
    class Timed extends ProgressBar {
      override batchCheckpoint(ctx: Parameters<ProgressBar["batchCheckpoint"]>[0]): void {
        const t = performance.now();
        super.batchCheckpoint(ctx);
        spent += performance.now() - t;
        calls++;
      }
    }
    await trainer(fx, [new Timed({ stream: out })]).fit({ epochs: 2, train: fx.data(4) });
    expect(calls).toBe(256);
    expect(spent / calls).toBeLessThan(0.25); // ms: a redraw now and then, a counter otherwise (~10-15 us measured, redraws included)
    expect(out.chunks.length).toBeLessThan(256); // not one redraw per step
    fx.dispose();
  });
});
