import type * as tf from "@tensorflow/tfjs-core";
import { ORDER, StateError, type Callback, type FitEndContext, type HookContext, type StateDict } from "@fitloop/core";
import { z } from "zod";
import { WeightAverage, type SavedAverageWeight } from "./average.js";
import { batchNormLayers, updateBatchNorm, type UpdateBatchNormResult } from "./batch-norm.js";

/** Options both plugins take. */
export interface CommonOptions {
  /**
   * Average the model's non-trainable weights too (BatchNorm moving mean and variance), as timm's
   * EMA does. Default: true for `EMA`, false for `SWA` (PyTorch's `use_buffers=False`: its BatchNorm
   * statistics are recomputed instead, see `updateBatchNorm`).
   */
  readonly buffers?: boolean;
  /** `"average"` (default): validation runs on the averaged weights, so `val_*` are the average's. `"raw"`: on the trained weights. */
  readonly evaluate?: "average" | "raw";
  /** Leave the averaged weights in the model when the run ends (unless it failed), as Keras' `use_ema`. Default true. */
  readonly applyAtEnd?: boolean;
  /**
   * Recompute BatchNorm statistics for the averaged weights with a pass over the training data
   * (`updateBatchNorm`): `"end"` when they are applied at the end, `"validation"` also before each
   * validation of the average, `"never"`. Default: `"end"` for `SWA`, `"never"` for `EMA`.
   */
  readonly updateBatchNorm?: "never" | "end" | "validation";
  /** Read at most this many batches in a BatchNorm pass. Default: the whole epoch. */
  readonly batchNormBatches?: number;
  /** Plugin name (default the class name). */
  readonly name?: string;
  /** Key of this plugin's state in a checkpoint (default `"ema"` / `"swa"`). */
  readonly stateKey?: string;
}

export interface ResolvedCommon {
  readonly buffers: boolean;
  readonly evaluate: "average" | "raw";
  readonly applyAtEnd: boolean;
  readonly updateBatchNorm: "never" | "end" | "validation";
  readonly batchNormBatches?: number | undefined;
  readonly name?: string | undefined;
  readonly stateKey?: string | undefined;
}

export const positiveInt = z.number({ message: "must be an integer >= 1" }).int({ message: "must be an integer >= 1" }).min(1, { message: "must be an integer >= 1" });

/** The zod fields of `CommonOptions`, with the plugin's defaults. */
export function commonFields(defaults: { buffers: boolean; updateBatchNorm: "never" | "end" }) {
  return {
    buffers: z.boolean({ message: "must be a boolean" }).default(defaults.buffers),
    evaluate: z.enum(["average", "raw"], { message: 'must be "average" (validate the averaged weights) or "raw"' }).default("average"),
    applyAtEnd: z.boolean({ message: "must be a boolean" }).default(true),
    updateBatchNorm: z.enum(["never", "end", "validation"], { message: 'must be "never", "end" or "validation" (before each validation and at the end)' }).default(defaults.updateBatchNorm),
    batchNormBatches: positiveInt.optional(),
    name: z.string().min(1).optional(),
    stateKey: z.string().min(1).optional(),
  };
}

/** One averaged weight in a saved state. */
const savedWeight = z.strictObject({
  name: z.string({ message: "must be the weight's name" }),
  shape: z.array(z.number().int().min(0), { message: "must be an array of integers >= 0" }),
  values: z.instanceof(Float32Array, { message: "must be a Float32Array" }),
}).refine((w) => w.values.length === w.shape.reduce((a, b) => a * b, 1), { message: "has a number of values that does not match its shape" });

export const countField = z.number({ message: "must be an integer >= 0" }).int({ message: "must be an integer >= 0" }).min(0, { message: "must be an integer >= 0" });
export const weightsField = z.array(savedWeight, { message: "must be an array of { name, shape, values } or null" }).nullable();

/** A state the schema accepted, with the rule that an average exists exactly when something was averaged. */
export function parseState<T extends { count: number; weights: SavedAverageWeight[] | null }>(owner: string, schema: z.ZodType<T>, dict: unknown): T {
  const r = schema.safeParse(dict);
  const issues = r.success ? [] : r.error.issues.map((i) => ({ path: i.path.join(".") || "(state)", message: i.message }));
  if (r.success && (r.data.count > 0) !== (r.data.weights !== null)) issues.push({ path: "weights", message: r.data.count > 0 ? `count is ${r.data.count} but there is no average` : "count is 0 but an average is saved" });
  if (issues.length || !r.success) throw new StateError(`${owner}: the saved state is invalid`, issues);
  return r.data;
}

/**
 * What EMA and SWA share: averages on the device (`WeightAverage`), validation on them, the
 * averages applied at the end (with a BatchNorm pass if asked), and the state.
 *
 * Order `ORDER.SCHEDULE + 10`: `before*` hooks run after the LR schedules' (an SWA learning rate
 * wins), and, since `after*` hooks run in reverse, its `afterEpoch` runs after the monitors' and
 * checkpoints'. So from this plugin's `beforeValidate` to its `afterEpoch` the model holds the
 * average for every plugin there (an early stopping that keeps the best weights keeps the best
 * average), and the raw weights are back before `epochCheckpoint` and the next epoch.
 */
export abstract class AveragingPlugin implements Callback {
  readonly name: string;
  readonly order = ORDER.SCHEDULE + 10;
  readonly stateKey: string;
  protected readonly average = new WeightAverage();
  /** Updates so far (SWA: models in the mean; EMA: the step of the decay warmup). */
  protected count = 0;
  /** The last BatchNorm pass (at a validation or at the end), for inspection. */
  lastBatchNormUpdate: (UpdateBatchNormResult & { readonly epoch: number }) | undefined;
  private loaded = false;
  private active = false;
  private hasBatchNorm = false;

  protected constructor(
    protected readonly common: ResolvedCommon,
    defaultName: string,
    defaultKey: string,
  ) {
    this.name = common.name ?? defaultName;
    this.stateKey = common.stateKey ?? defaultKey;
  }

  /** Updates made so far in this run (or the last). */
  get updates(): number {
    return this.count;
  }

  /** The averaged weights as plain arrays, in `model.weights` order of the averaged ones (a device read during a run); null before the first update. */
  averagedWeights(): SavedAverageWeight[] | null {
    return this.average.read();
  }

  /** Checks the run (options that need `epochs`) and resets the plugin's own counters for a new run. */
  protected abstract setup(ctx: HookContext, fresh: boolean): void;
  /** The plugin's own part of the state. */
  protected abstract ownState(): StateDict;
  /** Parses a saved state (with `parseState`) and keeps its own counters; returns the average. */
  protected abstract loadOwnState(dict: StateDict): { count: number; weights: SavedAverageWeight[] | null };

  beforeFit(ctx: HookContext): void {
    this.active = false;
    this.lastBatchNormUpdate = undefined;
    const resume = ctx.state.resumed && this.loaded;
    if (ctx.state.resumed && !this.loaded) ctx.logger.warn(`${this.name}: the run resumes from a state without "${this.stateKey}": the average starts over`);
    this.loaded = false;
    try {
      this.setup(ctx, !resume);
      this.average.select(ctx.model, this.common.buffers);
      if (resume && this.average.host) {
        this.average.check(this.average.host, this.name);
        this.average.upload();
      } else if (!resume) {
        this.count = 0;
        this.average.reset();
      }
    } catch (e) {
      this.count = 0;
      this.average.reset();
      throw e;
    }
    this.hasBatchNorm = batchNormLayers(ctx.model).length > 0;
    this.active = true;
  }

  /** Adds the current weights to the average with `rule` (the first update copies them). */
  protected addToAverage(rule: (averages: readonly tf.Tensor[], weights: readonly tf.Tensor[]) => tf.Tensor[]): void {
    if (!this.average.onDevice) this.average.start();
    else this.average.update(rule);
    this.count++;
  }

  async beforeValidate(ctx: HookContext): Promise<void> {
    if (this.common.evaluate !== "average" || this.count === 0) return;
    this.average.swapIn(ctx.model);
    if (this.common.updateBatchNorm === "validation") await this.recomputeBatchNorm(ctx, ctx.state.epoch);
  }

  /** Back to the raw weights, after every monitor and checkpoint plugin's afterEpoch (see the class comment). */
  afterEpoch(ctx: HookContext): void {
    this.average.swapOut(ctx.model);
  }

  async afterFit(ctx: FitEndContext): Promise<void> {
    if (!this.active) return;
    this.active = false;
    // the raw weights first: a validation that threw or was cancelled left the average in
    this.average.swapOut(ctx.model);
    // the hook's seeded stream in deterministic mode: drawn now, in the synchronous part
    const seed = Math.floor(ctx.random() * 2 ** 31);
    try {
      if (!this.common.applyAtEnd || ctx.outcome.status === "failed" || this.count === 0) return;
      this.average.swapIn(ctx.model);
      if (this.common.updateBatchNorm !== "never") {
        try {
          await this.recomputeBatchNorm(ctx, ctx.state.epoch, seed);
        } catch (e) {
          this.average.swapOut(ctx.model); // the model keeps the raw weights rather than a half-done average
          throw e;
        }
      }
      this.average.commit();
      ctx.logger.debug(`${this.name}: the model now holds the average of ${this.count} updates`);
    } finally {
      this.average.release();
    }
  }

  stateDict(): StateDict {
    const weights = this.average.read();
    return { ...this.ownState(), count: this.count, weights: weights && weights.map((w) => ({ name: w.name, shape: [...w.shape], values: w.values })) };
  }

  loadStateDict(dict: StateDict): void {
    const saved = this.loadOwnState(dict);
    // checked against the model in beforeFit, where the model is known
    this.average.reset();
    // copies: the caller may reuse the dict it passed
    this.average.host = saved.weights && saved.weights.map((w) => ({ name: w.name, shape: [...w.shape], values: Float32Array.from(w.values) }));
    this.count = saved.count;
    this.loaded = true;
  }

  /** Frees the averages' tensors (a plugin passed as an instance is the caller's to dispose). */
  dispose(): void {
    this.average.reset();
  }

  private async recomputeBatchNorm(ctx: HookContext, epoch: number, seed = Math.floor(ctx.random() * 2 ** 31)): Promise<void> {
    if (!this.hasBatchNorm) return;
    const r = await updateBatchNorm(ctx.model, ctx.data.train, { epoch, seed, ...(this.common.batchNormBatches ? { maxBatches: this.common.batchNormBatches } : {}) });
    this.lastBatchNormUpdate = { ...r, epoch };
  }
}
