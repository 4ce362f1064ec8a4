import { describe, expect, it } from "vitest";
import { countDeviceReads, tinyFixture } from "@fitloop/core/testing";
import { Throughput, Timer } from "./index.js";
import { batchLogs, manualClock, streaming, trainer, work } from "./harness.fixture.js";
import type { Callback } from "@fitloop/core";

const pick = (seen: ReturnType<typeof batchLogs>["seen"], key: string) => seen.map((s) => s.logs[key]);
const close = (values: (number | undefined)[], expected: number[]) => {
  expect(values).toHaveLength(expected.length);
  values.forEach((v, i) => expect(v, `#${i}`).toBeCloseTo(expected[i]!, 9));
};

describe("Timer on a controlled clock", () => {
  it("step_time, epoch_time and eta are exact; eta counts validation once measured and reaches 0 at the end", async () => {
    const fx = tinyFixture({ samples: 48 });
    const clock = manualClock();
    const seen = batchLogs();
    // 3 batches of 10 ms per epoch, a 30 ms validation pass
    const r = await trainer(fx, [new Timer({ now: clock.now }), work(clock, { batchMs: 10, valMs: 30 }), seen]).fit({ epochs: 2, train: fx.data(16), validation: fx.data(48) });
    close(pick(seen.seen, "step_time"), [0.01, 0.01, 0.01, 0.01, 0.01, 0.01]);
    // epoch 0: 5, 4, 3 batches left (validation not measured yet); epoch 1: 2, 1, 0 batches + one 30 ms validation
    close(pick(seen.seen, "eta"), [0.05, 0.04, 0.03, 0.05, 0.04, 0.03]);
    const h = r.state.history.map((e) => e.logs);
    close(h.map((l) => l["epoch_time"]), [0.06, 0.06]);
    close(h.map((l) => l["step_time"]), [0.01, 0.01]); // the mean over the epoch
    close(h.map((l) => l["eta"]), [0.06, 0]); // once the epoch is over: one more epoch of 3 batches + validation, then nothing
    fx.dispose();
  });

  it("without validation: the epoch ends with training, and the last batch's eta is 0", async () => {
    const fx = tinyFixture({ samples: 48 });
    const clock = manualClock();
    const seen = batchLogs();
    const r = await trainer(fx, [new Timer({ now: clock.now }), work(clock, { batchMs: 20 }), seen]).fit({ epochs: 2, train: fx.data(16) });
    close(pick(seen.seen, "eta"), [0.1, 0.08, 0.06, 0.04, 0.02, 0]);
    close(r.state.history.map((e) => e.logs["epoch_time"]), [0.06, 0.06]);
    close(r.state.history.map((e) => e.logs["eta"]), [0.06, 0]);
    fx.dispose();
  });

  it("time between epochs (a checkpoint) goes to the next epoch's first batch, so the parts add up to the wall time", async () => {
    const fx = tinyFixture({ samples: 48 });
    const clock = manualClock();
    const seen = batchLogs();
    const start = clock.now();
    const r = await trainer(fx, [new Timer({ now: clock.now }), work(clock, { batchMs: 10, valMs: 30, gapMs: 20 }), seen]).fit({ epochs: 2, train: fx.data(16), validation: fx.data(48) });
    close(pick(seen.seen, "step_time"), [0.01, 0.01, 0.01, 0.03, 0.01, 0.01]);
    const stepSum = pick(seen.seen, "step_time").reduce((a, b) => a! + b!, 0)!;
    // + the two validations, + the gap after the last epoch (after the last measured unit)
    expect(stepSum + 2 * 0.03 + 0.02).toBeCloseTo((clock.now() - start) / 1000, 9);
    // at epoch 1, batch 0: mean batch (10+10+10+30)/4 = 15 ms, 2 batches and one validation left
    expect(seen.seen[3]!.logs["eta"]).toBeCloseTo(0.06, 9);
    close(r.state.history.map((e) => e.logs["epoch_time"]), [0.06, 0.06]);
    fx.dispose();
  });

  it("a stop request: eta drops to what is left before the run ends (this epoch's validation)", async () => {
    const fx = tinyFixture({ samples: 48 });
    const clock = manualClock();
    const seen = batchLogs();
    const stopper: Callback = { name: "Stopper", beforeStep: (ctx) => void (ctx.state.epoch === 1 && ctx.state.batchIndex === 1 && ctx.requestStop("enough")) };
    const r = await trainer(fx, [new Timer({ now: clock.now }), work(clock, { batchMs: 10, valMs: 30 }), seen, stopper]).fit({ epochs: 3, train: fx.data(16), validation: fx.data(48) });
    expect(r.outcome.status).toBe("stopped");
    // epoch 1, batch 0: 5 batches and 2 validations left; from batch 1 on only this epoch's validation
    close(pick(seen.seen, "eta"), [0.08, 0.07, 0.06, 0.11, 0.03]);
    close(r.state.history.map((e) => e.logs["eta"]), [0.12, 0]);
    fx.dispose();
  });

  it("a source of unknown length: step and epoch times, no eta", async () => {
    const fx = tinyFixture({ samples: 48 });
    const clock = manualClock();
    const seen = batchLogs();
    const r = await trainer(fx, [new Timer({ now: clock.now }), work(clock, { batchMs: 10 }), seen]).fit({ epochs: 2, train: streaming(fx.data(16)) });
    close(pick(seen.seen, "step_time"), [0.01, 0.01, 0.01, 0.01, 0.01, 0.01]);
    expect(seen.seen.every((s) => !("eta" in s.logs))).toBe(true);
    expect(r.state.history.map((e) => "eta" in e.logs)).toEqual([false, false]);
    close(r.state.history.map((e) => e.logs["epoch_time"]), [0.03, 0.03]);
    fx.dispose();
  });
});

describe("Throughput on a controlled clock", () => {
  it("samples_per_sec is the epoch's running throughput; its epoch value is samples / training time, validation and gaps left out", async () => {
    const fx = tinyFixture({ samples: 40 });
    const clock = manualClock();
    const seen = batchLogs();
    // batches of 16, 16 and 8 samples, 10 ms each
    const r = await trainer(fx, [new Throughput({ now: clock.now }), work(clock, { batchMs: 10, valMs: 500, gapMs: 300 }), seen]).fit({ epochs: 2, train: fx.data(16), validation: fx.data(40) });
    close(pick(seen.seen, "samples_per_sec"), [1600, 1600, 4000 / 3, 1600, 1600, 4000 / 3]);
    close(r.state.history.map((e) => e.logs["samples_per_sec"]), [4000 / 3, 4000 / 3]);
    fx.dispose();
  });

  it("with Timer beside it, both measure the same steps", async () => {
    const fx = tinyFixture({ samples: 32 });
    const clock = manualClock();
    const seen = batchLogs();
    await trainer(fx, [new Timer({ now: clock.now }), new Throughput({ now: clock.now }), work(clock, { batchMs: 8 }), seen]).fit({ epochs: 1, train: fx.data(16) });
    close(pick(seen.seen, "step_time"), [0.008, 0.008]);
    close(pick(seen.seen, "samples_per_sec"), [2000, 2000]);
    fx.dispose();
  });
});

describe("with the real clock", () => {
  it("plausible values: positive, finite, adding up to no more than the wall time, and no device read added", async () => {
    const fx = tinyFixture({ samples: 64 });
    const seen = batchLogs();
    const reads = countDeviceReads();
    const perStep: number[] = [];
    let start = 0;
    const bracket: Callback = { name: "Bracket", order: -1e9, beforeBatch: () => void (start = reads.count), afterBatch: () => void perStep.push(reads.count - start) };
    const t0 = performance.now();
    const r = await trainer(fx, [new Timer(), new Throughput(), seen, bracket]).fit({ epochs: 2, train: fx.data(16), validation: fx.data(64) });
    const wall = (performance.now() - t0) / 1000;
    reads.stop();
    expect(perStep).toEqual(Array(8).fill(1)); // the step's own read only
    for (const s of seen.seen) {
      expect(s.logs["step_time"]).toBeGreaterThan(0);
      expect(s.logs["step_time"]).toBeLessThan(wall);
      expect(Number.isFinite(s.logs["samples_per_sec"])).toBe(true);
      expect(s.logs["samples_per_sec"]).toBeGreaterThan(0);
    }
    const epochTimes = r.state.history.map((e) => e.logs["epoch_time"]!);
    expect(epochTimes[0]! + epochTimes[1]!).toBeLessThanOrEqual(wall);
    expect(epochTimes[0]! + epochTimes[1]!).toBeGreaterThan(wall * 0.3); // the rest is setup: the pre-flight, the first kernels
    // the epoch's throughput agrees with its samples and step times
    const e1 = seen.seen.filter((s) => s.epoch === 1);
    const trainSeconds = e1.reduce((a, s) => a + s.logs["step_time"]!, 0);
    const ratio = r.state.history[1]!.logs["samples_per_sec"]! / (64 / trainSeconds); // two plugins, two readings of the clock
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
    expect(seen.seen.at(-1)!.logs["eta"]).toBeLessThan(epochTimes[1]!); // one validation pass left
    expect(r.state.history[1]!.logs["eta"]).toBe(0);
    fx.dispose();
  });
});
