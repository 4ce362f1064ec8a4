import { FitloopError, ORDER, parseOptions, type BatchContext, type Callback, type FitEndContext, type HookContext } from "@fitloop/core";
import { confidence, type Confidence, type ConfidenceThresholds } from "./confidence.js";
import { SmoothedLoss, sweepLr } from "./curve.js";
import { rangeTestSchema, type RangeTestOptions, type ResolvedSweep } from "./options.js";
import { suggestAll, type SuggestionName, type Suggestions } from "./suggest.js";

/**
 * Why a sweep ended: it did all its steps (`completed`), the smoothed loss passed
 * `divergenceFactor` times the best (`diverged`), a loss was NaN or infinite (`non-finite`),
 * another plugin stopped or cancelled the run (`stopped`), the run ended before the sweep did
 * (`data-ended`: too few epochs), or it failed (`failed`).
 */
export type StopReason = "completed" | "diverged" | "non-finite" | "stopped" | "data-ended" | "failed";

/** The recorded sweep: one point per step. */
export interface Curve {
  /** The learning rate each step ran with. */
  readonly lr: readonly number[];
  /** The step's training loss (the batch's loss before its update, as fastai records it). */
  readonly loss: readonly number[];
  /** The bias-corrected moving average of the losses so far (what fastai plots and suggests from). */
  readonly smoothed: readonly number[];
}

export interface RangeTestResult {
  readonly curve: Curve;
  /** fastai's four suggestions on the smoothed curve (indices into `curve`); `undefined` when there are too few points. */
  readonly suggestions: Suggestions;
  /** The suggestion asked for (`valley` by default); `undefined` when it cannot be computed. */
  readonly lr: number | undefined;
  readonly confidence: Confidence;
  readonly stopReason: StopReason;
  /** What ended it, in words. */
  readonly stopMessage: string;
  /** Steps recorded (`curve.lr.length`). */
  readonly steps: number;
}

/**
 * The learning-rate range test as a plugin (fastai's `LRFinder` callback): before every batch it
 * sets the sweep's learning rate through core's hyperparameter adapter; after the step it records
 * the loss and its smoothed value, and asks the run to stop after `steps` steps or when the loss
 * diverges. It runs at `ORDER.SCHEDULE`, and fails the run if another plugin changes the learning
 * rate in the same step.
 *
 * On its own it changes the model and leaves the optimizer at the last learning rate:
 * `findLearningRate` wraps it with the snapshot and exact restore. Use it directly to watch a sweep in
 * your own run (give `fit` at least `steps / batchesPerEpoch + 1` epochs), then read `result()`.
 */
export class LRRangeTest implements Callback {
  readonly name: string;
  readonly order = ORDER.SCHEDULE;
  readonly options: Readonly<ResolvedSweep>;
  private lrs: number[] = [];
  private losses: number[] = [];
  private smoothedLosses: number[] = [];
  private smoother: SmoothedLoss;
  private best = Number.POSITIVE_INFINITY;
  private pending: number | undefined;
  private reason: StopReason | undefined;
  private message = "";

  constructor(options: RangeTestOptions = {}) {
    const { name, ...sweep } = parseOptions("LRRangeTest", rangeTestSchema, options);
    this.options = sweep;
    this.name = name ?? "LRRangeTest";
    this.smoother = new SmoothedLoss(sweep.smoothing);
  }

  /** The curve so far (copies). */
  get curve(): Curve {
    return { lr: [...this.lrs], loss: [...this.losses], smoothed: [...this.smoothedLosses] };
  }

  /** Why the sweep ended; `undefined` while it runs. */
  get stopReason(): StopReason | undefined {
    return this.reason;
  }

  get done(): boolean {
    return this.reason !== undefined;
  }

  beforeFit(ctx: HookContext): void {
    this.lrs = [];
    this.losses = [];
    this.smoothedLosses = [];
    this.smoother = new SmoothedLoss(this.options.smoothing);
    this.best = Number.POSITIVE_INFINITY;
    this.pending = undefined;
    this.reason = undefined;
    this.message = "";
    void ctx.hyper.learningRate; // an optimizer the adapter does not know fails here, before the first step
  }

  beforeBatch(ctx: BatchContext): void {
    if (this.reason !== undefined) return; // the sweep is over (its stop request takes effect after the batch it was made in)
    const { steps, startLr, endLr, mode } = this.options;
    const lr = sweepLr(this.lrs.length, steps, startLr, endLr, mode);
    ctx.hyper.learningRate = lr;
    this.pending = ctx.hyper.learningRate; // as the optimizer holds it
    ctx.log("lr", lr, { reduce: "last" });
  }

  beforeStep(ctx: BatchContext): void {
    if (this.pending === undefined) return;
    const now = ctx.hyper.learningRate;
    if (now !== this.pending) {
      throw new FitloopError("LR_CHANGED_DURING_RANGE_TEST", `${this.name}: the learning rate of this step was set to ${this.pending} by the range test, but is ${now} at beforeStep: another plugin (a schedule?) changes it. Leave schedules out of the range test's run.`);
    }
  }

  /** Records the point in afterStep: it runs after the step's read even when the update is skipped, before any afterBatch. */
  afterStep(ctx: BatchContext): void {
    const lr = this.pending;
    this.pending = undefined;
    const loss = ctx.logs.loss;
    if (lr === undefined || loss === undefined || this.reason !== undefined) return; // cancelled before the step's read
    const smoothed = this.smoother.add(loss);
    this.lrs.push(lr);
    this.losses.push(loss);
    this.smoothedLosses.push(smoothed);
    if (smoothed < this.best) this.best = smoothed;
    const { steps, stopDivergence, divergenceFactor } = this.options;
    const i = this.lrs.length - 1;
    // fastai's LRFinder.after_batch, in its order; a NaN never compares as diverged there, so fastai runs on: stop on it
    if (!Number.isFinite(loss) || !Number.isFinite(smoothed)) {
      this.stop(ctx, "non-finite", `the loss was ${loss} at step ${i} (lr ${lr.toPrecision(4)})`);
    } else if (stopDivergence && smoothed > divergenceFactor * this.best) {
      this.stop(ctx, "diverged", `the smoothed loss ${smoothed.toPrecision(4)} passed ${divergenceFactor} x the best (${this.best.toPrecision(4)}) at step ${i} (lr ${lr.toPrecision(4)})`);
    } else if (this.lrs.length >= steps) {
      this.stop(ctx, "completed", `did all ${steps} steps (last lr ${lr.toPrecision(4)})`);
    }
  }

  afterFit(ctx: FitEndContext): void {
    if (this.reason !== undefined) return;
    const o = ctx.outcome;
    if (o.status === "failed") this.end("failed", `the run failed after ${this.lrs.length} step(s): ${o.reason ?? "unknown error"}`);
    else if (o.status === "completed") this.end("data-ended", `the run ended after ${this.lrs.length} of ${this.options.steps} steps: give fit more epochs`);
    else this.end("stopped", `${o.status} after ${this.lrs.length} step(s) by another plugin: ${o.reason ?? ""}`);
  }

  /**
   * The curve, fastai's suggestions on it, the one named by `suggest` as `lr`, and the confidence
   * verdict. Call it after the run.
   */
  result(suggest: SuggestionName = "valley", thresholds: ConfidenceThresholds = {}): RangeTestResult {
    const curve = this.curve;
    const suggestions = suggestAll(curve, this.options.steps);
    const reason = this.reason ?? "data-ended";
    return {
      curve,
      suggestions,
      lr: suggestions[suggest]?.lr,
      confidence: confidence({ ...curve, steps: this.options.steps, smoothing: this.options.smoothing, diverged: reason === "diverged" || reason === "non-finite" }, thresholds),
      stopReason: reason,
      stopMessage: this.message || "the sweep has not run",
      steps: curve.lr.length,
    };
  }

  private stop(ctx: HookContext, reason: StopReason, message: string): void {
    this.end(reason, message);
    ctx.requestStop(`range test ${reason}: ${message}`, { reason, steps: this.lrs.length });
  }

  private end(reason: StopReason, message: string): void {
    this.reason = reason;
    this.message = message;
  }
}
