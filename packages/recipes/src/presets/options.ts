import * as tf from "@tensorflow/tfjs-core";
import type { CheckpointOptions, CheckpointStore } from "@fitloop/checkpoint";
import type { CSVLoggerOptions } from "@fitloop/csv-logger";
import type { EarlyStoppingOptions } from "@fitloop/early-stopping";
import type { GradClipOptions } from "@fitloop/grad-clip";
import type { Schedule } from "@fitloop/lr-schedule";
import type { ProgressBarOptions } from "@fitloop/progress";
import type { ReportOptions } from "@fitloop/report";
import type { TerminateOnNaNOptions } from "@fitloop/terminate-on-nan";
import type { WeightDecayOptions } from "@fitloop/weight-decay";
import { z } from "zod";

/** Warmup then cosine to `minLr`; `warmup` is the share of all steps (0.05 = 5 %). */
export interface WarmupCosineOptions {
  kind: "warmup-cosine";
  warmup?: number;
  minLr?: number;
}

/** PyTorch's OneCycleLR on the learning rate (peak `maxLr`) and momentum / Adam's beta1. */
export interface OneCycleScheduleOptions {
  kind: "1cycle";
  pctStart?: number;
  divFactor?: number;
  finalDivFactor?: number;
  cycleMomentum?: boolean;
}

export type ScheduleOption = "warmup-cosine" | "1cycle" | WarmupCosineOptions | OneCycleScheduleOptions | Schedule | false;

/** What the preset needs to know about the training data: a DataSource or DataLoader has both. */
export interface DataShape {
  /** Training samples (for the patience rule). */
  readonly size?: number;
  /** Batches per epoch (for the schedule's length). */
  readonly batchesPerEpoch?: number;
}

/**
 * Options of every preset. Every default can be replaced field by field (`clip: 0.5`, or
 * `clip: { by: "value", max: 0.1 }` for another mode; `earlyStopping: { minDelta: 1e-3 }` keeps the
 * preset's monitor and patience), and `false` leaves a plugin out.
 */
export interface PresetOptions {
  /** Epochs of the run: the schedule spans `epochs x stepsPerEpoch` steps. Required. */
  epochs: number;
  /** Optimizer steps per epoch; default `data.batchesPerEpoch`. Needed for a schedule. */
  stepsPerEpoch?: number;
  /** The training data source (its `size` and `batchesPerEpoch` are read, nothing else). */
  data?: DataShape;
  /** Training samples, for the patience rule; default `data.size`. */
  samples?: number;
  /** `adam` (default), `sgd` (with momentum 0.9) or your optimizer instance. */
  optimizer?: "adam" | "sgd" | tf.Optimizer;
  /** The peak learning rate (the constant one with `schedule: false`). */
  maxLr?: number;
  schedule?: ScheduleOption;
  /** Decoupled weight decay coefficient, or WeightDecay's options, or false. */
  weightDecay?: number | Partial<WeightDecayOptions> | false;
  /** Global-norm clipping limit, or GradClip's options, or false. */
  clip?: number | Partial<GradClipOptions> | false;
  /** Early stopping's patience (default by dataset size). */
  patience?: number;
  /** What early stopping and checkpoint ranking watch; default `val_loss` (needs validation data). */
  monitor?: string;
  earlyStopping?: Partial<EarlyStoppingOptions> | false;
  terminateOnNaN?: TerminateOnNaNOptions | false;
  /** A run directory: checkpoints in `dir/checkpoints`, the report in `dir/report`, the CSV log in `dir/metrics.csv`. */
  dir?: string;
  checkpointDir?: string;
  /** Checkpoint's options; `store` replaces the directory (e.g. a MemoryStore). */
  checkpoint?: (Partial<Omit<CheckpointOptions, "store">> & { store?: CheckpointStore }) | false;
  reportDir?: string;
  report?: Partial<ReportOptions> | false;
  /** CSVLogger's options (`path` replaces `dir/metrics.csv`), or false. */
  csv?: Partial<CSVLoggerOptions> | false;
  /** true (default: a bar on a terminal, lines otherwise), ProgressBar's options, or false. */
  progress?: boolean | ProgressBarOptions;
  /** The trainer's seed, passed on in `preset.trainer`. */
  seed?: number;
}

const plainObject = (what: string) => z.custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof tf.Optimizer), { message: `must be ${what}` });
const count = (what: string) => z.number({ message: `must be an integer >= 1 (${what})` }).int({ message: `must be an integer >= 1 (${what})` }).min(1, { message: `must be an integer >= 1 (${what})` });
const positive = (what: string) => z.number({ message: `must be a finite number > 0 (${what})` }).gt(0, { message: `must be > 0 (${what})` });
const dir = z.string({ message: "must be a directory path" }).min(1, { message: "must be a directory path" });
const isSchedule = (v: unknown) => typeof v === "function" && typeof (v as { description?: unknown }).description === "string";

const scheduleSchema = z.union(
  [
    z.literal(false),
    z.enum(["warmup-cosine", "1cycle"]),
    z.strictObject({
      kind: z.literal("warmup-cosine"),
      warmup: z.number().min(0, { message: "must be in [0, 1): the share of steps spent warming up" }).lt(1, { message: "must be < 1" }).optional(),
      minLr: z.number().min(0, { message: "must be >= 0" }).optional(),
    }),
    z.strictObject({
      kind: z.literal("1cycle"),
      pctStart: z.number().gt(0).lt(1, { message: "must be in (0, 1)" }).optional(),
      divFactor: positive("initial lr = maxLr / divFactor").optional(),
      finalDivFactor: positive("final lr = initial lr / finalDivFactor").optional(),
      cycleMomentum: z.boolean().optional(),
    }),
    z.custom<Schedule>(isSchedule),
  ],
  { message: 'must be "warmup-cosine", "1cycle", { kind: "warmup-cosine", warmup?, minLr? }, { kind: "1cycle", pctStart?, divFactor?, finalDivFactor?, cycleMomentum? }, a schedule from @fitloop/lr-schedule, or false' },
);

export const presetSchema = z.strictObject({
  epochs: count("the epochs of the run"),
  stepsPerEpoch: count("optimizer steps per epoch").optional(),
  data: z
    .custom<DataShape>((v) => typeof v === "object" && v !== null, { message: "must be the training data source (a DataSource or DataLoader)" })
    .optional(),
  samples: count("training samples").optional(),
  optimizer: z.union([z.enum(["adam", "sgd"]), z.custom<tf.Optimizer>((v) => v != null && typeof v === "object" && v instanceof tf.Optimizer)], { message: 'must be "adam", "sgd" or a tfjs optimizer instance' }).optional(),
  maxLr: positive("the peak learning rate").optional(),
  schedule: scheduleSchema.optional(),
  weightDecay: z.union([z.literal(false), z.number().min(0, { message: "must be >= 0" }), plainObject("WeightDecay's options")], { message: "must be a number >= 0, WeightDecay's options or false" }).optional(),
  clip: z.union([z.literal(false), positive("the largest global gradient norm"), plainObject("GradClip's options")], { message: "must be a number > 0 (the global norm limit), GradClip's options or false" }).optional(),
  patience: z.number().int({ message: "must be an integer >= 0" }).min(0, { message: "must be an integer >= 0" }).optional(),
  monitor: z.string().min(1, { message: "must be a logged metric's name, e.g. val_loss" }).optional(),
  earlyStopping: z.union([z.literal(false), plainObject("EarlyStopping's options")], { message: "must be EarlyStopping's options or false" }).optional(),
  terminateOnNaN: z.union([z.literal(false), plainObject("TerminateOnNaN's options")], { message: "must be TerminateOnNaN's options or false" }).optional(),
  dir: dir.optional(),
  checkpointDir: dir.optional(),
  checkpoint: z.union([z.literal(false), plainObject("Checkpoint's options")], { message: "must be Checkpoint's options or false" }).optional(),
  reportDir: dir.optional(),
  report: z.union([z.literal(false), plainObject("Report's options")], { message: "must be Report's options or false" }).optional(),
  csv: z.union([z.literal(false), plainObject("CSVLogger's options")], { message: "must be CSVLogger's options or false" }).optional(),
  progress: z.union([z.boolean(), plainObject("ProgressBar's options")], { message: "must be true, false or ProgressBar's options" }).optional(),
  seed: z.number().int({ message: "must be an integer" }).optional(),
});

export type ParsedPresetOptions = z.output<typeof presetSchema>;
