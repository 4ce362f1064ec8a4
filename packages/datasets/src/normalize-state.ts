import { StateError } from "@fitloop/core";
import { z } from "zod";
import { shapeIssue } from "./validate.js";

/** The statistics a `Normalizer` saves, once checked: what `loadStateDict` may install. */
export interface NormalizerState {
  readonly per: "feature" | "channel" | "global";
  readonly sampleShape: readonly number[];
  readonly mean: Float32Array;
  readonly std: Float32Array;
  readonly count: number;
}

const describe = (v: unknown) => (typeof v === "number" ? String(v) : (JSON.stringify(v) ?? String(v)));

/** A vector of statistics: a Float32Array (as saved), a Float64Array or a plain array (after JSON), every value finite. */
const vector = (what: "mean" | "std") =>
  z
    .custom<ArrayLike<number>>((v) => v instanceof Float32Array || v instanceof Float64Array || Array.isArray(v), {
      message: "must be a Float32Array (or an array of numbers)",
    })
    .superRefine((v, ctx) => {
      for (let i = 0; i < v.length; i++) {
        const x = v[i];
        if (typeof x !== "number" || !Number.isFinite(x)) {
          ctx.addIssue({ code: "custom", path: [i], message: `is ${describe(x)}; statistics must be finite numbers` });
          return;
        }
        if (what === "std" && x < 0) {
          ctx.addIssue({ code: "custom", path: [i], message: `is ${x}; a standard deviation is >= 0` });
          return;
        }
      }
    });

const stateSchema = z.strictObject({
  per: z.enum(["feature", "channel", "global"], { message: 'must be "feature", "channel" or "global"' }),
  sampleShape: z.custom<readonly number[]>((v) => shapeIssue(v, false) === undefined, { message: "must be a non-empty array of integers >= 1 (the shape of one sample)" }),
  mean: vector("mean"),
  std: vector("std"),
  count: z.number({ message: "must be an integer >= 1 (samples the statistics came from)" }).int({ message: "must be an integer >= 1 (samples the statistics came from)" }).min(1, { message: "must be an integer >= 1 (samples the statistics came from)" }),
});

/**
 * Checks a saved `Normalizer` state completely before anything is installed (zod, strict: unknown
 * keys are refused too). `groupsOf` gives the number of statistics a sample shape needs. Throws a
 * `StateError` that names the normaliser and every offending key (`state.mean[3]`, `state.count`).
 */
export function parseNormalizerState(owner: string, per: string, state: unknown, groupsOf: (shape: readonly number[]) => number): NormalizerState {
  if (typeof state !== "object" || state === null || Array.isArray(state) || ArrayBuffer.isView(state)) {
    throw new StateError(`${owner}: the saved state must be an object { per, sampleShape, mean, std, count }, got ${state === null ? "null" : Array.isArray(state) ? "an array" : typeof state}`);
  }
  const r = stateSchema.safeParse(state);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const path = i.path.reduce<string>((p, k) => (typeof k === "number" ? `${p}[${k}]` : `${p}.${String(k)}`), "state");
      return i.code === "unrecognized_keys" ? `state: unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${k}"`).join(", ")}` : `${path}: ${i.message}`;
    });
    throw new StateError(`${owner}: invalid saved state, nothing was loaded:\n  - ${lines.join("\n  - ")}`);
  }
  const s = r.data;
  if (s.per !== per) throw new StateError(`${owner}: state.per is "${s.per}" (statistics per ${s.per}), but this normalizer is per ${per}; nothing was loaded`);
  const groups = groupsOf(s.sampleShape);
  const wrong = (["mean", "std"] as const).filter((k) => s[k].length !== groups);
  if (wrong.length) {
    throw new StateError(
      `${owner}: ${wrong.map((k) => `state.${k} has ${s[k].length} values`).join(", ")}; per ${per} for samples [${s.sampleShape.join(", ")}] needs ${groups}; nothing was loaded`,
    );
  }
  return { per: s.per, sampleShape: [...s.sampleShape], mean: Float32Array.from(s.mean), std: Float32Array.from(s.std), count: s.count };
}
