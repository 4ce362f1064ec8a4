import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, ORDER, StateError, Trainer, silentLogger, type Callback, type Logger, type StateDict } from "@fitloop/core";
import { countDeviceReads, expectNoLeaks, failingPlugins, stateWithPlugins, tinyFixture } from "@fitloop/core/testing";
import { GradClip, NonFiniteGradientError, globalNorm } from "./index.js";

type Fixture = ReturnType<typeof tinyFixture>;
const weightsOf = (fx: Fixture) => fx.model.getWeights().map((w) => Array.from(w.dataSync()));
const fit = (fx: Fixture, callbacks: Callback[], opts: { epochs?: number; batch?: number; logger?: Logger; optimizer?: tf.Optimizer } = {}) =>
  new Trainer({ model: fx.model, optimizer: opts.optimizer ?? tf.train.sgd(1), loss: "sparseCategoricalCrossentropy", callbacks, logger: opts.logger ?? silentLogger }).fit({ epochs: opts.epochs ?? 1, train: fx.data(opts.batch ?? 16) });

/** Poisons the gradients of the given steps with NaN (runs before clipping). */
const poison = (steps: number[]): Callback => ({
  name: "Poison",
  order: ORDER.DEFAULT,
  afterGradients: (ctx) => {
    if (!steps.includes(ctx.state.globalBatch)) return;
    const out: tf.NamedTensorMap = {};
    for (const [k, g] of Object.entries(ctx.grads!)) out[k] = tf.mul(g, Number.NaN);
    return out;
  },
});

/** Records the global norm of the gradients the optimizer will apply (after clipping). */
const applied = (): Callback & { norms: number[] } => {
  const norms: number[] = [];
  return { name: "Applied", order: ORDER.GUARD, norms, beforeStep: (ctx) => void norms.push(tf.tidy(() => globalNorm(ctx.grads!).dataSync()[0]!)) };
};

describe("GradClip in training", () => {
  it("against the unclipped update: the same step scaled by maxNorm / norm (SGD), and bit-identical when the limit is not reached", async () => {
    const w0 = weightsOf(tinyFixture({ samples: 16 }));
    const free = tinyFixture({ samples: 16 });
    await fit(free, []); // one full-batch SGD step at lr 1
    const delta = weightsOf(free).map((w, i) => w.map((v, j) => v - w0[i]![j]!));
    const norm = Math.sqrt(delta.flat().reduce((s, d) => s + d * d, 0)); // = lr * ||g||

    const loose = tinyFixture({ samples: 16 });
    const looseRun = await fit(loose, [new GradClip({ max: norm * 2 })]);
    expect(weightsOf(loose)).toEqual(weightsOf(free));
    expect(looseRun.state.batchLogs).toMatchObject({ grad_clipped: 0 });
    expect(looseRun.state.batchLogs["grad_norm"]).toBeCloseTo(norm, 4);

    const tight = tinyFixture({ samples: 16 });
    const max = norm / 4;
    const tightRun = await fit(tight, [new GradClip({ max })]);
    const clippedDelta = weightsOf(tight).map((w, i) => w.map((v, j) => v - w0[i]![j]!));
    clippedDelta.flat().forEach((d, i) => expect(d).toBeCloseTo(delta.flat()[i]! / 4, 6));
    expect(tightRun.state.batchLogs).toMatchObject({ grad_clipped: 1 });
    expect(tightRun.state.batchLogs["grad_norm"]).toBeCloseTo(norm, 4); // logged before clipping
    for (const fx of [free, loose, tight]) fx.dispose();
  });

  it("every mode bounds what the optimizer applies; the epoch logs say on which fraction of steps clipping engaged", async () => {
    for (const by of ["globalNorm", "norm", "value", "adaptive"] as const) {
      const fx = tinyFixture({ samples: 32 });
      const probe = applied();
      const clip = new GradClip({ by, max: by === "adaptive" ? 0.05 : 0.2 });
      const r = await fit(fx, [clip, probe], { epochs: 3, batch: 8, optimizer: tf.train.adam(0.05) });
      if (by === "globalNorm") probe.norms.forEach((n) => expect(n).toBeLessThanOrEqual(0.2 * (1 + 1e-6)));
      const fraction = r.state.history.map((h) => h.logs["grad_clipped"]!);
      fraction.forEach((f) => expect(f, by).toBeGreaterThanOrEqual(0));
      fraction.forEach((f) => expect(f, by).toBeLessThanOrEqual(1));
      expect(fraction.some((f) => f > 0), `${by} engaged at some point`).toBe(true);
      expect(r.state.history[0]!.logs["grad_nonfinite"]).toBe(0);
      fx.dispose();
    }
  });

  it("adds no device read: one per step with or without it", async () => {
    const fx = tinyFixture({ samples: 32 });
    const perStep: number[] = [];
    const reads = countDeviceReads();
    let start = 0;
    const bracket: Callback = { name: "Bracket", order: -1e9, beforeBatch: () => void (start = reads.count), afterBatch: () => void perStep.push(reads.count - start) };
    await fit(fx, [bracket], { batch: 8 });
    await fit(fx, [bracket, new GradClip({ max: 0.1 })], { batch: 8 });
    reads.stop();
    expect(perStep).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    fx.dispose();
  });

  it('nonFinite "skip" (default): the step is skipped, counted and warned about; training goes on', async () => {
    const fx = tinyFixture({ samples: 32 });
    const warnings: string[] = [];
    const clip = new GradClip({ max: 1 });
    const frozen: number[][][] = [];
    const watch: Callback = { name: "Watch", afterBatch: (ctx) => void (ctx.state.globalBatch === 1 && frozen.push(weightsOf(fx))) };
    const before: Callback = { name: "Before", beforeBatch: (ctx) => void (ctx.state.globalBatch === 1 && frozen.push(weightsOf(fx))) };
    const r = await fit(fx, [clip, poison([1]), watch, before], { epochs: 2, batch: 8, logger: { ...silentLogger, warn: (m: string) => void warnings.push(m) } });
    expect(frozen[0]).toEqual(frozen[1]); // the poisoned step changed nothing
    expect(r.outcome.status).toBe("completed");
    expect(r.state.step).toBe(7); // 8 batches, one skipped
    expect(r.state.history.map((h) => h.logs["grad_nonfinite"])).toEqual([1, 0]);
    expect(clip.nonFiniteSteps).toBe(1);
    expect(warnings).toEqual([expect.stringMatching(/GradClip: skipped step 1 \(epoch 0, batch 1\): the gradient norm is NaN \(1 skipped so far\)/)]);
    expect(weightsOf(fx).flat().every(Number.isFinite)).toBe(true);
    fx.dispose();
  });

  it('nonFinite "stop": the run stops after that batch with the step and value, the bad update not applied', async () => {
    const fx = tinyFixture({ samples: 32 });
    let good: number[][] = [];
    const keep: Callback = { name: "Keep", beforeBatch: (ctx) => void (ctx.state.globalBatch === 2 && (good = weightsOf(fx))) };
    const r = await fit(fx, [new GradClip({ max: 1, nonFinite: "stop" }), poison([2]), keep], { epochs: 3, batch: 8 });
    expect(r.outcome.status).toBe("stopped");
    expect(r.outcome.stopRequests[0]).toMatchObject({ by: "GradClip", reason: "the gradient norm is NaN at step 2 (epoch 0, batch 2); the step was not applied", details: { step: 2, value: "NaN" } });
    expect(weightsOf(fx)).toEqual(good);
    fx.dispose();
  });

  it('nonFinite "throw": a typed error naming the step; the weights are the last good ones', async () => {
    const fx = tinyFixture({ samples: 32 });
    let good: number[][] = [];
    const keep: Callback = { name: "Keep", beforeBatch: (ctx) => void (ctx.state.globalBatch === 3 && (good = weightsOf(fx))) };
    const err = await fit(fx, [new GradClip({ max: 1, nonFinite: "throw" }), poison([3]), keep], { epochs: 1, batch: 8 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteGradientError);
    expect(err).toMatchObject({ code: "NON_FINITE_GRADIENTS", step: 3 });
    expect((err as Error).message).toMatch(/GradClip: the gradient norm is NaN at step 3 \(epoch 0, batch 3\); the step was not applied/);
    expect(weightsOf(fx)).toEqual(good);
    fx.dispose();
  });

  it("adaptive clipping can leave named layers alone (NFNets do not clip the final layer), selected by layer not by variable name", async () => {
    const other = tinyFixture({ samples: 16 }); // a second model: tfjs renames its variables (dense_Dense3/kernel_1 ...)
    const fx = tinyFixture({ samples: 16 });
    const last = fx.model.layers[fx.model.layers.length - 1]!;
    const lastVars = new Set(last.trainableWeights.map((w) => (w.read() as tf.Variable).name));
    const seen: { name: string; same: boolean }[] = [];
    let raw: tf.NamedTensorMap = {};
    const grab: Callback = { name: "Grab", order: ORDER.DEFAULT, afterGradients: (ctx) => void (raw = { ...ctx.grads! }) };
    const check: Callback = { name: "Check", order: ORDER.GUARD, afterGradients: (ctx) => void Object.entries(ctx.grads!).forEach(([n, g]) => seen.push({ name: n, same: g === raw[n] })) };
    await fit(fx, [new GradClip({ by: "adaptive", max: 1e-4, exclude: [last.name] }), grab, check]);
    expect(seen.filter((s) => s.same).map((s) => s.name).sort()).toEqual([...lastVars].sort());
    expect(seen.filter((s) => !s.same)).toHaveLength(2); // the first layer's kernel and bias were clipped
    const bad = await fit(fx, [new GradClip({ by: "adaptive", max: 0.01, exclude: ["nope"] })]).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OptionsError);
    expect((bad as Error).message).toMatch(/exclude: no layer named "nope"; the model's layers: /);
    other.dispose();
    fx.dispose();
  });
});

describe("steps another plugin asked to skip (ctx.skipRequested: gradient accumulation's micro-batches)", () => {
  /** Skips the chosen global batches (before clipping), and remembers the gradient tensors it saw. */
  const skipper = (batches: number[], order: number = ORDER.DEFAULT) => {
    const seen = new Map<number, tf.Tensor[]>();
    const cb: Callback = {
      name: "Skipper",
      order,
      afterGradients: (ctx) => {
        seen.set(ctx.state.globalBatch, Object.values(ctx.grads!));
        if (batches.includes(ctx.state.globalBatch)) ctx.skipStep("test skip");
      },
    };
    return { cb, seen };
  };

  it("every mode leaves their gradients alone and logs nothing for them; the other steps are clipped and logged as before", async () => {
    for (const by of ["globalNorm", "norm", "value", "adaptive"] as const) {
      const fx = tinyFixture({ samples: 32 });
      const { cb, seen } = skipper([0, 2]);
      const after = new Map<number, tf.Tensor[]>();
      const probe: Callback = { name: "Probe", order: ORDER.GUARD, afterGradients: (ctx) => void after.set(ctx.state.globalBatch, Object.values(ctx.grads!)) };
      const perBatch: Record<string, number | undefined>[] = [];
      const logs: Callback = { name: "Logs", afterBatch: (ctx) => void perBatch.push({ norm: ctx.logs["grad_norm"], clipped: ctx.logs["grad_clipped"], nonfinite: ctx.logs["grad_nonfinite"] }) };
      const r = await fit(fx, [new GradClip({ by, max: by === "adaptive" ? 1e-4 : 1e-3 }), cb, probe, logs], { batch: 8 });
      for (const b of [0, 2]) expect(after.get(b), `${by} batch ${b}`).toEqual(seen.get(b)); // the same tensors: not clipped
      for (const b of [1, 3]) expect(after.get(b)![0], `${by} batch ${b}`).not.toBe(seen.get(b)![0]); // clipped
      expect(perBatch.map((l) => l.norm === undefined), by).toEqual([true, false, true, false]);
      expect(perBatch.map((l) => l.clipped), by).toEqual([undefined, 1, undefined, 1]);
      expect(perBatch.map((l) => l.nonfinite), by).toEqual([undefined, 0, undefined, 0]);
      expect(r.state.history[0]!.logs["grad_norm"], by).toBeCloseTo((perBatch[1]!.norm! + perBatch[3]!.norm!) / 2, 5); // the mean over measured steps
      expect(r.state.step).toBe(2);
      fx.dispose();
    }
  });

  it("non-finite gradients on a skipped step are neither counted nor warned about (the update was not going to happen)", async () => {
    const fx = tinyFixture({ samples: 32 });
    const warnings: string[] = [];
    const clip = new GradClip({ max: 1 });
    const r = await fit(fx, [clip, poison([1]), skipper([1]).cb], { batch: 8, logger: { ...silentLogger, warn: (m: string) => void warnings.push(m) } });
    expect(clip.nonFiniteSteps).toBe(0);
    expect(warnings).toEqual([]);
    expect(r.state.history[0]!.logs["grad_nonfinite"]).toBe(0);
    expect(weightsOf(fx).flat().every(Number.isFinite)).toBe(true);
    fx.dispose();
  });

  it("a skip asked for after clipping (a guard) does not change what clipping does", async () => {
    const fx = tinyFixture({ samples: 16 });
    const { cb } = skipper([0], ORDER.GUARD + 1);
    const r = await fit(fx, [new GradClip({ max: 1e-3 }), cb], { batch: 8 });
    expect(r.state.step).toBe(1);
    expect(r.state.history[0]!.logs["grad_clipped"]).toBe(1); // measured on both batches
    fx.dispose();
  });
});

describe("options and state", () => {
  it("one OptionsError naming every bad option", () => {
    try {
      new GradClip({ by: "l1" as "norm", max: -1, nonFinite: "ignore" as "skip", exclude: ["x"], typo: 1 } as never);
      expect.fail("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(OptionsError);
      const msg = (e as Error).message;
      expect(msg).toMatch(/by: must be "globalNorm"/);
      expect(msg).toMatch(/max: must be > 0/);
      expect(msg).toMatch(/nonFinite: must be "skip"/);
      expect(msg).toMatch(/unknown option "typo"/);
    }
    expect(() => new GradClip({ max: 1, exclude: ["dense"] })).toThrow(/exclude: applies to by: "adaptive" only/);
    expect(() => new GradClip({} as never)).toThrow(/max: must be a finite number > 0/);
    expect(() => new GradClip({ max: Number.POSITIVE_INFINITY })).toThrow(/max/);
  });

  it("the count of non-finite steps goes through stateDict; bad state is a typed error before any step", async () => {
    const clip = new GradClip({ max: 1 });
    clip.loadStateDict({ nonFiniteSteps: 4 });
    expect(clip.stateDict()).toEqual({ nonFiniteSteps: 4 });
    for (const bad of [{ nonFiniteSteps: -1 }, { nonFiniteSteps: 1.5 }, {}, { nonFiniteSteps: 1, x: 2 }] as StateDict[]) expect(() => clip.loadStateDict(bad)).toThrow(StateError);
    const fx = tinyFixture({ samples: 16 });
    const before = weightsOf(fx);
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(1), loss: "sparseCategoricalCrossentropy", callbacks: [new GradClip({ max: 1 })], logger: silentLogger });
    t.loadStateDict(stateWithPlugins({ "grad-clip": { nonFiniteSteps: "many" } as never }));
    await expect(t.fit({ epochs: 1, train: fx.data(16) })).rejects.toThrow(/GradClip: the saved state is invalid: nonFiniteSteps/);
    expect(weightsOf(fx)).toEqual(before);
    fx.dispose();
  });
});

describe("no tensor leaks", () => {
  it("every mode: on success, skipping a poisoned step, with a throw in every hook of another plugin, on cancel, with bad state", async () => {
    for (const by of ["globalNorm", "norm", "value", "adaptive"] as const) {
      const fx = tinyFixture({ samples: 16 });
      const opt = tf.train.adam(0.01);
      const run = (extra: Callback[]) =>
        new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [new GradClip({ by, max: 0.01 }), ...extra], logger: silentLogger }).fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) });
      await expectNoLeaks(() => run([]));
      await expectNoLeaks(() => run([poison([1, 2])]));
      for (const { plugin: failing } of failingPlugins()) await expectNoLeaks(() => run([failing]).catch(() => undefined), { warmup: 1, iterations: 2 });
      const badState = () => {
        const t = new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [new GradClip({ by, max: 1 })], logger: silentLogger });
        t.loadStateDict(stateWithPlugins({ "grad-clip": { bad: 1 } }));
        return t.fit({ epochs: 1, train: fx.data(8) }).catch(() => undefined);
      };
      await expectNoLeaks(badState);
      fx.dispose();
    }
  });
});
