import { parseOptions, resolveMonitorMode, type MonitorMode } from "@fitloop/core";
import { z } from "zod";

const nonNegativeInt = (what: string) => z.number({ message: `must be an integer >= 0 (${what})` }).int({ message: `must be an integer >= 0 (${what})` }).min(0, { message: `must be an integer >= 0 (${what})` });
const finite = (what: string) => z.number({ message: `must be a finite number (${what})` });
const flag = z.boolean({ message: "must be true or false" });
const nonEmpty = z.string({ message: "must be a non-empty string" }).min(1, { message: "must be a non-empty string" });

/** Keras' `EarlyStopping` options and defaults (camelCase), plus Lightning's thresholds and finite check. */
export const earlyStoppingSchema = z
  .strictObject({
    monitor: z.string({ message: "must be the name of a logged metric, e.g. val_loss" }).min(1, { message: "must be the name of a logged metric, e.g. val_loss" }).default("val_loss"),
    mode: z.enum(["auto", "min", "max"], { message: 'must be "auto", "min" or "max"' }).default("auto"),
    minDelta: z.number({ message: "must be a number >= 0" }).min(0, { message: "must be >= 0 (the size of the change that counts as an improvement; Keras takes abs())" }).default(0),
    minDeltaMode: z.enum(["absolute", "relative"], { message: 'must be "absolute" or "relative"' }).default("absolute"),
    patience: nonNegativeInt("epochs without improvement before stopping").default(0),
    baseline: finite("the value the monitor must beat").optional(),
    startFromEpoch: nonNegativeInt("the first epoch that is monitored").default(0),
    stoppingThreshold: finite("stop as soon as the monitor is better than it").optional(),
    divergenceThreshold: finite("stop as soon as the monitor is worse than it").optional(),
    checkFinite: flag.default(true),
    restoreBestWeights: flag.default(false),
    verbose: flag.default(false),
    name: nonEmpty.optional(),
    stateKey: nonEmpty.optional(),
  })
  .superRefine(
    (o, ctx) => {
      // Runs even when other options are invalid (`when`), so every problem is listed at once:
      // guard each value's type here.
      const monitor = typeof o.monitor === "string" && o.monitor.length > 0 ? o.monitor : undefined;
      const mode = ["auto", "min", "max"].includes(o.mode) ? o.mode : undefined;
      if (monitor === undefined || mode === undefined) return;
      const direction = resolveMonitorMode(monitor, mode);
      if (direction === undefined) {
        ctx.addIssue({ code: "custom", path: ["mode"], message: `"auto" cannot tell whether "${monitor}" should go down or up; pass mode "min" or "max"` });
        return;
      }
      const stop = o.stoppingThreshold;
      const diverge = o.divergenceThreshold;
      if (typeof stop === "number" && typeof diverge === "number" && Number.isFinite(stop) && Number.isFinite(diverge)) {
        const good = direction === "min" ? stop < diverge : stop > diverge;
        if (!good) {
          const side = direction === "min" ? "below" : "above";
          ctx.addIssue({ code: "custom", path: ["stoppingThreshold"], message: `must be better than divergenceThreshold (${side} it in ${direction} mode), got stoppingThreshold ${stop} and divergenceThreshold ${diverge}` });
        }
      }
    },
    { when: (payload) => typeof payload.value === "object" && payload.value !== null },
  );

/** What `new EarlyStopping(options)` takes; every field is optional. */
export interface EarlyStoppingOptions {
  /** The logged value to watch (default `val_loss`; `val_*` needs `validation` data in `fit()`). */
  monitor?: string;
  /** `min`, `max`, or `auto` (default) from the name: losses go down, accuracies up; other names need a mode. */
  mode?: "auto" | "min" | "max";
  /** An improvement must be larger than this (default 0). */
  minDelta?: number;
  /** `absolute` (default, Keras): by `minDelta`; `relative` (PyTorch's `rel`): by `minDelta * |best|`. */
  minDeltaMode?: "absolute" | "relative";
  /** Epochs without improvement before stopping (default 0, which stops like 1: see the README). */
  patience?: number;
  /** The value to beat: the wait resets only on epochs that beat both the best and the baseline. */
  baseline?: number;
  /** Epochs before this one are not monitored (default 0). */
  startFromEpoch?: number;
  /** Stop as soon as the monitor is better than this (Lightning's `stopping_threshold`). */
  stoppingThreshold?: number;
  /** Stop as soon as the monitor is worse than this (Lightning's `divergence_threshold`). */
  divergenceThreshold?: number;
  /** Stop as soon as the monitor is NaN or infinite (default true, Lightning's `check_finite`). */
  checkFinite?: boolean;
  /** At the end of the run, whatever ended it, set the weights of the best epoch (default false). */
  restoreBestWeights?: boolean;
  /** Log a line when it stops and when it restores weights (default false). */
  verbose?: boolean;
  /** Plugin name (default `EarlyStopping`); two instances in one run need different names. */
  name?: string;
  /** Key of this plugin's state in checkpoints (default `early-stopping`). */
  stateKey?: string;
}

export type ResolvedEarlyStoppingOptions = z.output<typeof earlyStoppingSchema> & { readonly direction: MonitorMode };

/** Validates options (one `OptionsError` lists every problem) and resolves the direction of `monitor`. */
export function resolveEarlyStoppingOptions(options: EarlyStoppingOptions = {}, owner = "EarlyStopping"): ResolvedEarlyStoppingOptions {
  const o = parseOptions(owner, earlyStoppingSchema, options);
  // the schema refuses a mode it cannot resolve
  return { ...o, direction: resolveMonitorMode(o.monitor, o.mode)! };
}
