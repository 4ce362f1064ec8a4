import { parseOptions } from "@fitloop/core";
import { z } from "zod";

const count = (what: string, min: number) => z.number({ message: `must be an integer >= ${min} (${what})` }).int({ message: `must be an integer >= ${min} (${what})` }).min(min, { message: `must be an integer >= ${min} (${what})` });

export const partialSchema = z.enum(["step", "drop"], { message: 'must be "step" (the epoch\'s last batch closes a partial group and steps with it) or "drop" (a partial group at the end of an epoch is not applied)' });

const optionsSchema = z.strictObject({
  epochs: count("epochs of the run", 0),
  batchesPerEpoch: count("micro-batches per epoch, e.g. tensorData(...).batchesPerEpoch", 0),
  steps: count("micro-batches per optimizer step, as given to GradAccumulation", 1),
  partial: partialSchema.default("step"),
});

export type OptimizerStepsOptions = z.input<typeof optionsSchema>;

/**
 * How many optimizer steps a run with `GradAccumulation({ steps, partial })` takes: groups do not
 * span epochs, so each epoch has `ceil(batchesPerEpoch / steps)` (`partial: "step"`, the default)
 * or `floor(batchesPerEpoch / steps)` (`"drop"`). Size step-based schedules with it (a one-cycle
 * schedule's `totalSteps`): they see optimizer steps, not micro-batches. Assumes no batch is
 * cancelled and the data source knows its length (a stream drops its partial group: use `"drop"`).
 */
export function optimizerSteps(options: OptimizerStepsOptions): number {
  const o = parseOptions("optimizerSteps", optionsSchema, options);
  const perEpoch = o.partial === "step" ? Math.ceil(o.batchesPerEpoch / o.steps) : Math.floor(o.batchesPerEpoch / o.steps);
  return o.epochs * perEpoch;
}
