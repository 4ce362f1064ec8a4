import { z } from "zod";
import { StateError } from "./errors.js";
import type { TrainerStateDict } from "./state.js";

/** One problem in a loaded or stored state: where (a key path) and what is wrong. */
export type StateIssue = StateError["issues"][number];

// Any JS number, NaN and Infinity included (a diverged epoch's loss is NaN, and is history).
const anyNumber = z.custom<number>((v) => typeof v === "number", { message: "must be a number" });
const COUNT = "must be an integer >= 0";
const count = z.number({ message: COUNT }).int({ message: COUNT }).min(0, { message: COUNT }).max(Number.MAX_SAFE_INTEGER, { message: COUNT });
const UINT32 = "must be an integer in [0, 2^32)";
const uint32 = z.number({ message: UINT32 }).int({ message: UINT32 }).min(0, { message: UINT32 }).max(0xffffffff, { message: UINT32 });

const aggregate = z.strictObject({
  reduce: z.enum(["mean", "sum", "min", "max", "last"], { message: "must be one of mean, sum, min, max, last" }),
  sum: anyNumber,
  count,
  min: anyNumber,
  max: anyNumber,
  last: anyNumber,
});

const OBJECT = (what: string) => ({ message: `must be ${what} (an object)` });
const history = z.array(z.strictObject({ epoch: count, logs: z.record(z.string(), anyNumber, OBJECT("a record of numbers")) }, OBJECT("an epoch record { epoch, logs }")), { message: "must be an array of epoch records { epoch, logs }" });

const schema = z.strictObject(
  {
    train: z.strictObject(
      {
        epoch: count,
        step: count,
        globalBatch: count,
        batchIndex: count,
        cursor: z.strictObject({ epoch: count, batchIndex: count }, OBJECT("the data cursor { epoch, batchIndex }")),
        history,
        epochProgress: z
          .strictObject({ samples: count, sums: z.record(z.string(), anyNumber, OBJECT("a record of numbers")), plugins: z.record(z.string(), aggregate, OBJECT("a record of log aggregates")) }, OBJECT("the epoch's totals { samples, sums, plugins }"))
          .optional(),
      },
      OBJECT("the position { epoch, step, globalBatch, batchIndex, cursor, history, epochProgress? }"),
    ),
    rng: z
      .tuple([uint32, uint32, uint32, uint32], { message: "must be four uint32 words (xoshiro128** state) or null" })
      .refine((s) => s.some((w) => w !== 0), { message: "the all-zero xoshiro state is invalid (the generator would only return 0)" })
      .nullable(),
    plugins: z.record(z.string(), z.custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v), { message: "must be a plugin's state dict (an object)" }), OBJECT("a record of plugin states by stateKey")),
  },
  OBJECT("a trainer state { train, rng, plugins }"),
);

// A plugin may not have these stateKeys (plugin-check refuses them): a state that has them was forged.
const RESERVED_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** `train.history[2].logs.val_loss`: keys joined by dots (stateKeys such as `lr-schedule` too), indices in brackets. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** A short description of a received value, for messages (never its whole content). */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === "object") {
    const proto = Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null;
    const name = proto?.constructor?.name;
    return proto === null || proto === Object.prototype ? "an object" : `a ${name || "class instance"}`;
  }
  return typeof v;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const p of path) {
    if (typeof v !== "object" || v === null || !Object.prototype.hasOwnProperty.call(v, p)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** Checks a whole trainer state dict; one `StateError` lists every problem by key. */
export function parseTrainerStateDict(dict: unknown): TrainerStateDict {
  if (typeof dict !== "object" || dict === null || Array.isArray(dict)) {
    throw new StateError("the saved trainer state is invalid", [{ path: "(state)", message: `must be an object { train, rng, plugins }, got ${describeValue(dict)}` }]);
  }
  const r = schema.safeParse(dict);
  const issues: StateIssue[] = [];
  if (!r.success) {
    for (const i of r.error.issues) {
      if (i.code === "unrecognized_keys") {
        for (const k of i.keys) issues.push({ path: formatPath([...i.path, k]), message: "is not part of a trainer state (unknown key)" });
        continue;
      }
      const got = valueAt(dict, i.path);
      const missing = got === undefined && !Object.prototype.hasOwnProperty.call(valueAt(dict, i.path.slice(0, -1)) ?? {}, i.path.at(-1) ?? "");
      issues.push({ path: formatPath(i.path) || "(state)", message: `${i.message}, ${missing ? "missing" : `got ${describeValue(got)}`}` });
    }
  }
  // zod's records skip a "__proto__" key without checking its value: no trainer field may have one
  const protoKeys = (v: unknown, path: PropertyKey[]): void => {
    if (typeof v !== "object" || v === null) return;
    if (Array.isArray(v)) return v.forEach((x, i) => protoKeys(x, [...path, i]));
    for (const k of Object.keys(v)) {
      if (k === "__proto__") issues.push({ path: formatPath([...path, k]), message: "is not a key a trainer state has (a forged state?)" });
      else protoKeys((v as Record<string, unknown>)[k], [...path, k]);
    }
  };
  protoKeys((dict as { train?: unknown }).train, ["train"]);
  const plugins = (dict as { plugins?: unknown }).plugins;
  if (typeof plugins === "object" && plugins !== null) {
    for (const k of Object.keys(plugins)) if (RESERVED_KEYS.has(k)) issues.push({ path: formatPath(["plugins", k]), message: `"${k}" cannot be a plugin's stateKey (reserved)` });
  }
  const train = r.success ? r.data.train : undefined;
  if (train) {
    // one record per finished epoch, in order, none after the cursor
    train.history.forEach((h, i) => {
      if (h.epoch > train.cursor.epoch) issues.push({ path: `train.history[${i}].epoch`, message: `is ${h.epoch}, after the cursor's epoch ${train.cursor.epoch}` });
      if (i > 0 && h.epoch <= train.history[i - 1]!.epoch) issues.push({ path: `train.history[${i}].epoch`, message: `is ${h.epoch}, not after the previous record's ${train.history[i - 1]!.epoch}` });
    });
  }
  if (issues.length) throw new StateError("the saved trainer state is invalid", issues);
  return dict as TrainerStateDict;
}
