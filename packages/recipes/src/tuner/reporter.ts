import { ORDER, monitorValue, parseOptions, type BatchContext, type Callback, type HookContext } from "@fitloop/core";
import { z } from "zod";
import { formatValue } from "./summary.js";
import type { Trial } from "./trial.js";

const optionsSchema = z.strictObject({
  monitor: z.string().min(1, { message: "must be a logged key, e.g. val_loss" }).default("val_loss"),
  prune: z.boolean().default(true),
  name: z.string().min(1).optional(),
});

export type TrialReporterOptions = z.input<typeof optionsSchema>;

/**
 * Connects a training run to its trial in one line: reports `monitor` at the end of every epoch
 * (step = epoch, from 0), asks the pruner and stops the run when it says so (the trial then ends
 * PRUNED), and stops the run when the trial's `timeoutMs` has run out. Stops go through
 * `ctx.requestStop`, so `afterFit` hooks (restoring best weights, reports) still run.
 */
export class TrialReporter implements Callback {
  readonly name: string;
  readonly order = ORDER.MONITOR;
  readonly options: Readonly<z.output<typeof optionsSchema>>;

  constructor(
    readonly trial: Trial,
    options: TrialReporterOptions = {},
  ) {
    this.options = parseOptions("TrialReporter", optionsSchema, options);
    this.name = this.options.name ?? "TrialReporter";
  }

  async afterEpoch(ctx: HookContext): Promise<void> {
    const epoch = ctx.state.epoch;
    // an epoch cut short by CancelEpoch has no complete logs (core records only complete epochs)
    if (ctx.state.history.at(-1)?.epoch !== epoch) return;
    const value = monitorValue(ctx.logs, this.options.monitor, this.name, `the end of epoch ${epoch}`);
    await this.trial.report(value, epoch);
    if (!this.options.prune || ctx.stopRequested || !(await this.trial.shouldPrune())) return;
    if (this.trial.signal.aborted) return; // the batch hook below says why
    this.trial.prune(`pruned by the ${this.trial.prunerName} pruner at epoch ${epoch} (${this.options.monitor} ${formatValue(value)})`);
    ctx.requestStop(`trial ${this.trial.number} ${this.trial.pruneRequested}`, { trial: this.trial.number, epoch, value });
  }

  afterBatch(ctx: BatchContext): void {
    if (this.trial.signal.aborted && !ctx.stopRequested) ctx.requestStop(`trial ${this.trial.number}: ${String((this.trial.signal.reason as Error | undefined)?.message ?? "aborted")}`);
  }
}
