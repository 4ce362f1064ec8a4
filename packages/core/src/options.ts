import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { Callback } from "./callback.js";
import type { DataSource } from "./data.js";
import type { PluginClass } from "./di.js";
import { OptionsError } from "./errors.js";
import { LOSS_NAMES } from "./losses.js";
import { nearest } from "./suggest.js";

/** Validates `value` with a zod schema; every problem is listed in one `OptionsError`. */
export function parseOptions<T>(owner: string, schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const accepted = schema instanceof z.ZodObject ? Object.keys(schema.shape) : undefined;
  throw new OptionsError(
    owner,
    r.error.issues.map((i) => {
      const path = i.path.map(String).join(".");
      // a typo'd option must not be silently ignored: say what the accepted names are
      if (i.code === "unrecognized_keys" && accepted) {
        const hints = i.keys.map((k) => nearest(k, accepted)).filter((h): h is string => h !== undefined);
        const hint = hints.length ? ` (did you mean ${hints.map((h) => `"${h}"`).join(", ")}?)` : "";
        return { path: path || i.keys.join(", "), message: `unknown option${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${k}"`).join(", ")}${hint}; accepted: ${accepted.join(", ")}` };
      }
      return { path, message: i.message };
    }),
  );
}

const isLayersModel = (v: unknown) =>
  typeof v === "object" && v !== null && typeof (v as { apply?: unknown }).apply === "function" && Array.isArray((v as { trainableWeights?: unknown }).trainableWeights);
const isDataSource = (v: unknown): v is DataSource => typeof v === "object" && v !== null && typeof (v as DataSource).batches === "function";
// a class has a prototype; an arrow function does not (it would fail as "not a constructor")
const isCallback = (v: unknown): v is Callback | PluginClass => (typeof v === "function" && typeof (v as { prototype?: unknown }).prototype === "object") || (typeof v === "object" && v !== null && !Array.isArray(v));

export const trainerOptionsSchema = z.strictObject({
  model: z.custom<unknown>(isLayersModel, { message: "must be a tfjs-layers model (tf.sequential() or tf.model())" }),
  // v != null first: tfjs's Optimizer[Symbol.hasInstance] reads properties of what it is given
  optimizer: z.custom<tf.Optimizer>((v) => v != null && typeof v === "object" && v instanceof tf.Optimizer, { message: "must be a tfjs optimizer instance, e.g. tf.train.adam(1e-3)" }),
  loss: z.union([z.enum(LOSS_NAMES), z.custom<(...a: never[]) => unknown>((v) => typeof v === "function")], {
    message: `must be one of ${LOSS_NAMES.join(", ")} or a function (yTrue, yPred) => tf.Tensor`,
  }),
  metrics: z
    .array(
      z.union([z.literal("acc"), z.literal("accuracy"), z.record(z.string(), z.custom<(...a: never[]) => unknown>((v) => typeof v === "function"))], {
        message: 'must be "acc", "accuracy" or { name: (yTrue, yPred) => tf.Tensor }',
      }),
    )
    .optional(),
  callbacks: z.array(z.custom<Callback | PluginClass>(isCallback, { message: "must be a plugin instance, a plugin class or an object of hooks such as { afterEpoch: (ctx) => ... } (a bare function is neither)" })).optional(),
  hookTimeoutMs: z.number().gt(0, { message: "must be a number of milliseconds > 0" }).optional(),
  seed: z.number().int({ message: "must be an integer" }).optional(),
  dataChecks: z.strictObject({ every: z.number().int().min(0, { message: "must be an integer >= 0 (0 checks the first batch only)" }) }).optional(),
  logger: z.custom<unknown>((v) => typeof v === "object" && v !== null && typeof (v as { warn?: unknown }).warn === "function", { message: "must be a logger (info/warn/error/debug)" }).optional(),
  container: z.custom<unknown>((v) => typeof v === "object" && v !== null && typeof (v as { createChildContainer?: unknown }).createChildContainer === "function", { message: "must be a tsyringe container" }).optional(),
});

export const fitOptionsSchema = z.strictObject({
  epochs: z.number().int({ message: "must be an integer" }).min(1, { message: "must be >= 1" }),
  train: z.custom<DataSource>(isDataSource, { message: "must be a data source (tensorData(xs, ys, {batchSize}) or an object with batches())" }),
  validation: z.custom<DataSource>(isDataSource, { message: "must be a data source" }).optional(),
  initialEpoch: z.number().int().min(0).optional(),
  resumeFrom: z.custom<unknown>((v) => typeof v === "object" && v !== null, { message: "must be a run snapshot (ctx.snapshot() or trainer.snapshot())" }).optional(),
});
