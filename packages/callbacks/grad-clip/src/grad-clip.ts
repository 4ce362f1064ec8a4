import type * as tf from "@tensorflow/tfjs-core";
import { FitloopError, OptionsError, ORDER, parseOptions, StateError, type BatchContext, type Callback, type HookContext, type StateDict } from "@fitloop/core";
import { z } from "zod";
import { adaptiveClip, clipByNorm, clipByValue, globalNormScale, type ClipResult } from "./clip.js";

const optionsSchema = z
  .strictObject({
    by: z.enum(["globalNorm", "norm", "value", "adaptive"], { message: 'must be "globalNorm" (one norm over all gradients), "norm" (per tensor), "value" or "adaptive" (unit-wise, AGC)' }).default("globalNorm"),
    max: z.number({ message: "must be a finite number > 0" }).gt(0, { message: "must be > 0: the largest global norm, tensor norm, absolute value, or (adaptive) gradient-to-weight norm ratio" }),
    eps: z.number({ message: "must be a finite number > 0" }).gt(0, { message: "must be > 0" }).default(1e-3),
    exclude: z.array(z.string().min(1), { message: "must be an array of layer names" }).default([]),
    nonFinite: z.enum(["skip", "stop", "throw"], { message: 'must be "skip" (skip the step and count it), "stop" (stop the run after this batch) or "throw"' }).default("skip"),
    name: z.string().min(1).optional(),
    stateKey: z.string().min(1).optional(),
  })
  .superRefine((o, ctx) => {
    if (o.by !== "adaptive" && o.exclude.length) ctx.addIssue({ code: "custom", path: ["exclude"], message: 'applies to by: "adaptive" only (the other modes treat all gradients as one)' });
  });

export type GradClipOptions = z.input<typeof optionsSchema>;

/** A non-finite gradient norm with `nonFinite: "throw"`. */
export class NonFiniteGradientError extends FitloopError {
  constructor(
    message: string,
    readonly step: number,
    readonly value: number,
  ) {
    super("NON_FINITE_GRADIENTS", message);
  }
}

/**
 * Gradient clipping in core's gradient stage (`afterGradients`, at `ORDER.GRADIENT`), on the
 * device: no device read of its own. The pre-clip global norm (`grad_norm`) and whether clipping
 * engaged (`grad_clipped`, its epoch mean is the fraction of steps) ride in the step's one packed
 * read. With those numbers, in `beforeStep`, a non-finite norm skips the update (`ctx.skipStep`,
 * counted in `grad_nonfinite` and the plugin's state; later guards still see the step), stops the
 * run after this batch, or throws. A step another plugin has already asked to skip
 * (`ctx.skipRequested`: gradient accumulation's micro-batches) is left alone: no norm, no clipping,
 * no logs, so `grad_norm` and `grad_clipped` describe the updates applied.
 */
export class GradClip implements Callback {
  readonly name: string;
  readonly order = ORDER.GRADIENT;
  readonly stateKey: string;
  readonly options: Readonly<z.output<typeof optionsSchema>>;
  /** Steps skipped (or stopped at) for a non-finite gradient norm, over the whole run. */
  nonFiniteSteps = 0;
  private skip: ReadonlySet<string> = new Set();
  /** This step's gradients were measured (not when a plugin had already asked to skip the step). */
  private measured = false;

  constructor(options: GradClipOptions) {
    this.options = parseOptions("GradClip", optionsSchema, options);
    this.name = this.options.name ?? "GradClip";
    this.stateKey = this.options.stateKey ?? "grad-clip";
  }

  beforeFit(ctx: HookContext): void {
    if (this.options.by !== "adaptive") return;
    const layers = new Map(ctx.model.layers.map((l) => [l.name, l]));
    const unknown = this.options.exclude.filter((n) => !layers.has(n));
    if (unknown.length) throw new OptionsError(this.name, [{ path: "exclude", message: `no layer named ${unknown.map((n) => `"${n}"`).join(", ")}; the model's layers: ${[...layers.keys()].join(", ")}` }]);
    // by layer and role, not by a name pattern: tfjs renames variables of a second model (dense/kernel_1)
    this.skip = new Set(this.options.exclude.flatMap((n) => layers.get(n)!.trainableWeights.map((w) => (w.read() as tf.Variable).name)));
  }

  afterGradients(ctx: BatchContext): tf.NamedTensorMap | void {
    // a step that will not be applied (gradient accumulation's micro-batches): nothing to clip or measure
    this.measured = !ctx.skipRequested;
    if (!this.measured) return;
    const grads = ctx.grads!;
    const { max, by } = this.options;
    if (by === "globalNorm") {
      // One scale for every gradient: the loop applies it with the update (fused into the optimizer
      // where it can), so this costs the norm only. Whether it clipped follows from the norm, read
      // with the step: logged in beforeStep.
      const { norm, scale } = globalNormScale(grads, max);
      ctx.log("grad_norm", norm);
      ctx.scaleGradients(scale);
      return;
    }
    let r: ClipResult;
    if (by === "norm") r = clipByNorm(grads, max);
    else if (by === "value") r = clipByValue(grads, max);
    else r = adaptiveClip(grads, this.params(ctx), { clipping: max, eps: this.options.eps, skip: this.skip });
    ctx.log("grad_norm", r.norm);
    ctx.log("grad_clipped", r.clipped);
    return r.grads;
  }

  beforeStep(ctx: BatchContext): void {
    if (!this.measured) return; // no grad_norm this step: nothing was clipped, no gradient was checked
    this.measured = false;
    const norm = ctx.logs["grad_norm"]!;
    if (this.options.by === "globalNorm") ctx.log("grad_clipped", norm > this.options.max ? 1 : 0);
    const bad = !Number.isFinite(norm);
    ctx.log("grad_nonfinite", bad ? 1 : 0, { reduce: "sum" });
    if (!bad) return;
    this.nonFiniteSteps++;
    const s = ctx.state;
    const where = `step ${s.step} (epoch ${s.epoch}, batch ${s.batchIndex})`;
    const policy = this.options.nonFinite;
    if (policy === "throw") throw new NonFiniteGradientError(`${this.name}: the gradient norm is ${norm} at ${where}; the step was not applied`, s.step, norm);
    if (policy === "stop") {
      ctx.requestStop(`the gradient norm is ${norm} at ${where}; the step was not applied`, { step: s.step, epoch: s.epoch, batch: s.batchIndex, value: String(norm) });
    } else {
      ctx.logger.warn(`${this.name}: skipped ${where}: the gradient norm is ${norm} (${this.nonFiniteSteps} skipped so far)`);
    }
    // not CancelStep: guards after this (a NaN-loss guard, say) still see the step
    ctx.skipStep(`non-finite gradient norm (${norm})`);
  }

  stateDict(): StateDict {
    return { nonFiniteSteps: this.nonFiniteSteps };
  }

  loadStateDict(state: StateDict): void {
    const r = z.strictObject({ nonFiniteSteps: z.number().int().min(0) }).safeParse(state);
    if (!r.success) throw new StateError(`${this.name}: the saved state is invalid: ${r.error.issues.map((i) => `${i.path.join(".") || "(state)"}: ${i.message}`).join("; ")}`);
    this.nonFiniteSteps = r.data.nonFiniteSteps;
  }

  private params(ctx: BatchContext): tf.NamedTensorMap {
    const out: tf.NamedTensorMap = {};
    for (const w of ctx.model.trainableWeights) {
      const v = w.read() as tf.Variable;
      out[v.name] = v;
    }
    return out;
  }
}
