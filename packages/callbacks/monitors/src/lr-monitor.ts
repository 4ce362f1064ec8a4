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
 * read from `ctx.hyper` in `beforeStep`: after every `beforeBatch` hook (schedules, SWA's rate) and
 * anything at a lower order that changes them in `beforeStep`, before the update. A key already
 * logged in this step (a `Scheduler` logs `lr` and `momentum` when it sets them) is left to whoever
 * logged it (`ctx.hasLog` says so, and one name has one owner per step); when the optimizer's value
 * differs from it (changed after the Scheduler), the value the update uses is logged as
 * `lr_applied` / `momentum_applied`. The epoch values are the last step's (`reduce: "last"`).
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
    if (this.lr) this.record(ctx, "lr", ctx.hyper.learningRate);
    if (this.momentum) {
      const m = ctx.hyper.momentum;
      if (typeof m === "number") this.record(ctx, "momentum", m);
    }
  }

  /**
   * Logs `key` as the value the update uses. When another plugin already logged `key` in this step
   * (a Scheduler, when it set the rate in beforeBatch) it keeps it (core gives one name one owner
   * per step); if the optimizer's value now differs (a plugin ordered after the Scheduler changed it
   * later in beforeBatch, as SWA's `lr` does), the real one goes under `<key>_applied`.
   */
  private record(ctx: BatchContext, key: "lr" | "momentum", applied: number): void {
    if (!ctx.hasLog(key)) return ctx.log(key, applied, LAST);
    const logged = ctx.logs[key];
    // compared at float32, the precision the update computes in
    if (logged !== undefined && Math.fround(logged) !== Math.fround(applied)) ctx.log(`${key}_applied`, applied, LAST);
  }
}
