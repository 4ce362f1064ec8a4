import { OptionsError, parseOptions, type BatchContext, type HookContext, type StateDict } from "@fitloop/core";
import { z } from "zod";
import { swaStep } from "./average.js";
import { AveragingPlugin, commonFields, countField, parseState, positiveInt, weightsField, type CommonOptions } from "./plugin.js";

/** PyTorch's `SWALR`: anneal the learning rate to `value` over `annealEpochs` epochs once SWA starts. */
export interface SWALearningRate {
  /** The SWA learning rate (`swa_lr`), > 0. */
  readonly value: number;
  /** Epochs to get there from the rate SWA started with (0: at once). Default 10, as PyTorch. */
  readonly annealEpochs?: number;
  /** Default `"cos"`, as PyTorch. */
  readonly strategy?: "cos" | "linear";
}

export interface SWAOptions extends CommonOptions {
  /**
   * The first epoch averaged: an epoch number (integer >= 0), or a fraction of the run in (0, 1)
   * (epoch `floor(start * epochs)`, as Lightning's `swa_epoch_start`). Default 0.8.
   */
  readonly start?: number;
  /** Take the weights at the end of every n epochs' training (default `{ epochs: 1 }`), or after every n applied optimizer steps. */
  readonly every?: { readonly epochs: number } | { readonly steps: number };
  /** Set the learning rate from `start` on: a number (reached at once), or annealed as PyTorch's `SWALR`. Default: the rate is left alone. */
  readonly lr?: number | SWALearningRate;
}

const lrSchema = z.preprocess(
  (v) => (typeof v === "number" ? { value: v } : v),
  z.strictObject(
    {
      value: z.number({ message: "must be a learning rate > 0" }).gt(0, { message: "must be a learning rate > 0" }),
      annealEpochs: z.number({ message: "must be an integer >= 0" }).int({ message: "must be an integer >= 0" }).min(0, { message: "must be an integer >= 0" }).default(10),
      strategy: z.enum(["cos", "linear"], { message: 'must be "cos" or "linear"' }).default("cos"),
    },
    { error: (i) => (i.code === "invalid_type" ? "must be a learning rate > 0 or { value, annealEpochs, strategy }" : undefined) },
  ),
);

const swaSchema = z
  .strictObject({
    start: z
      .number({ message: "must be an epoch (integer >= 0) or a fraction of the run in (0, 1)" })
      .min(0, { message: "must be an epoch (integer >= 0) or a fraction of the run in (0, 1)" })
      .refine((v) => Number.isInteger(v) || v < 1, { message: "must be an epoch (integer >= 0) or a fraction of the run in (0, 1)" })
      .default(0.8),
    every: z
      .strictObject({ epochs: positiveInt.optional(), steps: positiveInt.optional() }, { error: (i) => (i.code === "invalid_type" ? "must be { epochs: n } or { steps: n }" : undefined) })
      // on the field itself: it runs whatever the other options' problems (one error lists them all)
      .superRefine((e, ctx) => {
        if ((e.epochs === undefined) === (e.steps === undefined)) ctx.addIssue({ code: "custom", message: "give exactly one of { epochs: n } or { steps: n }" });
      })
      .default({ epochs: 1 }),
    lr: lrSchema.optional(),
    ...commonFields({ buffers: false, updateBatchNorm: "end" }),
  });

/**
 * The learning rate of SWA epoch `swaEpoch` (0 = the first averaged epoch) when SWA started at
 * `startLr`: PyTorch's `SWALR` after `swaEpoch` calls of `step()`,
 * `value * alpha + startLr * (1 - alpha)` with `alpha = anneal(min(1, swaEpoch / annealEpochs))`,
 * `anneal` = `(1 - cos(pi t)) / 2` or `t`; `annealEpochs: 0` gives `value` at once.
 */
export function swaLearningRate(swaEpoch: number, startLr: number, lr: number | SWALearningRate): number {
  const o = parseOptions("swaLearningRate", lrSchema, lr);
  const step = o.annealEpochs === 0 ? Math.max(1, swaEpoch) : swaEpoch;
  const t = Math.max(0, Math.min(1, step / Math.max(1, o.annealEpochs)));
  const alpha = o.strategy === "cos" ? (1 - Math.cos(Math.PI * t)) / 2 : t;
  return o.value * alpha + startLr * (1 - alpha);
}

/**
 * Stochastic Weight Averaging (Izmailov et al. 2018; PyTorch's `swa_utils`, Lightning's
 * `StochasticWeightAveraging`): the running arithmetic mean of the weights taken at the end of
 * every `every.epochs` epochs' training (in `afterTrain`, before validation) or after every
 * `every.steps` applied optimizer steps, from epoch `start` on; optionally with `SWALR`'s learning
 * rate. Validation runs on the mean; at the end the mean is put into the model and BatchNorm
 * statistics are recomputed over the training data (`updateBatchNorm`, as `update_bn`).
 */
export class SWA extends AveragingPlugin {
  readonly options: Readonly<z.output<typeof swaSchema>>;
  private firstEpoch = 0;
  /** The learning rate when SWA started (what `SWALR` anneals from); saved with the state. */
  private lrStart: number | null = null;

  constructor(options: SWAOptions = {}) {
    const o = parseOptions("SWA", swaSchema, options);
    super(o, "SWA", "swa");
    this.options = o;
  }

  /** The first averaged epoch of the current (or last) run. */
  get startEpoch(): number {
    return this.firstEpoch;
  }

  protected setup(ctx: HookContext, fresh: boolean): void {
    const { start, lr } = this.options;
    const epochs = ctx.state.epochs;
    this.firstEpoch = Number.isInteger(start) ? start : Math.floor(start * epochs);
    if (this.firstEpoch >= epochs) {
      const what = Number.isInteger(start) ? `is epoch ${start}` : `is ${start} of ${epochs} epochs, epoch ${this.firstEpoch}`;
      throw new OptionsError(this.name, [{ path: "start", message: `${what}, but the run's epochs are 0..${epochs - 1}: nothing would be averaged` }]);
    }
    if (lr) void ctx.hyper.learningRate; // an optimizer whose rate cannot be set fails now, not at the start epoch
    if (fresh) this.lrStart = null;
  }

  beforeBatch(ctx: BatchContext): void {
    const lr = this.options.lr;
    if (!lr || ctx.state.epoch < this.firstEpoch) return;
    this.lrStart ??= ctx.hyper.learningRate;
    const next = swaLearningRate(ctx.state.epoch - this.firstEpoch, this.lrStart, lr);
    if (ctx.hyper.learningRate !== next) ctx.hyper.learningRate = next;
  }

  afterStep(ctx: BatchContext): void {
    const steps = this.options.every.steps;
    if (steps === undefined || ctx.stepSkipped || ctx.state.epoch < this.firstEpoch || ctx.state.step % steps !== 0) return;
    this.take();
  }

  afterTrain(ctx: HookContext): void {
    const epochs = this.options.every.epochs;
    if (epochs === undefined || ctx.state.epoch < this.firstEpoch || (ctx.state.epoch - this.firstEpoch) % epochs !== 0) return;
    this.take();
  }

  protected ownState(): StateDict {
    return { kind: "swa", lrStart: this.lrStart };
  }

  protected loadOwnState(dict: StateDict): { count: number; weights: { name: string; shape: number[]; values: Float32Array }[] | null } {
    const schema = z.strictObject({
      kind: z.literal("swa", { message: 'must be "swa" (is this another plugin\'s state?)' }),
      count: countField,
      weights: weightsField,
      lrStart: z.number({ message: "must be a finite learning rate >= 0 or null" }).min(0, { message: "must be a finite learning rate >= 0 or null" }).nullable(),
    });
    const s = parseState(this.name, schema, dict);
    this.lrStart = s.lrStart;
    return s;
  }

  private take(): void {
    const n = this.count;
    this.addToAverage((a, w) => swaStep(a, w, n, true)); // donated: the averages are replaced by the result
  }
}
