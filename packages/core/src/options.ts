import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import type { Callback } from "./callback.js";
import type { DataSource } from "./data.js";
import type { PluginClass } from "./di.js";
import { OptionsError } from "./errors.js";
import { LOSS_NAMES } from "./losses.js";
import { isObjectMember } from "./logs.js";
import { nearest } from "./suggest.js";

/** Validates `value` with a zod schema; every problem is listed in one `OptionsError`. */
export function parseOptions<T>(owner: string, schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new OptionsError(
    owner,
    r.error.issues.map((i) => {
      const path = i.path.map(String).join(".");
      // a typo'd option must not be silently ignored: say what the accepted names are (of the object
      // the key is in: `dataChecks: { evry }` lists dataChecks' keys, not the top level's)
      const at = i.code === "unrecognized_keys" ? objectAt(schema, i.path) : undefined;
      if (i.code === "unrecognized_keys" && at) {
        const accepted = Object.keys(at.shape);
        const elsewhere = i.path.length === 0 ? ELSEWHERE.get(schema) ?? [] : [];
        const named = i.keys.map((k) => `"${k}"${hintFor(k, accepted, elsewhere)}`);
        return { path: path || i.keys.join(", "), message: `unknown option${i.keys.length > 1 ? "s" : ""} ${named.join(", ")}; accepted: ${accepted.join(", ")}` };
      }
      return { path, message: i.message };
    }),
  );
}

/** The object schema at `path` inside `schema` (through optional/nullable wrappers), if there is one. */
function objectAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodObject | undefined {
  const unwrap = (s: unknown): unknown => (s instanceof z.ZodOptional || s instanceof z.ZodNullable ? unwrap(s.unwrap()) : s);
  let s = unwrap(schema);
  for (const key of path) {
    if (!(s instanceof z.ZodObject) || typeof key !== "string") return undefined;
    s = unwrap((s.shape as Record<string, unknown>)[key]);
  }
  return s instanceof z.ZodObject ? s : undefined;
}

/** Options that belong to another call (`epochs` given to `new Trainer`, `batchSize` to `fit`). */
interface Elsewhere {
  readonly where: string;
  readonly keys: readonly string[];
}
const ELSEWHERE = new WeakMap<z.ZodType, readonly Elsewhere[]>();

/** ` (did you mean "x"?)` for the nearest accepted key, else the nearest key of another call, else "". */
function hintFor(key: string, accepted: readonly string[], elsewhere: readonly Elsewhere[]): string {
  const here = nearest(key, accepted);
  if (here !== undefined) return ` (did you mean "${here}"?)`;
  for (const e of elsewhere) {
    const there = nearest(key, e.keys);
    if (there === key) return ` (it is an option of ${e.where})`;
    if (there !== undefined) return ` (did you mean "${there}"? it is an option of ${e.where})`;
  }
  return "";
}

const isLayersModel = (v: unknown) =>
  typeof v === "object" && v !== null && typeof (v as { apply?: unknown }).apply === "function" && Array.isArray((v as { trainableWeights?: unknown }).trainableWeights);
const isDataSource = (v: unknown): v is DataSource => typeof v === "object" && v !== null && typeof (v as DataSource).batches === "function";
// A plugin class is a `class`, or an old-style (ES5, or compiled to ES5) constructor: with methods on
// its prototype chain (inherited ones too: `class Quiet extends Base {}` compiled to ES5 has only
// `constructor` of its own) or setting its hooks on `this` (class fields compiled to ES5). An arrow
// function has no prototype (it would fail as "not a constructor"), and a plain `function (ctx) {}`
// would be constructed as a plugin with no hooks, so never be called: both are refused.
const isPluginClassLike = (v: (...a: never[]) => unknown): boolean => {
  const proto = (v as { prototype?: unknown }).prototype;
  if (typeof proto !== "object" || proto === null) return false;
  const source = Function.prototype.toString.call(v);
  if (/^class[\s{]/.test(source)) return true;
  for (let o: object | null = proto; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    if (Object.getOwnPropertyNames(o).some((k) => k !== "constructor")) return true;
  }
  return /\bthis\s*(\.|\[)/.test(source);
};
const isCallback = (v: unknown): v is Callback | PluginClass => (typeof v === "function" && isPluginClassLike(v as (...a: never[]) => unknown)) || (typeof v === "object" && v !== null && !Array.isArray(v));

export const trainerOptionsSchema = z.strictObject({
  model: z.custom<unknown>(isLayersModel, { message: "must be a tfjs-layers model (tf.sequential() or tf.model())" }),
  // v != null first: tfjs's Optimizer[Symbol.hasInstance] reads properties of what it is given
  optimizer: z.custom<tf.Optimizer>((v) => v != null && typeof v === "object" && v instanceof tf.Optimizer, { message: "must be a tfjs optimizer instance, e.g. tf.train.adam(1e-3)" }),
  loss: z.union([z.enum(LOSS_NAMES), z.custom<(...a: never[]) => unknown>((v) => typeof v === "function")], {
    message: `must be one of ${LOSS_NAMES.join(", ")} or a function (yTrue, yPred) => tf.Tensor`,
  }),
  metrics: z
    .array(
      z.union([z.literal("acc"), z.literal("accuracy"), z.record(z.string().refine((k) => !isObjectMember(k), { message: "a name every JavaScript object already has (constructor, toString, ...) cannot name a metric: logs are plain objects" }), z.custom<(...a: never[]) => unknown>((v) => typeof v === "function"))], {
        message: 'must be "acc", "accuracy" or { name: (yTrue, yPred) => tf.Tensor }',
      }),
    )
    .optional(),
  callbacks: z.array(z.custom<Callback | PluginClass>(isCallback, { message: "must be a plugin instance, a plugin class or an object of hooks such as { afterEpoch: (ctx) => ... } (a bare function is neither)" })).optional(),
  hookTimeoutMs: z.number().gt(0, { message: "must be a number of milliseconds > 0" }).optional(),
  yieldEveryMs: z.union([z.number().min(0), z.literal(false)], { message: "must be a number of milliseconds >= 0 (0: after every batch) or false (never)" }).optional(),
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

const TENSOR_DATA_KEYS = ["batchSize", "shuffle", "dropLast"] as const;
ELSEWHERE.set(trainerOptionsSchema, [
  { where: "trainer.fit({ ... })", keys: Object.keys(fitOptionsSchema.shape) },
  { where: "the data source: tensorData(xs, ys, { batchSize })", keys: TENSOR_DATA_KEYS },
]);
ELSEWHERE.set(fitOptionsSchema, [
  { where: "new Trainer({ ... })", keys: Object.keys(trainerOptionsSchema.shape) },
  { where: "the data source: tensorData(xs, ys, { batchSize })", keys: TENSOR_DATA_KEYS },
]);
