import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { FitloopError, ORDER, parseOptions, type BatchContext, type Callback, type HookContext } from "@fitloop/core";
import { z } from "zod";
import { decayFactor, decoupledWeightDecay } from "./decay.js";
import { formatSelection, selectDecayed, summarizeSelection, type DecayCandidate, type DecaySelection } from "./select.js";

/** The decay coefficient: a constant, or a schedule over `ctx.state.step` (the count of applied updates). */
export type WeightDecayValue = number | ((step: number) => number);

/** Above this a value is more likely a keep factor (0.999) or a typo than a decoupled decay coefficient. */
const LARGE = 0.3;

const describeValue = (v: unknown) => (typeof v === "number" ? String(v) : v === null ? "null" : typeof v);

const PATTERN = "must be a layer or variable name (a non-empty string) or a RegExp";
const pattern = z.union([z.string().min(1, { message: PATTERN }), z.instanceof(RegExp)], { message: PATTERN });

const LOG = 'must be the log name (default "weight_decay") or false';

const optionsSchema = z.strictObject({
  weightDecay: z.custom<WeightDecayValue>((v) => typeof v === "function" || (typeof v === "number" && Number.isFinite(v) && v >= 0), {
    error: (iss) =>
      iss.input === undefined
        ? "is required: a number >= 0 (AdamW's usual 0.01-0.1) or a function (step) => number"
        : typeof iss.input === "number"
          ? `must be a finite number >= 0 (weights shrink by learningRate * weightDecay per step), got ${iss.input}`
          : `must be a number >= 0 or a function (step) => number, got ${describeValue(iss.input)}`,
  }),
  predicate: z.custom<(v: DecayCandidate) => boolean>((v) => typeof v === "function", { message: "must be a function ({ name, layer, layerClass, role, shape }) => boolean" }).optional(),
  include: z.array(pattern, { message: "must be an array of layer or variable names or RegExps" }).default([]),
  exclude: z.array(pattern, { message: "must be an array of layer or variable names or RegExps" }).default([]),
  log: z.union([z.string().min(1, { message: LOG }), z.literal(false)], { message: LOG }).default("weight_decay"),
  name: z.string().min(1).optional(),
});

export type WeightDecayOptions = z.input<typeof optionsSchema>;

/** A scheduled weight decay gave a value that is not a finite number >= 0, or lr * wd >= 1. */
export class WeightDecayError extends FitloopError {
  constructor(
    message: string,
    readonly step: number,
    readonly value: unknown,
  ) {
    super("INVALID_WEIGHT_DECAY", message);
  }
}

/**
 * Decoupled weight decay for any tfjs optimizer (adam + this = AdamW, sgd/momentum + this = SGDW):
 * in `beforeUpdate`, which fires only for updates that are applied (skipped steps and gradient
 * accumulation's micro-batches do not decay), every selected variable becomes
 * `w * (1 - lr_t * wd_t)` on the device, before the optimizer adds its update; the gradient was
 * taken at the undecayed weights, as in PyTorch's AdamW. `lr_t` is the step's learning rate
 * (`ctx.hyper.learningRate`, so it follows any schedule), `wd_t` the constant or scheduled
 * coefficient. Kernels decay by default; biases, normalization gains and shifts, embeddings do not.
 * No device read; no state to save (a schedule reads `ctx.state.step`, which the run restores).
 */
export class WeightDecay implements Callback {
  readonly name: string;
  readonly order = ORDER.DEFAULT;
  readonly options: Readonly<z.output<typeof optionsSchema>>;
  private selection: DecaySelection | undefined;
  /** The last factor's scalar, kept across steps while the factor stays the same (one upload per change). */
  private factor: { value: number; scalar: tf.Scalar } | undefined;
  private lastWd = 0;
  private warnedLarge = false;

  constructor(options: WeightDecayOptions) {
    this.options = parseOptions("WeightDecay", optionsSchema, options);
    this.name = this.options.name ?? "WeightDecay";
  }

  /** The selection table for `model`: every trainable variable, its shape, whether it decays and why. */
  describe(model: LayersModel): string {
    return formatSelection(selectDecayed(model, this.options, this.name));
  }

  beforeFit(ctx: HookContext): void {
    this.selection = selectDecayed(ctx.model, this.options, this.name);
    void ctx.hyper.learningRate; // an optimizer without a learning rate fails here, before any step
    this.warnedLarge = false;
    const wd = this.options.weightDecay;
    if (typeof wd === "number") this.warnIfLarge(ctx, wd, undefined);
    const what = typeof wd === "number" ? `weight decay ${wd}` : "scheduled weight decay";
    ctx.logger.info(`${this.name}: ${summarizeSelection(this.selection)}; ${what} x the step's learning rate`);
    if (this.selection.decayed.length === 0) ctx.logger.warn(`${this.name}: no variable decays with these options; the plugin does nothing`);
  }

  beforeUpdate(ctx: BatchContext): void {
    const step = ctx.state.step;
    const wd = this.weightDecayAt(step);
    if (typeof this.options.weightDecay === "function") this.warnIfLarge(ctx, wd, step);
    const lr = ctx.hyper.learningRate;
    if (lr * wd >= 1) throw new WeightDecayError(`${this.name}: learningRate * weightDecay is ${lr * wd} (${lr} * ${wd}) at step ${step}: the decay would zero or flip every weight`, step, wd);
    this.lastWd = wd;
    const f = decayFactor(lr, wd);
    const decayed = this.selection!.decayed;
    if (f === 1 || decayed.length === 0) return;
    // a layer frozen during the run (layer.trainable = false) is not updated, so it does not decay either
    decoupledWeightDecay(decayed.every((v) => v.trainable) ? decayed : decayed.filter((v) => v.trainable), this.scalarFor(f));
  }

  // ctx.log is not open in beforeUpdate: the coefficient goes into the step's logs once it is applied
  afterStep(ctx: BatchContext): void {
    if (this.options.log !== false && !ctx.stepSkipped) ctx.log(this.options.log, this.lastWd, { reduce: "last" });
  }

  afterFit(): void {
    this.release();
  }

  dispose(): void {
    this.release();
  }

  private weightDecayAt(step: number): number {
    const wd = this.options.weightDecay;
    if (typeof wd === "number") return wd;
    const v: unknown = wd(step);
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new WeightDecayError(`${this.name}: the weightDecay schedule gave ${describeValue(v)} at step ${step}; it must return a finite number >= 0`, step, v);
    return v;
  }

  private warnIfLarge(ctx: HookContext, wd: number, step: number | undefined): void {
    if (wd <= LARGE || this.warnedLarge) return;
    this.warnedLarge = true;
    const at = step === undefined ? "" : ` (at step ${step})`;
    ctx.logger.warn(`${this.name}: weightDecay ${wd}${at} is large for decoupled decay: weights shrink by learningRate * ${wd} every step (AdamW's default is 0.01, typical 0.01-0.1). A keep factor such as 0.999 is not a weight decay.`);
  }

  private scalarFor(value: number): tf.Scalar {
    if (this.factor?.value !== value) {
      this.factor?.scalar.dispose();
      this.factor = { value, scalar: tf.keep(tf.scalar(value)) };
    }
    return this.factor.scalar;
  }

  private release(): void {
    this.factor?.scalar.dispose();
    this.factor = undefined;
  }
}
