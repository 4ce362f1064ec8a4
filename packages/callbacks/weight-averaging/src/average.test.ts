import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { FitloopError, OptionsError, ORDER, type Callback } from "@fitloop/core";
import { expectRefused, tinyFixture } from "@fitloop/core/testing";
import { EMA, SWA, emaDecayAt, emaUpdate, swaLearningRate, swaUpdate } from "./index.js";
import { accumulate, expectClose, lerp, recorder, trainer, weightsOf } from "./helpers.fixture.js";

const values = (ts: tf.Tensor[]) => ts.map((t) => Array.from(t.dataSync()));

describe("the pure functions, against hand-computed values", () => {
  it("emaUpdate is a + (w - a)(1 - decay); swaUpdate is the running mean a + (w - a) / (n + 1), n = 0 copying", () => {
    const a = [tf.tensor1d([0, 10]), tf.tensor2d([[4]])];
    const w = [tf.tensor1d([1, 20]), tf.tensor2d([[0]])];
    const before = tf.memory().numTensors;
    const e = emaUpdate(a, w, 0.75);
    expect(values(e)).toEqual([[0.25, 12.5], [3]]);
    const s = swaUpdate(a, w, 3); // mean of 3 models is a; adding w: (3a + w) / 4
    expect(values(s)).toEqual([[0.25, 12.5], [3]]);
    const first = swaUpdate(a, w, 0);
    expect(values(first)).toEqual(values(w));
    expect(first[0]).not.toBe(w[0]); // a copy, the caller's to dispose like the others
    expect(tf.memory().numTensors).toBe(before + 6); // the results only
    tf.dispose([...e, ...s, ...first]);
    expectRefused(() => emaUpdate(a, w.slice(1), 0.5), FitloopError, "AVERAGE_MISMATCH", "2 averages for 1 weights");
    const odd = tf.tensor1d([1]);
    expectRefused(() => swaUpdate(a, [w[0]!, odd], 1), FitloopError, "AVERAGE_MISMATCH", "tensor 1 is [1, 1] in the averages and [1] in the weights");
    expectRefused(() => emaUpdate(a, w, 1.5), FitloopError, "AVERAGE_MISMATCH", "decay must be in [0, 1]");
    expectRefused(() => swaUpdate(a, w, -1), FitloopError, "AVERAGE_MISMATCH", "n (models already averaged)");
    tf.dispose([...a, ...w, odd]);
  });

  it("emaDecayAt: update 0 copies; then the decay, timm's warmup min(decay, 1 - (1 + t/gamma)^-power), or Composer's half-life", () => {
    expect(emaDecayAt(0, { decay: 0.99 })).toBe(0);
    expect(emaDecayAt(0, { decay: 0.99, warmup: true })).toBe(0);
    expect(emaDecayAt(7, { decay: 0.99 })).toBe(0.99);
    for (const t of [1, 2, 10, 100, 10_000]) {
      expect(emaDecayAt(t, { decay: 0.9999, warmup: true })).toBeCloseTo(Math.min(0.9999, 1 - (1 + t) ** -0.75), 15);
      expect(emaDecayAt(t, { decay: 0.9999, warmup: { power: 2 / 3, gamma: 10 } })).toBeCloseTo(Math.min(0.9999, 1 - (1 + t / 10) ** (-2 / 3)), 15);
    }
    expect(emaDecayAt(1, { decay: 0.9, warmup: true })).toBeCloseTo(1 - 2 ** -0.75, 15); // 0.405: warming up
    expect(emaDecayAt(1_000_000, { decay: 0.9, warmup: true })).toBe(0.9); // capped
    expect(emaDecayAt(3, { halfLife: 100 })).toBeCloseTo(2 ** (-1 / 100), 15);
    expect(emaDecayAt(3, { halfLife: 100, every: 4 })).toBeCloseTo(2 ** (-4 / 100), 15); // each update covers 4 steps
    expect(() => emaDecayAt(1, { decay: 1 })).toThrow(OptionsError);
    expect(() => emaDecayAt(-1, { decay: 0.5 })).toThrow(RangeError);
  });

  it("swaLearningRate: SWALR's anneal from the starting rate, cos or linear, 0 anneal epochs at once", () => {
    const cos = (t: number) => (1 - Math.cos(Math.PI * t)) / 2;
    expect(swaLearningRate(0, 0.1, { value: 0.01, annealEpochs: 4 })).toBeCloseTo(0.1, 15);
    expect(swaLearningRate(1, 0.1, { value: 0.01, annealEpochs: 4 })).toBeCloseTo(0.01 * cos(0.25) + 0.1 * (1 - cos(0.25)), 15);
    expect(swaLearningRate(2, 0.1, { value: 0.01, annealEpochs: 4, strategy: "linear" })).toBeCloseTo(0.055, 15);
    expect(swaLearningRate(9, 0.1, { value: 0.01, annealEpochs: 4 })).toBeCloseTo(0.01, 15);
    expect(swaLearningRate(0, 0.1, 0.05)).toBeCloseTo(0.1, 15); // a number: PyTorch's default 10 anneal epochs
    expect(swaLearningRate(0, 0.1, { value: 0.05, annealEpochs: 0 })).toBe(0.05);
  });
});

/** EMA over the recorded applied steps, by hand in float64. */
function handEma(steps: { step: number; weights: number[][] }[], o: { decay: number; every?: number; warmup?: { power: number; gamma: number } }): { avg: number[][]; updates: number } {
  let avg: number[][] = [];
  let t = 0;
  for (const { step, weights } of steps) {
    if (step % (o.every ?? 1) !== 0) continue;
    const d = t === 0 ? 0 : o.warmup ? Math.min(o.decay, 1 - (1 + t / o.warmup.gamma) ** -o.warmup.power) : o.decay;
    avg = t === 0 ? weights : lerp(avg, weights, 1 - d);
    t++;
  }
  return { avg, updates: t };
}

const mean = (sets: number[][][]): number[][] => sets[0]!.map((t, i) => t.map((_, j) => sets.reduce((s, w) => s + w[i]![j]!, 0) / sets.length));

describe("EMA in training: the average is the exponential mean of the weights after each applied step", () => {
  type Case = [string, { decay: number; every?: number; warmup?: { power: number; gamma: number } }, number];
  it.each<Case>([
    ["decay 0.9", { decay: 0.9 }, 1],
    ["decay 0.95 with warmup", { decay: 0.95, warmup: { power: 0.75, gamma: 1 } }, 1],
    ["every 3 steps, warmup power 2/3 gamma 2", { decay: 0.8, every: 3, warmup: { power: 2 / 3, gamma: 2 } }, 1],
    ["only the applied steps of gradient accumulation over 3 batches", { decay: 0.9 }, 3],
  ])("%s (BatchNorm statistics averaged too)", async (_, o, accumulateOver) => {
    const fx = tinyFixture({ samples: 48, withBatchNormAndDropout: true });
    const rec = recorder();
    const ema = new EMA(o);
    const t = trainer(fx, [ema, rec, ...(accumulateOver > 1 ? [accumulate(accumulateOver)] : [])], { optimizer: tf.train.adam(0.05) });
    const r = await t.fit({ epochs: 4, train: fx.data(8) });
    const hand = handEma(rec.steps, o);
    expect(r.state.step).toBe(24 / accumulateOver);
    expect(rec.steps).toHaveLength(24 / accumulateOver);
    expect(ema.updates).toBe(hand.updates);
    expect(hand.updates).toBe(Math.floor(24 / accumulateOver / (o.every ?? 1)));
    expectClose(ema.averagedWeights()!.map((w) => w.values), hand.avg, 2e-6, "average");
    expectClose(fx.model.weights.map((w) => w.read().dataSync()), hand.avg, 2e-6, "model at the end"); // applyAtEnd
    expect(weightsOf(fx.model)).not.toEqual(rec.steps.at(-1)!.weights); // and it is not the last weights
    fx.dispose();
  });
});

describe("SWA in training: the average is the arithmetic mean of the weights taken", () => {
  it("every 2 epochs from epoch 2: the mean of the weights at the end of epochs 2, 4 and 6; BatchNorm statistics are not averaged (recomputed at the end)", async () => {
    const fx = tinyFixture({ samples: 32, withBatchNormAndDropout: true });
    const rec = recorder();
    const swa = new SWA({ start: 2, every: { epochs: 2 } });
    await trainer(fx, [swa, rec]).fit({ epochs: 7, train: fx.data(8) });
    const trainable = fx.model.weights.map((w, i) => (fx.model.trainableWeights.includes(w) ? i : -1)).filter((i) => i >= 0);
    const pick = (ws: number[][]) => trainable.map((i) => ws[i]!);
    const want = mean([2, 4, 6].map((e) => pick(rec.epochs.get(e)!)));
    expect(swa.updates).toBe(3);
    expect(swa.averagedWeights()!.map((w) => w.name)).toEqual(fx.model.trainableWeights.map((w) => w.name));
    expectClose(swa.averagedWeights()!.map((w) => w.values), want, 1e-6, "average");
    expectClose(pick(weightsOf(fx.model)), want, 1e-6, "model at the end");
    fx.dispose();
  });

  it("every 3 applied steps from a fraction of the run (0.5 of 4 epochs: epoch 2), with gradient accumulation over 2 batches", async () => {
    const fx = tinyFixture({ samples: 48 });
    const rec = recorder();
    const swa = new SWA({ start: 0.5, every: { steps: 3 } });
    const r = await trainer(fx, [swa, rec, accumulate(2)]).fit({ epochs: 4, train: fx.data(8) });
    expect(swa.startEpoch).toBe(2);
    expect(r.state.step).toBe(12); // 24 batches, every second step applied
    // steps 7..12 are in epochs 2 and 3 (3 applied steps per epoch): steps 9 and 12 are taken
    const taken = rec.steps.filter((s) => s.step > 6 && s.step % 3 === 0);
    expect(taken.map((s) => s.step)).toEqual([9, 12]);
    expect(swa.updates).toBe(2);
    expectClose(swa.averagedWeights()!.map((w) => w.values), mean(taken.map((s) => s.weights)), 1e-6, "average");
    fx.dispose();
  });

  it("lr: SWALR's rate from the start epoch, annealed from the rate SWA started with, over a schedule running at ORDER.SCHEDULE", async () => {
    const fx = tinyFixture({ samples: 16 });
    const used: number[] = [];
    const probe: Callback = { name: "Probe", beforeUpdate: (ctx) => void used.push(ctx.hyper.learningRate) };
    const schedule: Callback = { name: "Schedule", order: ORDER.SCHEDULE, beforeBatch: (ctx) => void (ctx.hyper.learningRate = 0.2) };
    const r = await trainer(fx, [new SWA({ start: 2, lr: { value: 0.01, annealEpochs: 2, strategy: "linear" } }), schedule, probe]).fit({ epochs: 5, train: fx.data(8) });
    const perEpoch = [0.2, 0.2, 0.2, 0.105, 0.01]; // SWA epochs 0, 1, 2: t = 0, 1/2, 1 from 0.2
    used.forEach((lr, i) => expect(lr, `step ${i}`).toBeCloseTo(perEpoch[Math.floor(i / 2)]!, 12));
    r.state.history.forEach((h, e) => expect(h.logs["lr"], `epoch ${e}`).toBeCloseTo(perEpoch[e]!, 7)); // float32 in the optimizer
    fx.dispose();
  });
});
