import { describe, expect, it } from "vitest";
import { OptionsError } from "@fitloop/core";
import { MemoryJournal, OP, Study, TRIAL_STATE, TrialPruned, TunerError, choice, int, logUniform, medianPruner, nanPercentile, studySummary, trialSeed, tune, uniform, type TrialRecord, type WorkerLiveness } from "./index.js";

const space = { lr: logUniform(1e-5, 1e-1), dropout: uniform(0, 0.5, { step: 0.1 }), units: int(32, 256, { step: 32 }), optimizer: choice(["adam", "sgd"]) };
const quadratic = (p: { lr: number; units: number }) => (Math.log10(p.lr) + 3) ** 2 + p.units / 1000;
const memoryStudy = (name = "s") => ({ storage: new MemoryJournal(), name });

describe("tune on a memory journal", () => {
  it("runs `trials` trials, draws every parameter inside the space, records each trial's seed, and is reproducible from the study seed", async () => {
    const seen: unknown[] = [];
    const a = await tune({ study: memoryStudy(), space, trials: 12, seed: 7, objective: (p, t) => (seen.push([p, t.seed]), quadratic(p)) });
    expect(a.ran).toHaveLength(12);
    expect(a.study.trials.map((t) => t.state)).toEqual(Array(12).fill("COMPLETE"));
    for (const t of a.study.trials) {
      const p = t.params;
      expect(p["lr"]).toBeGreaterThanOrEqual(1e-5);
      expect(p["lr"]).toBeLessThan(1e-1);
      expect([0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5]).toContain(p["dropout"]);
      expect((p["units"] as number) % 32).toBe(0);
      expect(["adam", "sgd"]).toContain(p["optimizer"]);
      expect(t.systemAttrs["fitloop:seed"]).toBe(trialSeed(7, t.number));
      expect(t.value).toBe(quadratic(p as { lr: number; units: number }));
    }
    const b = await tune({ study: memoryStudy(), space, trials: 12, seed: 7, objective: quadratic });
    expect(b.study.trials.map((t) => t.params)).toEqual(a.study.trials.map((t) => t.params));
    const c = await tune({ study: memoryStudy(), space, trials: 12, seed: 8, objective: quadratic });
    expect(c.study.trials.map((t) => t.params)).not.toEqual(a.study.trials.map((t) => t.params));
    expect(a.best).toBe(a.study.bestTrial);
    expect(a.bestParams).toEqual(a.best!.params);
    expect(Math.min(...a.study.trials.map((t) => t.value!))).toBe(a.best!.value);
  });

  it("`trials` counts the study's finished trials: a second call with a higher count runs only the rest; a new handle sees everything", async () => {
    const storage = new MemoryJournal();
    await tune({ study: { storage, name: "s" }, space, trials: 3, objective: quadratic });
    const again = await tune({ study: { storage, name: "s" }, space, trials: 5, objective: quadratic });
    expect(again.ran.map((t) => t.number)).toEqual([3, 4]);
    const none = await tune({ study: { storage, name: "s" }, space, trials: 5, objective: () => expect.unreachable() });
    expect(none.ran).toHaveLength(0);
    const reopened = await Study.open({ storage, name: "s" });
    expect(reopened.trials.map((t) => t.number)).toEqual([0, 1, 2, 3, 4]);
  });

  it("an enqueued trial runs first with its parameters; those it leaves out are sampled", async () => {
    const storage = new MemoryJournal();
    const study = await Study.open({ storage, name: "s", direction: "minimize" });
    await study.enqueue({ lr: 0.01, optimizer: "sgd" }, { userAttrs: { memo: "from a person" } });
    const r = await tune({ study, space, trials: 2, objective: quadratic });
    const first = r.study.trials[0]!;
    expect(first.params).toMatchObject({ lr: 0.01, optimizer: "sgd" });
    expect(first.params["units"]).toBeTypeOf("number");
    expect(first.userAttrs).toEqual({ memo: "from a person" });
    expect(first.state).toBe("COMPLETE");
  });

  it("failures: a throw fails the trial and is rethrown (or not, with catchErrors); NaN fails; a timeout fails, aborts trial.signal and moves on", async () => {
    const boom = tune({ study: memoryStudy(), space, trials: 3, objective: () => { throw new RangeError("bad units"); } });
    await expect(boom).rejects.toThrow("bad units");
    let signal: AbortSignal | undefined;
    const r = await tune({
      study: memoryStudy(),
      space,
      trials: 4,
      catchErrors: true,
      timeoutMs: 100,
      objective: async (p, t) => {
        if (t.number === 0) throw new RangeError("bad units");
        if (t.number === 1) return Number.NaN;
        if (t.number === 2) {
          signal = t.signal;
          await new Promise((resolve) => t.signal.addEventListener("abort", resolve));
          await t.report(1, 0); // after the trial ended: dropped
          return 1;
        }
        return quadratic(p);
      },
    });
    const [a, b, c, d] = r.study.trials as TrialRecord[];
    expect(a!.state).toBe("FAIL");
    expect(a!.userAttrs["fitloop:fail_reason"]).toBe("RangeError: bad units");
    expect(b!.state).toBe("FAIL");
    expect(b!.userAttrs["fitloop:fail_reason"]).toBe("the objective returned NaN");
    expect(c!.state).toBe("FAIL");
    expect(c!.userAttrs["fitloop:fail_reason"]).toBe("timed out after 100 ms");
    expect(c!.intermediateValues).toEqual({});
    expect(signal!.aborted).toBe(true);
    expect(d!.state).toBe("COMPLETE");
  });

  it("pruning: TrialPruned or trial.prune() ends a trial PRUNED with its last intermediate value (Optuna's rule)", async () => {
    const r = await tune({
      study: memoryStudy(),
      space,
      trials: 2,
      objective: async (_p, t) => {
        await t.report(5, 0);
        await t.report(4, 1);
        if (t.number === 0) throw new TrialPruned("too slow");
        t.prune("by hand");
        return 123;
      },
    });
    expect(r.study.trials.map((t) => [t.state, t.value, t.userAttrs["fitloop:prune_reason"]])).toEqual([
      ["PRUNED", 4, "too slow"],
      ["PRUNED", 4, "by hand"],
    ]);
  });

  it("median pruning stops clearly bad trials once 5 trials are complete, and never the good ones", async () => {
    // learning curves: value(step) = quality + 1 / (step + 1); bad trials have quality 10, good ones 0..1
    const quality = (lr: number) => (lr > 1e-2 ? 10 : Math.abs(Math.log10(lr) + 3.5) / 2.5);
    const r = await tune({
      study: memoryStudy(),
      space: { lr: logUniform(1e-5, 1e-1) },
      trials: 30,
      seed: 3,
      pruner: medianPruner({ startupTrials: 5, warmupSteps: 2 }),
      objective: async ({ lr }, t) => {
        for (let step = 0; step < 10; step++) {
          await t.report(quality(lr) + 1 / (step + 1), step);
          if (await t.shouldPrune()) throw new TrialPruned();
        }
        return quality(lr) + 0.1;
      },
    });
    const trials = r.study.trials;
    const bad = trials.filter((t) => (t.params["lr"] as number) > 1e-2);
    expect(bad.length).toBeGreaterThanOrEqual(3);
    for (const t of bad.filter((t) => t.number >= 5)) {
      expect(t.state, `trial ${t.number}`).toBe("PRUNED");
      expect(Object.keys(t.intermediateValues)).toEqual(["0", "1", "2"]); // pruned right after the warm-up
    }
    // the curves are parallel, so the rule reduces to: pruned exactly when worse than the median of the trials completed before it
    const q = (t: TrialRecord) => quality(t.params["lr"] as number);
    for (const t of trials.slice(5)) {
      const before = trials.filter((o) => o.number < t.number && o.state === "COMPLETE").map(q);
      expect(t.state === "PRUNED", `trial ${t.number}`).toBe(q(t) > nanPercentile(before, 50));
    }
    expect(trials.filter((t) => t.state === "PRUNED").length).toBeGreaterThan(10);
    expect(r.best!.params["lr"]).toBeGreaterThan(1e-4);
    expect(r.best!.params["lr"]).toBeLessThan(1e-3);
  });

  it("refuses what it cannot do, by name: bad options, a space unlike the study's trials, another direction", async () => {
    await expect(tune({ study: memoryStudy(), space, trials: 0, objective: quadratic })).rejects.toThrow(OptionsError);
    // @ts-expect-error not a distribution
    await expect(tune({ study: memoryStudy(), space: { lr: [1e-3, 1e-2] }, trials: 1, objective: () => 1 })).rejects.toThrow(/space.lr: must be logUniform/);
    const storage = new MemoryJournal();
    await tune({ study: { storage, name: "s" }, space, trials: 1, objective: quadratic });
    const err = await tune({ study: { storage, name: "s" }, space: { ...space, lr: uniform(1e-5, 1e-1) }, trials: 2, objective: quadratic }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TunerError);
    expect((err as TunerError).code).toBe("SPACE_MISMATCH");
    expect((err as Error).message).toMatch(/"lr".*log was true, now false/);
    await expect(tune({ study: { storage, name: "s" }, space, direction: "maximize", trials: 2, objective: quadratic })).rejects.toThrow(/direction "minimize", not "maximize"/);
    await expect(Study.open({ storage, name: "nope", create: false })).rejects.toThrow(/no study named "nope".*"s"/);
    expect(() => logUniform(0, 1)).toThrow(/low: must be > 0 on a log scale/);
    expect(() => int(1, 10, { step: 2 })).toThrow(/whole number of steps/);
    expect(() => int(0, 10, { log: true })).toThrow(/low: must be >= 1 on a log scale/);
    expect(() => choice([])).toThrow(/at least one choice/);
  });

  it("a RUNNING trial of a dead worker is failed and queued again with its parameters and seed; the failure does not count", async () => {
    const storage = new MemoryJournal();
    const study = await Study.open({ storage, name: "s" });
    // a worker on host "h" (pid 41) claimed trial 0 and died
    const dead = { id: "w-dead", host: "h", pid: 41 };
    await storage.append([
      { op_code: OP.CREATE_TRIAL, worker_id: "w-dead", study_id: study.id, datetime_start: "2024-01-01T00:00:00.000000", state: TRIAL_STATE.RUNNING, distributions: { lr: '{"name": "FloatDistribution", "attributes": {"step": null, "low": 1e-05, "high": 0.1, "log": true}}' }, params: { lr: 0.003 }, user_attrs: {}, system_attrs: { "fitloop:seed": 99, "fitloop:worker": dead }, intermediate_values: {} },
    ]);
    const liveness: WorkerLiveness = { self: { host: "h", pid: 42 }, isAlive: (w) => (w.host === "h" ? w.pid !== 41 : undefined) };
    const calls: { lr: number; seed: number }[] = [];
    const r = await tune({ study, space: { lr: logUniform(1e-5, 1e-1) }, trials: 3, liveness, objective: ({ lr }, t) => (calls.push({ lr, seed: t.seed }), lr) });
    const [t0, t1] = r.study.trials;
    expect(t0!.state).toBe("FAIL");
    expect(t0!.userAttrs["fitloop:fail_reason"]).toMatch(/pid 41 on h\) died/);
    expect(t1!.systemAttrs).toMatchObject({ failed_trial: 0, retry_history: [0], "fitloop:seed": 99 });
    expect(calls[0]).toEqual({ lr: 0.003, seed: 99 });
    expect(r.study.trials.filter((t) => t.state === "COMPLETE")).toHaveLength(3);
    expect(r.study.trials).toHaveLength(4);
    expect(studySummary(r.study)).toMatch(/retry of #0/);
  });
});
