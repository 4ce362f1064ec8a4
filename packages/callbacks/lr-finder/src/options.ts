import * as tf from "@tensorflow/tfjs-core";
import { LOSS_NAMES, type Callback, type DataSource, type Logger, type LossFn, type LossName, type MetricSpec, type PluginClass } from "@fitloop/core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { z } from "zod";
import type { SweepMode } from "./curve.js";
import { SUGGESTION_NAMES, type SuggestionName } from "./suggest.js";
import { confidenceSchema, type ConfidenceThresholds } from "./confidence.js";

const positive = (what: string) => z.number({ message: `must be a finite number > 0 (${what})` }).gt(0, { message: `must be > 0 (${what})` }).finite({ message: `must be finite (${what})` });
const flag = z.boolean({ message: "must be true or false" });

/** The sweep's options (shared by `LRRangeTest` and `findLearningRate`); defaults are fastai's `lr_find`. */
export const sweepShape = {
  startLr: positive("the first learning rate of the sweep").default(1e-7),
  endLr: positive("where the sweep would end after `steps` steps").default(10),
  steps: z.number({ message: "must be an integer >= 6" }).int({ message: "must be an integer >= 6" }).min(6, { message: "must be an integer >= 6 (fastai's minimum; suggestions skip the last 5 points)" }).max(1_000_000, { message: "must be <= 1000000" }).default(100),
  mode: z.enum(["exponential", "linear"], { message: 'must be "exponential" (fastai: start * (end/start)^(i/steps)) or "linear"' }).default("exponential"),
  smoothing: z.number({ message: "must be a number in [0, 1)" }).min(0, { message: "must be in [0, 1): the weight of the past in the moving average (fastai's beta, 0.98)" }).lt(1, { message: "must be in [0, 1): the weight of the past in the moving average (fastai's beta, 0.98)" }).default(0.98),
  stopDivergence: flag.default(true),
  divergenceFactor: z.number({ message: "must be a number > 1" }).gt(1, { message: "must be > 1: stop when the smoothed loss exceeds this multiple of the best (fastai: 4)" }).finite({ message: "must be finite" }).default(4),
};

/** Cross-field checks of the sweep; runs even when other options are invalid, so every problem is listed. */
export function checkSweep(o: { startLr?: unknown; endLr?: unknown }, ctx: z.RefinementCtx): void {
  const { startLr, endLr } = o;
  if (typeof startLr === "number" && typeof endLr === "number" && startLr > 0 && endLr > 0 && !(startLr < endLr)) {
    ctx.addIssue({ code: "custom", path: ["endLr"], message: `must be larger than startLr (${startLr}), got ${endLr}` });
  }
}

const whenObject = { when: (payload: { value: unknown }) => typeof payload.value === "object" && payload.value !== null };

export const rangeTestSchema = z.strictObject({ ...sweepShape, name: z.string({ message: "must be a non-empty string" }).min(1, { message: "must be a non-empty string" }).optional() }).superRefine(checkSweep, whenObject);

export interface SweepOptions {
  /** First learning rate (default 1e-7). */
  startLr?: number;
  /** The sweep's end: step `i` runs at `startLr * (endLr/startLr)^(i/steps)` (default 10; never reached, as in fastai). */
  endLr?: number;
  /** Steps (fastai's `num_it`, default 100); the run goes through as many epochs of the data as it needs. */
  steps?: number;
  /** `exponential` (default) or `linear` spacing of the learning rates. */
  mode?: SweepMode;
  /** Weight of the past in the bias-corrected moving average of the loss (fastai's `beta`, default 0.98). */
  smoothing?: number;
  /** Stop when the smoothed loss exceeds `divergenceFactor` times the best one, or is not finite (default true). */
  stopDivergence?: boolean;
  /** Default 4 (fastai). */
  divergenceFactor?: number;
}

export interface RangeTestOptions extends SweepOptions {
  /** Plugin name (default `LRRangeTest`). */
  name?: string;
}
export type ResolvedSweep = Required<SweepOptions>;

const isLayersModel = (v: unknown) => typeof v === "object" && v !== null && typeof (v as { apply?: unknown }).apply === "function" && Array.isArray((v as { trainableWeights?: unknown }).trainableWeights);
const isFunction = (v: unknown) => typeof v === "function";

export const finderSchema = z
  .strictObject({
    model: z.custom<LayersModel>(isLayersModel, { message: "must be a tfjs-layers model (tf.sequential() or tf.model())" }),
    optimizer: z.custom<tf.Optimizer>((v) => v instanceof tf.Optimizer, { message: "must be a tfjs optimizer instance, e.g. tf.train.sgd(0.01)" }),
    loss: z.union([z.enum(LOSS_NAMES), z.custom<LossFn>(isFunction)], { message: `must be one of ${LOSS_NAMES.join(", ")} or a function (yTrue, yPred) => tf.Tensor` }),
    metrics: z.array(z.union([z.literal("acc"), z.literal("accuracy"), z.record(z.string(), z.custom<LossFn>(isFunction))]), { message: 'must be an array of "acc", "accuracy" or { name: (yTrue, yPred) => tf.Tensor }' }).optional(),
    train: z.custom<DataSource>((v) => typeof v === "object" && v !== null && typeof (v as DataSource).batches === "function", { message: "must be a data source (tensorData(xs, ys, { batchSize }), a DataLoader, or an object with batches())" }),
    callbacks: z
      .array(
        z
          .custom<Callback | PluginClass>((v) => typeof v === "function" || (typeof v === "object" && v !== null), { message: "must be a plugin instance, a plugin class or an object of hooks" })
          // a sweep is thrown away afterwards: a plugin that saves checkpoints would leave its files (and move `latest`)
          .refine((v) => typeof v !== "object" || v === null || (typeof (v as Callback).batchCheckpoint !== "function" && typeof (v as Callback).epochCheckpoint !== "function"), {
            message: "saves at the checkpoint safe points (a checkpoint plugin?): the sweep's checkpoints would be left behind; pass only what the run needs (a normaliser, say)",
          }),
        { message: "must be an array of plugins" },
      )
      .optional(),
    ...sweepShape,
    suggest: z.enum(SUGGESTION_NAMES as [SuggestionName, ...SuggestionName[]], { message: `must be one of ${SUGGESTION_NAMES.join(", ")}` }).default("valley"),
    confidence: confidenceSchema.optional(),
    seed: z.number({ message: "must be an integer" }).int({ message: "must be an integer" }).refine(Number.isSafeInteger, { message: "must be a safe integer" }).default(0),
    logger: z.custom<Logger>((v) => typeof v === "object" && v !== null && ["debug", "info", "warn", "error"].every((k) => typeof (v as Record<string, unknown>)[k] === "function"), { message: "must be a logger (debug/info/warn/error)" }).optional(),
  })
  .superRefine(checkSweep, whenObject);

export interface FindLearningRateOptions extends SweepOptions {
  model: LayersModel;
  /** The optimizer you will train with (its state and learning rate are restored afterwards). */
  optimizer: tf.Optimizer;
  loss: LossName | LossFn;
  metrics?: MetricSpec[];
  /** Training data; the sweep cycles through its epochs (from epoch 0) until it has done `steps` steps. */
  train: DataSource;
  /** Plugins the run needs (a normaliser, gradient clipping, ...); their states are restored afterwards. */
  callbacks?: Array<Callback | PluginClass>;
  /** Which suggestion becomes `result.lr` (default `valley`, as fastai). */
  suggest?: SuggestionName;
  /** Thresholds of the confidence verdict (see the README). */
  confidence?: ConfidenceThresholds;
  /** Seed of the run's randomness (dropout); the global `Math.random` is never advanced. Default 0. */
  seed?: number;
  logger?: Logger;
}
