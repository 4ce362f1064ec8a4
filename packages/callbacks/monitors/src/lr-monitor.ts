import { ORDER, parseOptions, type BatchContext, type Callback, type HookContext } from "@fitloop/core";
import { z } from "zod";

const lrMonitorSchema = z.strictObject({
  momentum: z.boolean({ message: "must be true or false" }).default(true),
  name: z.string().min(1, { message: "must be a non-empty string" }).optional(),
});

export interface LRMonitorOptions {
  /** Also log `momentum` (momentum for Momentum/RMSProp, beta1 for Adam/Adamax) when the optimizer has one. Default true. */
  momentum?: boolean;
  /** Plugin name (default `LRMonitor`). */
  name?: string;
}

const LAST = { reduce: "last" } as const;

/**
 * Logs the learning rate (`lr`) and momentum or beta1 (`momentum`) that each step's update uses,
 * read from `ctx.hyper` in `beforeStep`: after schedules (`beforeBatch`) and anything at a lower
 * order that changes them in `beforeStep`, before the update. A key already logged in this step (a
 * `Scheduler` logs `lr` and `momentum` when it sets them) is left to whoever logged it:
 * `ctx.hasLog` says so, and one name has one owner per step. The epoch value is the last step's
 * (`reduce: "last"`), the rate the epoch ended with.
 */
export class LRMonitor implements Callback {
  readonly name: string;
  readonly order = ORDER.MONITOR;
  readonly options: Readonly<z.output<typeof lrMonitorSchema>>;
  private lr = false;
  private momentum = false;

  constructor(options: LRMonitorOptions = {}) {
    this.options = parseOptions("LRMonitor", lrMonitorSchema, options);
    this.name = this.options.name ?? "LRMonitor";
  }

  beforeFit(ctx: HookContext): void {
    try {
      void ctx.hyper.learningRate;
      this.lr = true;
    } catch (e) {
      // an optimizer core's adapter does not know: a monitor must not fail the run over it
      this.lr = false;
      ctx.logger.warn(`${this.name}: cannot read the learning rate of ${ctx.optimizer.getClassName()} (${e instanceof Error ? e.message : String(e)}); lr is not logged`);
    }
    this.momentum = this.options.momentum && ctx.hyper.hasMomentum;
  }

  beforeStep(ctx: BatchContext): void {
    if (this.lr && !ctx.hasLog("lr")) ctx.log("lr", ctx.hyper.learningRate, LAST);
    if (this.momentum && !ctx.hasLog("momentum")) {
      const m = ctx.hyper.momentum;
      if (typeof m === "number") ctx.log("momentum", m, LAST);
    }
  }
}
