import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CancelBatch, CancelStep, ORDER, silentLogger, type Callback } from "@fitloop/core";
import { countDeviceReads } from "@fitloop/core/testing";
// not a devDependency of this package (yet): the sibling's source, as its own tests import it
import { GradClip } from "@fitloop/grad-clip";
import { Scheduler, oneCycleLR } from "@fitloop/lr-schedule";
import { dropLast, maxDiff, run, stream } from "./harness.fixture.js";
import { optimizerSteps } from "./index.js";

/** Float tolerance for "the same step": float32 sums in another order (measured: ~1.2e-7). */
const TOL = 1e-6;

describe("an accumulated group is the big batch's step", () => {
  for (const opt of ["sgd", "adam"] as const) {
    it(`${opt}: 4 micro-batches of 16 give the weights of one batch of 64 after every optimizer step (and not those of 16 steps of 16)`, async () => {
      const big = await run({ samples: 256, batch: 64, optimizer: opt, epochs: 2 });
      const acc = await run({ samples: 256, batch: 16, optimizer: opt, epochs: 2, accumulate: { steps: 4 } });
      const plain = await run({ samples: 256, batch: 16, optimizer: opt, epochs: 2 });
      expect(acc.steps).toHaveLength(8);
      const d = maxDiff(acc.steps, big.steps);
      console.log(`${opt} cpu: max |w(4x16) - w(64)| over 8 steps = ${d.toExponential(2)}`);
      expect(d).toBeLessThan(TOL);
      expect(maxDiff(plain.steps.filter((_, i) => i % 4 === 3), big.steps)).toBeGreaterThan(1e-2); // the comparison can fail
      // the loss is logged per micro-batch; at the group's weights its epoch mean is the big batch's
      acc.result.state.history.forEach((h, e) => expect(h.logs["loss"]).toBeCloseTo(big.result.state.history[e]!.logs["loss"]!, 5));
      expect(acc.result.state.history.map((h) => h.logs["effective_batch"])).toEqual([64, 64]);
    });
  }

  it('a partial group at the end of an epoch: "step" applies the mean of what it holds (the big batch of the rest); "drop" applies nothing', async () => {
    // 104 samples: micro-batches 16 x 6 + 8 -> groups of 4 (64 samples) and 3 (40, the last one uneven); big batches 64 and 40
    const big = await run({ samples: 104, batch: 64, optimizer: "adam", epochs: 3 });
    const step = await run({ samples: 104, batch: 16, optimizer: "adam", epochs: 3, accumulate: { steps: 4 } });
    expect(step.result.state.step).toBe(6);
    expect(maxDiff(step.steps, big.steps)).toBeLessThan(TOL);
    const epoch = [undefined, undefined, undefined, 64, undefined, undefined, 40];
    expect(step.batchLogs.map((l) => l["effective_batch"])).toEqual([...epoch, ...epoch, ...epoch]);
    expect(step.result.state.history[0]!.logs["effective_batch"]).toBe(52);

    const bigDrop = await run({ samples: 104, batch: 64, optimizer: "adam", epochs: 3, data: dropLast(64) });
    const drop = await run({ samples: 104, batch: 16, optimizer: "adam", epochs: 3, accumulate: { steps: 4, partial: "drop" } });
    expect(drop.result.state.step).toBe(3);
    expect(drop.result.state.globalBatch).toBe(21); // every micro-batch trained its loss log, none of the last 3 moved a weight
    expect(maxDiff(drop.steps, bigDrop.steps)).toBeLessThan(TOL);
    expect(drop.final).toEqual(drop.steps.at(-1));
    expect(drop.plugin!.accumulated).toEqual({ microBatches: 0, samples: 0 });
  });

  it("a stream (length unknown): the leftover group is dropped at the epoch's end with a warning naming it; the updates are those of partial: \"drop\"", async () => {
    const warnings: string[] = [];
    const logger = { info: () => undefined, debug: () => undefined, error: () => undefined, warn: (m: string) => void warnings.push(m) };
    const streamed = await run({ samples: 112, batch: 16, epochs: 2, accumulate: { steps: 4 }, data: stream(16), logger });
    const known = await run({ samples: 112, batch: 16, epochs: 2, accumulate: { steps: 4, partial: "drop" } });
    expect(streamed.result.state.step).toBe(2);
    expect(streamed.steps).toEqual(known.steps);
    expect(warnings).toEqual([0, 1].map((e) => `GradAccumulation: dropped a partial group of 3 micro-batch(es) (48 samples) at the end of epoch ${e}: the data source does not say how many batches an epoch has (batchesPerEpoch), so no batch could close it; groups do not span epochs`));
  });

  it("steps: 1 is a pass-through: the same weights bit for bit, effective_batch logged", async () => {
    const plain = await run({ samples: 112, batch: 16 });
    const one = await run({ samples: 112, batch: 16, accumulate: { steps: 1 } });
    expect(one.steps).toEqual(plain.steps);
    expect(one.batchLogs.map((l) => l["effective_batch"])).toEqual([16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16]);
  });
});

describe("optimizer steps, not micro-batches", () => {
  it("state.step counts optimizer steps; a schedule reading it sets one rate per group; sized with optimizerSteps it equals the big-batch run", async () => {
    const total = optimizerSteps({ epochs: 3, batchesPerEpoch: 7, steps: 4 });
    expect(total).toBe(6);
    const rates: number[] = [];
    const decay = (): Callback => ({
      name: "Decay",
      order: ORDER.SCHEDULE,
      beforeBatch: (ctx) => {
        ctx.hyper.learningRate = 0.5 * (1 - ctx.state.step / total);
        rates.push(ctx.hyper.learningRate);
      },
    });
    const acc = await run({ samples: 112, batch: 16, epochs: 3, accumulate: { steps: 4 }, callbacks: [decay()] });
    expect(acc.result.state.step).toBe(total);
    expect(acc.result.state.globalBatch).toBe(21);
    const perGroup = [4, 3, 4, 3, 4, 3].flatMap((n, g) => Array<number>(n).fill(0.5 * (1 - g / total)));
    rates.forEach((r, i) => expect(r).toBeCloseTo(perGroup[i]!, 6));
    const big = await run({ samples: 112, batch: 64, epochs: 3, callbacks: [decay()] });
    expect(maxDiff(acc.steps, big.steps)).toBeLessThan(TOL);
  });

  it("the Scheduler sizes the run in optimizer steps (ctx.updatesPerEpoch): a one-cycle sized with optimizerSteps runs to its end without a warning; one sized in batches is warned about", async () => {
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
    const total = optimizerSteps({ epochs: 3, batchesPerEpoch: 7, steps: 4 });
    const lrs: number[] = [];
    const lrLog: Callback = { name: "LrLog", afterStep: (ctx) => void (ctx.stepSkipped || lrs.push(ctx.hyper.learningRate)) };
    await run({ samples: 112, batch: 16, epochs: 3, accumulate: { steps: 4 }, optimizer: "adam", logger, record: false, callbacks: [new Scheduler(oneCycleLR({ maxLr: 0.5, totalSteps: total })), lrLog] });
    expect(warnings.filter((w) => w.includes("Scheduler"))).toEqual([]);
    const schedule = oneCycleLR({ maxLr: 0.5, totalSteps: total });
    expect(lrs).toHaveLength(total);
    lrs.forEach((lr, t) => expect(lr).toBeCloseTo(schedule.lr(t), 6)); // every step of the cycle, once per group
    // a schedule shorter than the run's updates still gets the warning
    await run({ samples: 112, batch: 16, epochs: 3, accumulate: { steps: 2 }, optimizer: "adam", logger, record: false, callbacks: [new Scheduler(oneCycleLR({ maxLr: 0.5, totalSteps: total }))] });
    expect(warnings.filter((w) => w.includes("Scheduler"))).toEqual([expect.stringMatching(/the lr schedule .* defined over 6 steps but this run goes to step 12/), expect.stringMatching(/the momentum schedule .* defined over 6 steps but this run goes to step 12/)]);
  });

  it("GradClip sees the group's mean: grad_norm is the big batch's, logged once per group, and the clipped updates are the big batch's", async () => {
    const clipped = (samples: number, batch: number, steps?: number) => run({ samples, batch, epochs: 2, optimizer: "adam", callbacks: [new GradClip({ max: 0.05 })], ...(steps ? { accumulate: { steps } } : {}) });
    const big = await clipped(112, 64);
    const acc = await clipped(112, 16, 4);
    const norms = acc.batchLogs.map((l) => l["grad_norm"]);
    expect(norms.map((n) => n !== undefined)).toEqual([false, false, false, true, false, false, true, false, false, false, true, false, false, true]);
    const bigNorms = big.batchLogs.map((l) => l["grad_norm"]!);
    norms.filter((n) => n !== undefined).forEach((n, i) => expect(Math.abs(n! - bigNorms[i]!) / bigNorms[i]!).toBeLessThan(1e-5));
    expect(acc.batchLogs.filter((l) => "grad_clipped" in l).map((l) => l["grad_clipped"])).toEqual([1, 1, 1, 1]);
    expect(acc.result.state.history[0]!.logs["grad_norm"]).toBeCloseTo(big.result.state.history[0]!.logs["grad_norm"]!, 5);
    expect(maxDiff(acc.steps, big.steps)).toBeLessThan(TOL);
  });

  it("no device read of its own: one per micro-batch, as without it", async () => {
    const reads = countDeviceReads();
    const perBatch: number[] = [];
    let start = 0;
    const bracket: Callback = { name: "Bracket", order: -1e9, beforeBatch: () => void (start = reads.count), afterBatch: () => void perBatch.push(reads.count - start) };
    try {
      await run({ samples: 112, batch: 16, epochs: 1, accumulate: { steps: 4 }, callbacks: [bracket], record: false });
    } finally {
      reads.stop();
    }
    expect(perBatch).toEqual([1, 1, 1, 1, 1, 1, 1]);
  });
});

describe("the group when other plugins intervene", () => {
  /** Multiplies the gradients of the given global batches by NaN, before accumulation. */
  const poison = (batches: number[]): Callback => ({ name: "Poison", order: ORDER.DEFAULT, afterGradients: (ctx) => (batches.includes(ctx.state.globalBatch) ? Object.fromEntries(Object.entries(ctx.grads!).map(([k, g]) => [k, tf.mul(g, Number.NaN)])) : undefined) });

  it("a NaN micro-batch gradient poisons its group's mean: GradClip skips that one update, the next group starts clean", async () => {
    const clip = new GradClip({ max: 10 });
    const r = await run({ samples: 112, batch: 16, epochs: 2, accumulate: { steps: 4 }, callbacks: [clip, poison([1])] });
    expect(clip.nonFiniteSteps).toBe(1);
    expect(r.result.state.step).toBe(3);
    expect(r.batchLogs[3]!["grad_norm"]).toBeNaN();
    expect(r.batchLogs[6]!["grad_norm"]).toBeGreaterThan(0);
    expect(r.final.flat().every(Number.isFinite)).toBe(true);
    // from group 2 on it is the run whose first update was skipped
    const skipFirst: Callback = { name: "SkipFirst", order: ORDER.GUARD, beforeStep: (ctx) => void (ctx.state.globalBatch === 0 && ctx.skipStep("test")) };
    const big = await run({ samples: 112, batch: 64, epochs: 2, callbacks: [new GradClip({ max: 10 }), skipFirst] });
    expect(maxDiff(r.steps, big.steps)).toBeLessThan(TOL);
  });

  it("a guard that skips a group's last micro-batch ends the group: the next one holds only its own micro-batches", async () => {
    const skipAt = (b: number): Callback => ({ name: "Guard", order: ORDER.GUARD, beforeStep: (ctx) => void (ctx.state.globalBatch === b && ctx.skipStep("test")) });
    const acc = await run({ samples: 112, batch: 16, epochs: 2, accumulate: { steps: 4 }, callbacks: [skipAt(3)] });
    const big = await run({ samples: 112, batch: 64, epochs: 2, callbacks: [skipAt(0)] });
    expect(acc.result.state.step).toBe(3);
    expect(maxDiff(acc.steps, big.steps)).toBeLessThan(TOL);
    expect(acc.batchLogs[3]!["effective_batch"]).toBeUndefined(); // logged only for updates applied
  });

  it("a micro-batch cancelled before the gradient stage contributes nothing and does not count toward the group", async () => {
    const cancelAt = (b: number): Callback => ({
      name: "Cancel",
      afterLoss: (ctx) => {
        if (ctx.state.globalBatch === b) throw new CancelBatch("test");
      },
    });
    const r = await run({ samples: 112, batch: 16, epochs: 1, accumulate: { steps: 4 }, callbacks: [cancelAt(1)] });
    // groups: batches 0, 2, 3, 4 (64 samples), then 5, 6 closed by the epoch's end (32)
    expect(r.batchLogs.map((l) => l["effective_batch"])).toEqual([undefined, undefined, undefined, undefined, 64, undefined, 32]);
    expect(r.result.state.step).toBe(2);
  });

  it("a micro-batch an earlier plugin asked to skip (ctx.skipStep, e.g. a loss-spike guard) contributes nothing, as a CancelStep there", async () => {
    const guard = (how: "skip" | "cancel"): Callback => ({
      name: "Guard",
      order: ORDER.DEFAULT, // before the accumulation (ORDER.GRADIENT - 50)
      afterGradients: (ctx) => {
        if (ctx.state.globalBatch !== 1) return;
        if (how === "skip") ctx.skipStep("loss spike");
        else throw new CancelStep("loss spike");
      },
    });
    const skipped = await run({ samples: 112, batch: 16, epochs: 1, accumulate: { steps: 4 }, callbacks: [guard("skip")] });
    const cancelled = await run({ samples: 112, batch: 16, epochs: 1, accumulate: { steps: 4 }, callbacks: [guard("cancel")] });
    expect(skipped.batchLogs.map((l) => l["effective_batch"])).toEqual([undefined, undefined, undefined, undefined, 64, undefined, 32]);
    expect(skipped.final).toEqual(cancelled.final);
    expect(skipped.result.state.step).toBe(2);
  });
});
