import { checkMonitorPossible, FitloopError, HyperparameterError, monitorValue, ORDER, parseOptions, resolveMonitorMode, StateError, type Callback, type HookContext, type StateDict } from "@fitloop/core";
import { z } from "zod";
import { applyPlateau, initialPlateauState, parsePlateauState, plateauSchema, plateauStateDict, plateauUpdate, type PlateauOptions, type PlateauState, type ResolvedPlateauOptions } from "./plateau.js";
import type { Schedule } from "./schedule.js";

const schedule = z.custom<Schedule>((v) => typeof v === "function" && typeof (v as Schedule).description === "string", {
  message: "must be a schedule made by this package (e.g. cosineAnnealingLR({...}), or makeSchedule(description, totalSteps, fn))",
});

const schedulerSchema = z
  .strictObject({
    lr: schedule.optional(),
    momentum: schedule.optional(),
    interval: z.enum(["step", "epoch"], { message: 'must be "step" (the schedule is a function of the optimizer step) or "epoch"' }).default("step"),
    plateau: plateauSchema.optional(),
    name: z.string().min(1, { message: "must be a non-empty string" }).optional(),
    stateKey: z.string().min(1, { message: "must be a non-empty string" }).optional(),
  })
  .superRefine((o, ctx) => {
    if (!o.lr && !o.momentum && !o.plateau) ctx.addIssue({ code: "custom", path: ["lr"], message: "give at least one of lr, momentum or plateau" });
  });

export interface SchedulerOptions {
  /** Learning rate as a function of the position (optimizer step, or epoch with `interval: "epoch"`). */
  lr?: Schedule;
  /** Momentum (Momentum, RMSProp) or beta1 (Adam, Adamax), e.g. `oneCycleLR(...).momentum`. */
  momentum?: Schedule;
  /** `step` (default): `schedule(state.step)` before every step; `epoch`: `schedule(state.epoch)` before every epoch. */
  interval?: "step" | "epoch";
  /**
   * Reduce-on-plateau on top of `lr` (or of the optimizer's learning rate when there is no `lr`):
   * Keras' `ReduceLROnPlateau` rule, checked at the end of every epoch, as a factor on the schedule.
   */
  plateau?: PlateauOptions;
  /** Plugin name (default `Scheduler`). */
  name?: string;
  /** Key of this plugin's state in checkpoints (default `lr-schedule`). */
  stateKey?: string;
}

const LAST = { reduce: "last" } as const;

/** Largest number of positions checked before training (a schedule is cheap, but not free). */
const MAX_CHECKED = 1_000_000;

/**
 * Applies schedules to the optimizer's learning rate and momentum/beta1 through core's
 * hyperparameter adapter, for every tfjs optimizer; the values go into the logs (`lr`,
 * `momentum`). Runs at `ORDER.SCHEDULE`, before anything reads hyperparameters. Only the plateau
 * part has state (`stateDict`): the schedules are functions of the restored step.
 */
export class Scheduler implements Callback {
  readonly name: string;
  readonly order = ORDER.SCHEDULE;
  readonly stateKey: string;
  readonly lr: Schedule | undefined;
  readonly momentum: Schedule | undefined;
  readonly interval: "step" | "epoch";
  readonly plateau: ResolvedPlateauOptions | undefined;
  private plateauState: PlateauState = initialPlateauState();
  /** The learning rate the plateau factor scales when there is no `lr` schedule (the optimizer's, at the first fit). */
  private baseLr: number | undefined;
  private checked = false;

  constructor(options: SchedulerOptions, owner = "Scheduler", defaultStateKey = "lr-schedule") {
    const o = parseOptions(owner, schedulerSchema, options);
    this.name = o.name ?? owner;
    this.stateKey = o.stateKey ?? defaultStateKey;
    this.lr = o.lr;
    this.momentum = o.momentum;
    this.interval = o.interval;
    this.plateau = o.plateau ? { ...o.plateau, direction: resolveMonitorMode(o.plateau.monitor, o.plateau.mode)! } : undefined;
  }

  /** The learning rate this plugin sets at `position` with the current plateau factor (`undefined`: it does not set one). */
  learningRateAt(position: number): number | undefined {
    const base = this.lr ? this.lr(position) : this.baseLr;
    if (base === undefined) return undefined;
    return this.plateau ? applyPlateau(base, this.plateauState.factor, this.plateau.minLr) : base;
  }

  /** The plateau factor so far (1 until the first reduction). */
  get plateauFactor(): number {
    return this.plateauState.factor;
  }

  beforeFit(ctx: HookContext): void {
    if (this.momentum && !ctx.hyper.hasMomentum) {
      throw new HyperparameterError(`${this.name}: a momentum schedule needs an optimizer with momentum or beta1 (momentum, rmsprop, adam, adamax); ${ctx.optimizer.getClassName()} has neither`);
    }
    if (this.plateau) checkMonitorPossible(ctx.state, this.plateau.monitor, this.name);
    if (!ctx.state.resumed) {
      // a new run (Keras' on_train_begin): the plateau starts over from the optimizer's current rate
      this.plateauState = initialPlateauState();
      this.baseLr = this.lr ? undefined : ctx.hyper.learningRate;
    }
    this.checked = false;
    this.apply(ctx, this.position(ctx));
  }

  beforeTrain(ctx: HookContext): void {
    if (!this.checked) this.checkPlannedRun(ctx);
  }

  beforeEpoch(ctx: HookContext): void {
    if (this.interval !== "epoch") return;
    const values = this.apply(ctx, ctx.state.epoch);
    for (const [k, v] of Object.entries(values)) ctx.log(k, v);
  }

  beforeBatch(ctx: HookContext): void {
    if (this.interval !== "step") return;
    const values = this.apply(ctx, ctx.state.step);
    if (values.lr !== undefined) ctx.log("lr", values.lr, LAST);
    if (values.momentum !== undefined) ctx.log("momentum", values.momentum, LAST);
  }

  afterEpoch(ctx: HookContext): void {
    const p = this.plateau;
    if (!p) return;
    const current = monitorValue(ctx.logs, p.monitor, this.name, `at the end of epoch ${ctx.state.epoch}`);
    const { state, reduced } = plateauUpdate(this.plateauState, current, ctx.hyper.learningRate, p);
    this.plateauState = state;
    if (reduced) {
      // the next position's value, set now so the optimizer shows it between epochs too (as Keras)
      const next = this.interval === "step" ? ctx.state.step : ctx.state.epoch + 1;
      const { lr } = this.apply(ctx, next);
      ctx.logger.info(`${this.name}: ${p.monitor} did not improve for ${p.patience} epoch(s); learning rate factor now ${state.factor.toPrecision(4)} (lr ${lr?.toPrecision(4)})`);
    }
  }

  stateDict(): StateDict {
    return { plateau: plateauStateDict(this.plateauState), baseLr: this.baseLr ?? null };
  }

  loadStateDict(state: StateDict): void {
    const r = z.strictObject({ plateau: z.unknown(), baseLr: z.number().min(0).nullable() }).safeParse(state);
    if (!r.success) throw new StateError(`${this.name}: the saved state is invalid: ${r.error.issues.map((i) => `${i.path.join(".") || "(state)"}: ${i.message}`).join("; ")}`);
    const plateau = parsePlateauState(this.name, r.data.plateau);
    this.plateauState = plateau;
    this.baseLr = r.data.baseLr ?? undefined;
  }

  private position(ctx: HookContext): number {
    return this.interval === "step" ? ctx.state.step : ctx.state.epoch;
  }

  /** Sets the values for `position` (on the hot path: once per step); returns what it set, by log name. */
  private apply(ctx: HookContext, position: number): { lr?: number; momentum?: number } {
    const out: { lr?: number; momentum?: number } = {};
    const lr = this.learningRateAt(position);
    let what = "lr";
    try {
      if (lr !== undefined) {
        ctx.hyper.learningRate = lr;
        out.lr = lr;
      }
      if (this.momentum) {
        what = "momentum";
        out.momentum = this.momentum(position);
        ctx.hyper.momentum = out.momentum;
      }
    } catch (e) {
      if (!(e instanceof HyperparameterError)) throw e;
      const schedule = what === "lr" ? this.lr : this.momentum;
      const value = what === "lr" ? lr : out.momentum;
      throw new FitloopError("INVALID_SCHEDULE_VALUE", `${this.name}: the ${what} schedule ${schedule?.description ?? "(plateau)"} gives ${value} at ${this.interval} ${position}, which the optimizer cannot take: ${e.message}`, { cause: e });
    }
    return out;
  }

  /**
   * Before the first step: every value the run will set must be one the optimizer takes, and a
   * schedule that ends before the run is worth a warning (PyTorch's OneCycleLR raises there).
   */
  private checkPlannedRun(ctx: HookContext): void {
    this.checked = true;
    const s = ctx.state;
    // in optimizer updates, not batches: gradient accumulation applies one update per group
    const perEpoch = ctx.updatesPerEpoch;
    // resumed mid-epoch (beforeTrain at batch > 0): the updates this epoch already had are in s.step
    const batches = s.batchesPerEpoch;
    const doneThisEpoch = perEpoch === undefined || batches === undefined || batches === 0 ? 0 : Math.floor((s.batchIndex * perEpoch) / batches);
    const end = this.interval === "epoch" ? s.epochs : perEpoch === undefined ? undefined : s.step - doneThisEpoch + perEpoch * (s.epochs - s.epoch);
    if (end === undefined) return;
    const start = this.position(ctx);
    for (const [what, sch] of [["lr", this.lr], ["momentum", this.momentum]] as const) {
      if (!sch) continue;
      for (let t = start; t < Math.min(end, start + MAX_CHECKED); t++) {
        const v = sch(t);
        const bad = !Number.isFinite(v) || v < 0 || (what === "momentum" && ctx.hyper.momentumName === "beta1" && v >= 1);
        if (bad) throw new FitloopError("INVALID_SCHEDULE_VALUE", `${this.name}: the ${what} schedule ${sch.description} gives ${v} at ${this.interval} ${t}, before this run's end (${this.interval} ${end}); ${what === "momentum" && ctx.hyper.momentumName === "beta1" ? "beta1 must be in [0, 1)" : "values must be finite and >= 0"}`);
      }
      if (sch.totalSteps !== undefined && sch.totalSteps < end) {
        ctx.logger.warn(`${this.name}: the ${what} schedule ${sch.description} is defined over ${sch.totalSteps} ${this.interval}s but this run goes to ${this.interval} ${end}; it holds ${sch(sch.totalSteps - 1)} after that`);
      }
    }
  }
}

/**
 * Keras' `ReduceLROnPlateau` for users who want only that: multiplies the learning rate by `factor`
 * when `monitor` has not improved for `patience` epochs (then waits `cooldown` epochs), never below
 * `minLr`. To combine it with a schedule, use `new Scheduler({ lr, plateau })`.
 */
export class ReduceLROnPlateau extends Scheduler {
  constructor(options: PlateauOptions & { name?: string; stateKey?: string } = {}) {
    const { name, stateKey, ...plateau } = options;
    super({ plateau, ...(name ? { name } : {}), ...(stateKey ? { stateKey } : {}) }, "ReduceLROnPlateau", "reduce-lr-on-plateau");
  }
}
