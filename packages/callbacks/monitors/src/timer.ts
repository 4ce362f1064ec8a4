import { ORDER, parseOptions, type BatchContext, type Callback, type HookContext } from "@fitloop/core";
import { z } from "zod";
import { remainingWork, StepClock } from "./clock.js";

const timingSchema = z.strictObject({
  now: z.custom<() => number>((v) => typeof v === "function", { message: "must be a function returning milliseconds, like () => performance.now()" }).optional(),
  name: z.string().min(1, { message: "must be a non-empty string" }).optional(),
});

export interface TimingOptions {
  /** The clock, in milliseconds (default `performance.now()`); inject one for deterministic tests. */
  now?: () => number;
  /** Plugin name (default the class name). */
  name?: string;
}

const LAST = { reduce: "last" } as const;
const systemNow = (): number => performance.now();

/**
 * Both timing plugins run at `ORDER.FIRST`: `before*` hooks run in order and `after*` hooks in
 * reverse, so the first plugin's epoch starts before anyone else's hooks and its `afterStep` runs
 * after everyone else's: what it measures includes every other plugin. It logs in `afterStep`, the
 * last batch hook before `afterBatch`, so sinks reading the batch's logs in `afterBatch` (or on the
 * observer bus) see the values.
 */
abstract class TimingPlugin implements Callback {
  readonly name: string;
  readonly order = ORDER.FIRST;
  protected readonly clock: StepClock;

  constructor(owner: string, options: TimingOptions) {
    const o = parseOptions(owner, timingSchema, options);
    this.name = o.name ?? owner;
    this.clock = new StepClock(o.now ?? systemNow);
  }

  beforeFit(): void {
    this.clock.reset();
  }

  beforeEpoch(): void {
    this.clock.startEpoch();
  }

  afterValidate(_ctx: HookContext): void {
    this.clock.validated();
  }
}

/**
 * Wall time per training batch (`step_time`, seconds; epoch value: the mean), per epoch
 * (`epoch_time`, seconds, from `beforeEpoch` to the end of validation) and the time left in the fit
 * (`eta`, seconds, when the number of batches per epoch is known). No device read: `performance.now()`
 * and a few additions per step.
 */
export class Timer extends TimingPlugin {
  /** The current epoch's `epoch_time` was logged (else `afterEpoch` does it: an epoch cut by CancelEpoch). */
  private epochDone = false;

  constructor(options: TimingOptions = {}) {
    super("Timer", options);
  }

  override beforeEpoch(): void {
    super.beforeEpoch();
    this.epochDone = false;
  }

  afterStep(ctx: BatchContext): void {
    const ms = this.clock.step(ctx.batchSize);
    ctx.log("step_time", ms / 1000);
    const s = ctx.state;
    const left = remainingWork({ epoch: s.epoch, epochs: s.epochs, batchesDone: s.batchIndex + 1, batchesPerEpoch: s.batchesPerEpoch, hasValidation: s.hasValidation, stopping: ctx.stopRequested, validated: false });
    if (left) ctx.log("eta", this.clock.secondsFor(left.batches, left.validations), LAST);
  }

  afterTrain(ctx: HookContext): void {
    if (!ctx.state.hasValidation) this.endEpoch(ctx);
  }

  override afterValidate(ctx: HookContext): void {
    super.afterValidate(ctx);
    this.endEpoch(ctx);
  }

  afterEpoch(ctx: HookContext): void {
    if (!this.epochDone) this.endEpoch(ctx);
  }

  /** Epoch values, logged before `afterEpoch` so every plugin's `afterEpoch` sees them. */
  private endEpoch(ctx: HookContext): void {
    this.epochDone = true;
    const s = ctx.state;
    ctx.log("epoch_time", this.clock.epochSeconds());
    const left = remainingWork({ epoch: s.epoch, epochs: s.epochs, batchesDone: s.batchesPerEpoch ?? 0, batchesPerEpoch: s.batchesPerEpoch, hasValidation: s.hasValidation, stopping: ctx.stopRequested, validated: true });
    // overrides the last batch's value: the epoch's `eta` is the time left once the epoch is over
    if (left) ctx.log("eta", this.clock.secondsFor(left.batches, left.validations));
  }
}

/**
 * Training throughput, `samples_per_sec`: samples over wall time since the epoch's training began,
 * logged after every step; its epoch value is the last one, the whole epoch's throughput (a mean of
 * per-batch rates would weigh slow batches too little).
 */
export class Throughput extends TimingPlugin {
  constructor(options: TimingOptions = {}) {
    super("Throughput", options);
  }

  /** Throughput is of training only: what ran since the last step (validation, checkpoints) is left out. */
  beforeTrain(): void {
    this.clock.restart();
  }

  afterStep(ctx: BatchContext): void {
    this.clock.step(ctx.batchSize);
    ctx.log("samples_per_sec", this.clock.samplesPerSecond(), LAST);
  }
}
