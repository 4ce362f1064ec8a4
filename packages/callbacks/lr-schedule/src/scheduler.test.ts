import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { FitloopError, HyperparameterError, MissingMonitorError, OptionsError, StateError, Trainer, setLearningRate, silentLogger, type Callback, type Logger } from "@fitloop/core";
import { expectNoLeaks, failingPlugins, restoreRun, scriptedLog, snapshotRun, stateWithPlugins, tinyFixture } from "@fitloop/core/testing";
import { constant, cosineAnnealingLR, linearLR, linearWarmup, oneCycleLR, preview, ReduceLROnPlateau, Scheduler, stepLR } from "./index.js";

const OPTIMIZERS: [string, () => tf.Optimizer][] = [
  ["sgd", () => tf.train.sgd(0.1)],
  ["momentum", () => tf.train.momentum(0.1, 0.9)],
  ["adam", () => tf.train.adam(0.01)],
  ["adamax", () => tf.train.adamax(0.01)],
  ["rmsprop", () => tf.train.rmsprop(0.01, 0.9, 0.5)],
  ["adagrad", () => tf.train.adagrad(0.1)],
  ["adadelta", () => tf.train.adadelta(0.1)],
];

/** Records the hyperparameters each step actually runs with (in beforeStep, after every schedule). */
function recorder(): Callback & { lr: number[]; momentum: (number | undefined)[] } {
  const lr: number[] = [];
  const momentum: (number | undefined)[] = [];
  return { name: "Recorder", lr, momentum, beforeStep: (ctx) => void (lr.push(ctx.hyper.learningRate), momentum.push(ctx.hyper.momentum)) };
}


const weightsOf = (fx: { model: { getWeights(): tf.Tensor[] } }) => fx.model.getWeights().map((w) => Array.from(w.dataSync()));

describe("Scheduler applies schedules to every tfjs optimizer", () => {
  it.each(OPTIMIZERS)("%s: the learning rate (and momentum/beta1 where there is one) each step runs with, and the logs", async (name, make) => {
    const fx = tinyFixture({ samples: 32 });
    const opt = make();
    const lr = stepLR({ baseLr: 0.05, stepSize: 3, gamma: 0.5 });
    const momentum = linearLR({ baseLr: 0.9, startFactor: 0.5, endFactor: 1, totalIters: 8 }); // 0.45 .. 0.9
    const hasMomentum = ["momentum", "adam", "adamax", "rmsprop"].includes(name);
    const rec = recorder();
    const t = new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [new Scheduler({ lr, ...(hasMomentum ? { momentum } : {}) }), rec], logger: silentLogger });
    const batchLogs: Record<string, number>[] = [];
    t.on("afterBatch", (e) => void batchLogs.push({ ...e.logs }));
    const r = await t.fit({ epochs: 2, train: fx.data(8) }); // 8 steps
    expect(rec.lr).toEqual(preview(lr, 8));
    if (hasMomentum) expect(rec.momentum).toEqual(preview(momentum, 8));
    await new Promise((res) => setTimeout(res, 0));
    expect(batchLogs.map((l) => l["lr"])).toEqual(preview(lr, 8));
    if (hasMomentum) expect(batchLogs.map((l) => l["momentum"])).toEqual(preview(momentum, 8));
    expect(r.state.history.map((h) => h.logs["lr"])).toEqual([lr(3), lr(7)]); // the epoch's last step
    fx.dispose();
  });

  it("SGD and Momentum really step with the scheduled rate (tfjs caches it in a scalar): lr 0 leaves the weights alone", async () => {
    for (const make of [() => tf.train.sgd(0.5), () => tf.train.momentum(0.5, 0.9)]) {
      const fx = tinyFixture({ samples: 8 });
      const before = weightsOf(fx);
      const t = new Trainer({ model: fx.model, optimizer: make(), loss: "sparseCategoricalCrossentropy", callbacks: [new Scheduler({ lr: constant(0) })], logger: silentLogger });
      await t.fit({ epochs: 2, train: fx.data(4) });
      expect(weightsOf(fx)).toEqual(before);
      // and the warmup's second step (lr > 0) does change them
      const t2 = new Trainer({ model: fx.model, optimizer: make(), loss: "sparseCategoricalCrossentropy", callbacks: [new Scheduler({ lr: linearWarmup({ peak: 0.5, steps: 1 }) })], logger: silentLogger });
      await t2.fit({ epochs: 1, train: fx.data(8) }); // one step at lr 0
      expect(weightsOf(fx)).toEqual(before);
      await t2.fit({ epochs: 1, train: fx.data(8) }); // a new fit: state.step starts at 0 again, still lr 0
      expect(weightsOf(fx)).toEqual(before);
      fx.dispose();
    }
  });

  it("1cycle on Adam cycles beta1 inversely to the learning rate", async () => {
    const fx = tinyFixture({ samples: 32 });
    const cycle = oneCycleLR({ maxLr: 0.01, totalSteps: 12 });
    const rec = recorder();
    const t = new Trainer({ model: fx.model, optimizer: tf.train.adam(0.001), loss: "sparseCategoricalCrossentropy", callbacks: [new Scheduler(cycle), rec], logger: silentLogger });
    await t.fit({ epochs: 3, train: fx.data(8) });
    expect(rec.lr).toEqual(preview(cycle.lr, 12));
    expect(rec.momentum).toEqual(preview(cycle.momentum!, 12));
    const lowest = Math.min(...(rec.momentum as number[]));
    expect(lowest).toBeGreaterThanOrEqual(0.85); // baseMomentum at the lr peak (step 2.6 is not a step: close to it)
    expect(lowest).toBeLessThan(0.86);
    expect(rec.momentum.indexOf(lowest)).toBe(rec.lr.indexOf(Math.max(...rec.lr)));
    fx.dispose();
  });

  it('interval "epoch": schedule(epoch) before every epoch', async () => {
    const fx = tinyFixture({ samples: 16 });
    const lr = cosineAnnealingLR({ baseLr: 0.1, tMax: 4 });
    const rec = recorder();
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [new Scheduler({ lr, interval: "epoch" }), rec], logger: silentLogger });
    const r = await t.fit({ epochs: 4, train: fx.data(8) });
    expect(rec.lr).toEqual([0, 0, 1, 1, 2, 2, 3, 3].map((e) => lr(e)));
    expect(r.state.history.map((h) => h.logs["lr"])).toEqual([0, 1, 2, 3].map((e) => lr(e)));
    fx.dispose();
  });
});

describe("plateau on top of a schedule, and ReduceLROnPlateau alone", () => {
  it("cosine x plateau: the factor multiplies the curve from the epoch after the plateau", async () => {
    const fx = tinyFixture({ samples: 16 });
    const lr = cosineAnnealingLR({ baseLr: 0.1, tMax: 12 });
    const rec = recorder();
    const sched = new Scheduler({ lr, plateau: { monitor: "score", mode: "min", patience: 1, factor: 0.5, minDelta: 0 } });
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [sched, rec, scriptedLog([1, 0.5, 0.6, 0.4, 0.45, 0.5])], logger: silentLogger });
    await t.fit({ epochs: 6, train: fx.data(8) });
    // epochs 2, 4 and 5 do not improve (patience 1): factor 0.5 from epoch 3, 0.25 from epoch 5, 0.125 after the run
    const factors = [1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25];
    rec.lr.forEach((v, s) => expect(v, `step ${s}`).toBeCloseTo(lr(s) * factors[s]!, 15));
    expect(sched.plateauFactor).toBe(0.125);
    fx.dispose();
  });

  it("ReduceLROnPlateau alone (Keras defaults but patience): scales the optimizer's own rate, reported in the epoch logs", async () => {
    const fx = tinyFixture({ samples: 16 });
    const info: string[] = [];
    const logger: Logger = { ...silentLogger, info: (m: string) => void info.push(m) };
    const t = new Trainer({ model: fx.model, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", callbacks: [new ReduceLROnPlateau({ monitor: "score", mode: "min", patience: 2 }), scriptedLog([3, 2, 2.5, 2.2, 2.1, 1])], logger });
    const r = await t.fit({ epochs: 6, train: fx.data(8) });
    // Keras: e2, e3 do not improve on 2 -> reduce by 0.1 at the end of e3; e4 (2.1) still does not improve (wait 1)
    expect(r.state.history.map((h) => +h.logs["lr"]!.toPrecision(10))).toEqual([0.01, 0.01, 0.01, 0.01, 0.001, 0.001]);
    expect(t.optimizer.getConfig()["learningRate"]).toBeCloseTo(0.001, 12);
    expect(info.join("\n")).toMatch(/ReduceLROnPlateau: score did not improve for 2 epoch\(s\); learning rate factor now 0.1000/);
    fx.dispose();
  });

  it("a new fit starts the plateau over from the optimizer's current rate (Keras' on_train_begin); a loaded state is kept", async () => {
    const fx = tinyFixture({ samples: 16 });
    const opt = tf.train.adam(0.01);
    const plateau = new ReduceLROnPlateau({ monitor: "score", mode: "min", patience: 1, factor: 0.5 });
    const t = new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [plateau, scriptedLog([1, 2, 3])], logger: silentLogger });
    await t.fit({ epochs: 3, train: fx.data(8) });
    expect(plateau.plateauFactor).toBe(0.25);
    expect(opt.getConfig()["learningRate"]).toBeCloseTo(0.0025, 12);
    setLearningRate(opt, 1e-4); // the user changes it between runs
    const r = await t.fit({ epochs: 1, train: fx.data(8) });
    expect(r.state.history[0]!.logs["lr"]).toBe(1e-4); // not overridden by the previous run's base x factor
    expect(plateau.plateauFactor).toBe(1);
    const saved = { plateau: { factor: 0.5, best: 1, wait: 0, cooldownCounter: 0 }, baseLr: 0.02 };
    t.loadStateDict(stateWithPlugins({ "reduce-lr-on-plateau": saved })); // a resume: the plugin keeps what it is given
    const r2 = await t.fit({ epochs: 1, train: fx.data(8) });
    expect(r2.state.history[0]!.logs["lr"]).toBe(0.01); // the loaded base x factor
    fx.dispose();
  });

  it("a monitor missing from the logs is an error naming the keys that are there; val_ without validation data, before the first step", async () => {
    const fx = tinyFixture({ samples: 16 });
    const before = weightsOf(fx);
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks: [new ReduceLROnPlateau()], logger: silentLogger });
    const err = await t.fit({ epochs: 3, train: fx.data(8) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingMonitorError);
    expect((err as Error).message).toBe('ReduceLROnPlateau monitors "val_loss", but the logs of a fit() without validation data have no such key (val_* metrics need `validation` data in fit()).');
    expect(weightsOf(fx)).toEqual(before);
    const t2 = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks: [new ReduceLROnPlateau({ monitor: "val_los", mode: "min" })], logger: silentLogger });
    const typo = await t2.fit({ epochs: 3, train: fx.data(8), validation: fx.data(16) }).catch((e: unknown) => e);
    expect((typo as Error).message).toBe('ReduceLROnPlateau monitors "val_los", but the logs at the end of epoch 0 have no such key. Available: loss, acc, lr, val_loss, val_acc.');
    fx.dispose();
  });
});

describe("resume", () => {
  it("a resumed run continues the curve exactly: 1cycle + plateau, stop after epoch 2 of 6, new model/optimizer/trainer: same lrs, bit-identical weights", async () => {
    const script = [1, 0.8, 0.9, 0.95, 0.7, 0.75];
    const make = (fx: ReturnType<typeof tinyFixture>, callbacks: Callback[]) =>
      new Trainer({ model: fx.model, optimizer: tf.train.momentum(0.05, 0.9), loss: "sparseCategoricalCrossentropy", seed: 3, callbacks, logger: silentLogger });
    const plugins = () => {
      const cycle = oneCycleLR({ maxLr: 0.1, totalSteps: 24 });
      return [new Scheduler({ ...cycle, plateau: { monitor: "score", mode: "min", patience: 1, factor: 0.5 } }), scriptedLog(script)];
    };

    const full = tinyFixture({ samples: 32 });
    const recFull = recorder();
    await make(full, [...plugins(), recFull]).fit({ epochs: 6, train: full.data(8, 5) });

    const a = tinyFixture({ samples: 32 });
    const recA = recorder();
    const ta = make(a, [...plugins(), recA]);
    await ta.fit({ epochs: 3, train: a.data(8, 5) });
    const snap = await snapshotRun(ta);
    expect(snap.trainer.plugins["lr-schedule"]).toMatchObject({ plateau: { factor: 0.5, wait: 0 } }); // epoch 2 did not improve

    const b = tinyFixture({ samples: 32 });
    b.model.setWeights(b.model.getWeights().map((w) => tf.zerosLike(w))); // the snapshot must overwrite these
    const recB = recorder();
    const tb = make(b, [...plugins(), recB]);
    restoreRun(tb, snap);
    await tb.fit({ epochs: 6, train: b.data(8, 5) });
    expect([...recA.lr, ...recB.lr]).toEqual(recFull.lr);
    expect([...recA.momentum, ...recB.momentum]).toEqual(recFull.momentum);
    expect(weightsOf(b)).toEqual(weightsOf(full));
    for (const fx of [full, a, b]) fx.dispose();
  });

  it("a run resumed mid-epoch with a schedule sized exactly to the run gets no 'ends before the run' warning (the epoch's done updates are not counted twice)", async () => {
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
    const a = tinyFixture({ samples: 32 }); // 4 batches of 8, 3 epochs: 12 steps
    const stopAt: Callback = { name: "StopAt", afterBatch: (ctx) => void (ctx.state.globalBatch === 6 && ctx.requestStop("test")) };
    const ta = new Trainer({ model: a.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger, callbacks: [new Scheduler({ lr: cosineAnnealingLR({ baseLr: 0.1, tMax: 12 }) }), stopAt] });
    await ta.fit({ epochs: 3, train: a.data(8, 5) });
    const snap = await snapshotRun(ta);
    expect(snap.trainer.train.cursor).toEqual({ epoch: 1, batchIndex: 3 });
    const b = tinyFixture({ samples: 32 });
    const tb = new Trainer({ model: b.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger, callbacks: [new Scheduler({ lr: cosineAnnealingLR({ baseLr: 0.1, tMax: 12 }) })] });
    restoreRun(tb, snap);
    await tb.fit({ epochs: 3, train: b.data(8, 5) });
    expect(warnings).toEqual([]);
    for (const fx of [a, b]) fx.dispose();
  });

  it("bad saved state is a typed error naming the key, before any step; the model is untouched", async () => {
    const fx = tinyFixture({ samples: 16 });
    const bad = [null, { plateau: { factor: 2, best: null, wait: 0, cooldownCounter: 0 }, baseLr: null }, { plateau: { factor: 0.5, best: "x", wait: -1, cooldownCounter: 0 }, baseLr: 0.1 }, { plateau: {}, baseLr: -1 }, "nope"];
    for (const state of bad) {
      const sched = new Scheduler({ lr: constant(0.1), plateau: { monitor: "loss" } });
      expect(() => sched.loadStateDict(state as never)).toThrow(StateError);
      const before = weightsOf(fx);
      const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [sched], logger: silentLogger });
      if (typeof state !== "object" || state === null) {
        // not even an object: the trainer refuses the whole dict when it is loaded
        expect(() => t.loadStateDict(stateWithPlugins({ "lr-schedule": state as never }))).toThrow(/plugins.lr-schedule: must be a plugin's state dict/);
        continue;
      }
      t.loadStateDict(stateWithPlugins({ "lr-schedule": state as never }));
      await expect(t.fit({ epochs: 1, train: fx.data(8) })).rejects.toThrow(/Scheduler: the saved (plateau )?state is invalid/);
      expect(weightsOf(fx)).toEqual(before);
    }
    fx.dispose();
  });
});

describe("errors before any work", () => {
  it("options: one OptionsError naming every problem", () => {
    try {
      new Scheduler({ lr: ((t: number) => t) as never, interval: "batch" as "step", plateau: { factor: 1.5, patience: -1, monitor: "score" }, extra: 1 } as never);
      expect.fail("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(OptionsError);
      const msg = (e as Error).message;
      expect(msg).toMatch(/lr: must be a schedule made by this package/);
      expect(msg).toMatch(/interval: must be "step"/);
      expect(msg).toMatch(/plateau.factor: must be in \(0, 1\)/);
      expect(msg).toMatch(/plateau.patience: must be an integer >= 0/);
      expect(msg).toMatch(/plateau.mode: "auto" cannot tell whether "score" should go down or up/);
      expect(msg).toMatch(/unknown option "extra"/);
    }
    expect(() => new Scheduler({})).toThrow(/give at least one of lr, momentum or plateau/);
  });

  it("a momentum schedule on an optimizer without momentum fails in beforeFit, before any step", async () => {
    const fx = tinyFixture({ samples: 8 });
    const before = weightsOf(fx);
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [new Scheduler({ momentum: constant(0.9) })], logger: silentLogger });
    await expect(t.fit({ epochs: 1, train: fx.data(4) })).rejects.toThrow(HyperparameterError);
    await expect(t.fit({ epochs: 1, train: fx.data(4) })).rejects.toThrow(/a momentum schedule needs an optimizer with momentum or beta1 .* SGD has neither/);
    expect(weightsOf(fx)).toEqual(before);
    fx.dispose();
  });

  it("a schedule that gives a value the optimizer cannot take anywhere in the planned run fails before the first step", async () => {
    const fx = tinyFixture({ samples: 16 });
    const before = weightsOf(fx);
    const rising = linearLR({ baseLr: 0.9, startFactor: 0.5, endFactor: 1, totalIters: 4 }); // fine as an lr...
    const beta1 = stepLR({ baseLr: 0.9, stepSize: 5, gamma: 1.2 }); // ...but beta1 reaches 1.08 at step 5
    const t = new Trainer({ model: fx.model, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", callbacks: [new Scheduler({ lr: rising, momentum: beta1 })], logger: silentLogger });
    const err = await t.fit({ epochs: 3, train: fx.data(8) }).catch((e: unknown) => e);
    expect((err as FitloopError).code).toBe("INVALID_SCHEDULE_VALUE");
    expect((err as Error).message).toMatch(/the momentum schedule stepLR\(baseLr=0.9, stepSize=5, gamma=1.2\) gives 1.08\d* at step 5, before this run's end \(step 6\); beta1 must be in \[0, 1\)/);
    expect(weightsOf(fx)).toEqual(before);
    fx.dispose();
  });

  it("a schedule that ends before the run is a warning naming the value it holds", async () => {
    const fx = tinyFixture({ samples: 16 });
    const warnings: string[] = [];
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [new Scheduler({ lr: oneCycleLR({ maxLr: 0.1, totalSteps: 4, cycleMomentum: false }).lr })], logger: { ...silentLogger, warn: (m: string) => void warnings.push(m) } });
    await t.fit({ epochs: 3, train: fx.data(8) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/is defined over 4 steps but this run goes to step 6; it holds 4e-7 after that/);
    fx.dispose();
  });
});

describe("no tensor leaks", () => {
  it("on success, with a throw in every hook of another plugin, on cancel, and with bad state (SGD and Momentum re-make their cached scalars)", async () => {
    for (const make of [() => tf.train.sgd(0.1), () => tf.train.momentum(0.1, 0.9), () => tf.train.adam(0.01)]) {
      const fx = tinyFixture({ samples: 16 });
      const opt = make();
      const cycle = oneCycleLR({ maxLr: 0.1, totalSteps: 8, cycleMomentum: opt.getClassName() !== "SGD" });
      const plugin = () => new Scheduler({ lr: cycle.lr, ...(cycle.momentum ? { momentum: cycle.momentum } : {}), plateau: { monitor: "loss", patience: 0 } });
      const fitWith = (extra: Callback[]) => new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [plugin(), ...extra], logger: silentLogger }).fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) });
      await expectNoLeaks(() => fitWith([]));
      for (const { plugin: failing } of failingPlugins()) await expectNoLeaks(() => fitWith([failing]).catch(() => undefined), { warmup: 1, iterations: 2 });
      const badState = () => {
        const t = new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [plugin()], logger: silentLogger });
        t.loadStateDict(stateWithPlugins({ "lr-schedule": { bad: true } }));
        return t.fit({ epochs: 1, train: fx.data(8) }).catch(() => undefined);
      };
      await expectNoLeaks(badState);
      fx.dispose();
    }
  });
});
