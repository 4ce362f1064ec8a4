import { FitloopError, globalNorm, MissingMonitorError, ORDER, parseOptions, type BatchContext, type Callback, type Logs } from "@fitloop/core";
import { z } from "zod";

const optionsSchema = z.strictObject({
  watch: z.array(z.string().min(1), { message: 'must be an array of batch log names, e.g. ["loss"]' }).min(1, { message: "must name at least one batch log" }).default(["loss"]),
  gradients: z.boolean({ message: "must be true or false" }).default(false),
  action: z.enum(["stop", "throw"], { message: 'must be "stop" (stop the run after this batch; other plugins still finish) or "throw"' }).default("stop"),
  name: z.string().min(1).optional(),
});

export type TerminateOnNaNOptions = z.input<typeof optionsSchema>;

/** Where a watched value was first non-finite. */
export interface NonFiniteFinding {
  readonly key: string;
  readonly value: number;
  readonly step: number;
  readonly epoch: number;
  readonly batch: number;
}

/** A watched value was NaN or infinite with `action: "throw"`. */
export class NonFiniteValueError extends FitloopError {
  constructor(
    message: string,
    readonly finding: NonFiniteFinding,
  ) {
    super("NON_FINITE_VALUE", message);
  }
}

/** The first watched key whose value is NaN or infinite, or `undefined`; a key missing from `logs` is a `MissingMonitorError`. */
export function findNonFinite(logs: Readonly<Logs>, watch: readonly string[], owner: string): { key: string; value: number } | undefined {
  for (const key of watch) {
    const value = logs[key];
    if (typeof value !== "number") throw new MissingMonitorError(owner, key, Object.keys(logs), "of this batch");
    if (!Number.isFinite(value)) return { key, value };
  }
  return undefined;
}

/**
 * Watches the batch loss (and any other batch log, e.g. `grad_norm`) after the step's one device
 * read and before the update (`beforeStep`, `ORDER.GUARD`). On NaN or infinity the update is not
 * applied (unlike Keras' `TerminateOnNaN`, which stops after it), and the run either stops
 * gracefully after this batch (validation, `checkpoint` and every `after*` hook still run, so a
 * checkpoint plugin keeps the last good state) or throws. No device read of its own. On a step
 * another plugin has already asked to skip (`ctx.skipRequested`: gradient accumulation's
 * micro-batches) the gradient norm is not computed and a watched value missing from the logs is
 * not an error; the loss is still checked on every batch.
 */
export class TerminateOnNaN implements Callback {
  readonly name: string;
  readonly order = ORDER.GUARD;
  readonly watch: readonly string[];
  readonly action: "stop" | "throw";
  private readonly gradients: boolean;
  private found: NonFiniteFinding | undefined;

  constructor(options: TerminateOnNaNOptions = {}) {
    const o = parseOptions("TerminateOnNaN", optionsSchema, options);
    this.name = o.name ?? "TerminateOnNaN";
    this.gradients = o.gradients;
    this.watch = o.gradients && !o.watch.includes("grad_norm") ? [...o.watch, "grad_norm"] : o.watch;
    this.action = o.action;
  }

  /** What tripped the guard in the last run, if anything. */
  get finding(): NonFiniteFinding | undefined {
    return this.found;
  }

  beforeFit(): void {
    this.found = undefined;
  }

  afterGradients(ctx: BatchContext): void {
    // gradient clipping (ORDER.GRADIENT, before this) logs the pre-clip norm already: do not compute it twice;
    // a step already being skipped (gradient accumulation's micro-batches) applies no gradients to check
    if (this.gradients && !ctx.skipRequested && !ctx.hasLog("grad_norm")) ctx.log("grad_norm", globalNorm(ctx.grads!));
  }

  beforeStep(ctx: BatchContext): void {
    // on a skipped step gradient statistics are not computed: check the watched values that are there (the loss)
    const watch = ctx.skipRequested ? this.watch.filter((k) => k in ctx.logs) : this.watch;
    const bad = findNonFinite(ctx.logs, watch, this.name);
    if (!bad) return;
    const s = ctx.state;
    this.found = { ...bad, step: s.step, epoch: s.epoch, batch: s.batchIndex };
    const what = `${bad.key} is ${bad.value} at step ${s.step} (epoch ${s.epoch}, batch ${s.batchIndex})`;
    if (this.action === "throw") throw new NonFiniteValueError(`${this.name}: ${what}; that step was not applied`, this.found);
    ctx.requestStop(`${what}; that step was not applied`, { key: bad.key, value: String(bad.value), step: s.step, epoch: s.epoch, batch: s.batchIndex });
    ctx.skipStep(`${bad.key} is ${bad.value}`);
  }
}
