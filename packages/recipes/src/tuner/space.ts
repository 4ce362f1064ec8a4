/**
 * The search space: Optuna's three distributions (`FloatDistribution`, `IntDistribution`,
 * `CategoricalDistribution`) with their JSON form, internal values (a categorical's is the index of
 * the choice) and Optuna's `RandomSampler` rules, so a study is the same whichever side samples it.
 */
import { parseOptions } from "@fitloop/core";
import { z } from "zod";
import { TunerError } from "./errors.js";
import { parsePyJson, pyFloatRepr, stringifyPy, type JsonValue } from "./json.js";

export type CategoricalChoice = string | number | boolean | null;

export interface FloatDistribution {
  readonly kind: "float";
  readonly low: number;
  readonly high: number;
  readonly log: boolean;
  /** A grid of `low + k * step`, or `null` for a continuous range. */
  readonly step: number | null;
}

export interface IntDistribution {
  readonly kind: "int";
  readonly low: number;
  readonly high: number;
  readonly log: boolean;
  readonly step: number;
}

export interface CategoricalDistribution<T extends CategoricalChoice = CategoricalChoice> {
  readonly kind: "categorical";
  readonly choices: readonly T[];
}

export type Distribution = FloatDistribution | IntDistribution | CategoricalDistribution;

/** Parameter name to distribution, e.g. `{ lr: logUniform(1e-5, 1e-1), optimizer: choice(["adam", "sgd"]) }`. */
export type SearchSpace = { readonly [name: string]: Distribution };

/** The value a distribution gives the objective: a number, or one of the choices. */
export type ParamValue<D extends Distribution> = D extends CategoricalDistribution<infer T> ? T : number;

/** The parameters of a trial of space `S`, typed per name. */
export type Params<S extends SearchSpace> = { readonly [K in keyof S]: ParamValue<S[K]> };

const finite = z.number({ message: "must be a finite number" }).finite({ message: "must be a finite number" });
const integer = z.number({ message: "must be an integer" }).int({ message: "must be an integer" });

/** `high - low` is a whole number of steps (within float error): Optuna would otherwise move `high`, with only a warning. */
function multipleOfStep(low: number, high: number, step: number): boolean {
  const k = (high - low) / step;
  return Math.abs(k - Math.round(k)) < 1e-9 * Math.max(1, k);
}

const rangeSchema = (positive: boolean) =>
  z
    .strictObject({ low: positive ? finite.gt(0, { message: "must be > 0 on a log scale" }) : finite, high: finite, step: finite.gt(0, { message: "must be > 0" }).optional() })
    .refine((o) => o.low <= o.high, { path: ["high"], message: "must be >= low" })
    .refine((o) => o.step === undefined || multipleOfStep(o.low, o.high, o.step), { path: ["step"], message: "high - low must be a whole number of steps" });

const logRange = rangeSchema(true);
const linearRange = rangeSchema(false);

/** A float drawn uniformly in the log of `[low, high]`: learning rates, weight decay. Optuna's `suggest_float(name, low, high, log=True)`. */
export function logUniform(low: number, high: number): FloatDistribution {
  const o = parseOptions("logUniform", logRange, { low, high });
  return { kind: "float", low: o.low, high: o.high, log: true, step: null };
}

/** A float drawn uniformly in `[low, high]`, or on the grid `low + k * step`. Optuna's `suggest_float(name, low, high, step=step)`. */
export function uniform(low: number, high: number, options: { readonly step?: number } = {}): FloatDistribution {
  const o = parseOptions("uniform", linearRange, { low, high, ...options });
  return { kind: "float", low: o.low, high: o.high, log: false, step: o.step ?? null };
}

const intSchema = z
  .strictObject({ low: integer, high: integer, step: integer.min(1, { message: "must be an integer >= 1" }).optional(), log: z.boolean().optional() })
  .refine((o) => o.low <= o.high, { path: ["high"], message: "must be >= low" })
  .refine((o) => !o.log || o.low >= 1, { path: ["low"], message: "must be >= 1 on a log scale" })
  .refine((o) => !o.log || (o.step ?? 1) === 1, { path: ["step"], message: "must be 1 on a log scale (Optuna's rule)" })
  .refine((o) => (o.high - o.low) % (o.step ?? 1) === 0, { path: ["step"], message: "high - low must be a whole number of steps" });

/** An integer in `[low, high]` (both included), on the grid `low + k * step`, or log-uniform with `log: true`. Optuna's `suggest_int`. */
export function int(low: number, high: number, options: { readonly step?: number; readonly log?: boolean } = {}): IntDistribution {
  const o = parseOptions("int", intSchema, { low, high, ...options });
  return { kind: "int", low: o.low, high: o.high, log: o.log ?? false, step: o.step ?? 1 };
}

const choiceSchema = z
  .array(z.union([z.string(), finite, z.boolean(), z.null()], { message: "must be a string, finite number, boolean or null" }), { message: "must be an array" })
  .min(1, { message: "must have at least one choice" })
  .refine((c) => new Set(c).size === c.length, { message: "must not repeat a choice" });

const choiceOptions = z.strictObject({ choices: choiceSchema });

/** One of `choices`, each equally likely. Optuna's `suggest_categorical`; the journal stores the index. */
export function choice<const T extends CategoricalChoice>(choices: readonly T[]): CategoricalDistribution<T> {
  parseOptions("choice", choiceOptions, { choices });
  return { kind: "categorical", choices: [...choices] };
}

/**
 * Optuna's `distribution_to_json`: `{"name": "FloatDistribution", "attributes": {...}}` with the
 * attributes in Python's order and floats written as Python floats (`0.0`, `1e-05`), so the string
 * equals what Optuna writes for the same distribution.
 */
export function distributionToJson(d: Distribution): string {
  if (d.kind === "float") {
    const step = d.step === null ? "null" : pyFloatRepr(d.step);
    return `{"name": "FloatDistribution", "attributes": {"step": ${step}, "low": ${pyFloatRepr(d.low)}, "high": ${pyFloatRepr(d.high)}, "log": ${d.log}}}`;
  }
  if (d.kind === "int") return `{"name": "IntDistribution", "attributes": {"log": ${d.log}, "step": ${d.step}, "low": ${d.low}, "high": ${d.high}}}`;
  return `{"name": "CategoricalDistribution", "attributes": ${stringifyPy({ choices: d.choices })}}`;
}

/** A distribution in the journal that is not one Optuna 3.1 writes. */
export class DistributionFormatError extends Error {
  constructor(readonly json: string, why: string) {
    super(`not an Optuna distribution (${why}): ${json}`);
    this.name = "DistributionFormatError";
  }
}

type Attrs = { readonly [key: string]: JsonValue };
const num = (a: Attrs, k: string, json: string): number => {
  const v = a[k];
  if (typeof v !== "number") throw new DistributionFormatError(json, `${k} is not a number`);
  return v;
};
const optNum = (a: Attrs, k: string, json: string): number | null => (a[k] === null || a[k] === undefined ? null : num(a, k, json));

/** Optuna's `json_to_distribution`, including the deprecated classes and the abbreviated `{"type": ...}` form. */
export function distributionFromJson(json: string): Distribution {
  const v = parsePyJson(json);
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new DistributionFormatError(json, "not an object");
  const o = v as Attrs;
  if (typeof o["name"] === "string") {
    const a = o["attributes"];
    if (a === null || typeof a !== "object" || Array.isArray(a)) throw new DistributionFormatError(json, "no attributes");
    const at = a as Attrs;
    const low = () => num(at, "low", json);
    const high = () => num(at, "high", json);
    switch (o["name"]) {
      case "FloatDistribution":
        return { kind: "float", low: low(), high: high(), log: at["log"] === true, step: optNum(at, "step", json) };
      case "UniformDistribution":
        return { kind: "float", low: low(), high: high(), log: false, step: null };
      case "LogUniformDistribution":
        return { kind: "float", low: low(), high: high(), log: true, step: null };
      case "DiscreteUniformDistribution":
        return { kind: "float", low: low(), high: high(), log: false, step: num(at, "q", json) };
      case "IntDistribution":
        return { kind: "int", low: low(), high: high(), log: at["log"] === true, step: optNum(at, "step", json) ?? 1 };
      case "IntUniformDistribution":
        return { kind: "int", low: low(), high: high(), log: false, step: optNum(at, "step", json) ?? 1 };
      case "IntLogUniformDistribution":
        return { kind: "int", low: low(), high: high(), log: true, step: optNum(at, "step", json) ?? 1 };
      case "CategoricalDistribution":
        return { kind: "categorical", choices: choicesOf(at["choices"], json) };
      default:
        throw new DistributionFormatError(json, `unknown class ${String(o["name"])}`);
    }
  }
  if (o["type"] === "categorical") return { kind: "categorical", choices: choicesOf(o["choices"], json) };
  if (o["type"] === "float") return { kind: "float", low: num(o, "low", json), high: num(o, "high", json), log: o["log"] === true, step: optNum(o, "step", json) };
  if (o["type"] === "int") return { kind: "int", low: num(o, "low", json), high: num(o, "high", json), log: o["log"] === true, step: optNum(o, "step", json) ?? 1 };
  throw new DistributionFormatError(json, "no name or type");
}

function choicesOf(v: JsonValue | undefined, json: string): CategoricalChoice[] {
  if (!Array.isArray(v)) throw new DistributionFormatError(json, "choices is not an array");
  return (v as readonly JsonValue[]).map((c) => {
    if (c !== null && typeof c === "object") throw new DistributionFormatError(json, "a choice is not a string, number, boolean or null");
    return c;
  });
}

const sameChoice = (a: CategoricalChoice, b: CategoricalChoice) => a === b || (typeof a === "number" && typeof b === "number" && Number.isNaN(a) && Number.isNaN(b));

/** Optuna's `check_distribution_compatibility`: same class and log scale; a categorical also needs the same choices. Returns why not, or undefined. */
export function incompatibility(old: Distribution, next: Distribution): string | undefined {
  if (old.kind !== next.kind) return `was ${old.kind}, now ${next.kind}`;
  if (old.kind !== "categorical" && next.kind !== "categorical" && old.log !== next.log) return `log was ${old.log}, now ${next.log}`;
  if (old.kind === "categorical" && next.kind === "categorical") {
    const same = old.choices.length === next.choices.length && old.choices.every((c, i) => sameChoice(c, next.choices[i]!));
    if (!same) return `choices were ${JSON.stringify(old.choices)}, now ${JSON.stringify(next.choices)}`;
  }
  return undefined;
}

/** The number the journal stores for a value: the value itself, or the index of a choice. Throws for a value the distribution cannot hold. */
export function toInternal(d: Distribution, value: CategoricalChoice): number {
  if (d.kind === "categorical") {
    const i = d.choices.findIndex((c) => sameChoice(c, value));
    if (i < 0) throw new TunerError("INVALID_VALUE", `${JSON.stringify(value)} is not one of ${JSON.stringify(d.choices)}`);
    return i;
  }
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value) : Number.NaN;
  if (Number.isNaN(n) || (d.log && n <= 0)) throw new TunerError("INVALID_VALUE", `${JSON.stringify(value)} is not a valid ${d.kind} value${d.log ? " on a log scale" : ""}`);
  return n;
}

/** Optuna's `to_external_repr`: ints truncate (Python's `int()`), a categorical's index picks the choice. */
export function toExternal(d: Distribution, internal: number): CategoricalChoice {
  if (d.kind === "categorical") {
    const c = d.choices[Math.trunc(internal)];
    if (c === undefined) throw new RangeError(`choice index ${internal} is outside ${JSON.stringify(d.choices)}`);
    return c;
  }
  return d.kind === "int" ? Math.trunc(internal) : internal;
}

/** Optuna's `_contains`: inside the range and on the step grid. */
export function contains(d: Distribution, internal: number): boolean {
  if (d.kind === "categorical") return Number.isInteger(internal) && internal >= 0 && internal < d.choices.length;
  if (!(internal >= d.low && internal <= d.high)) return false;
  if (d.kind === "int") return (internal - d.low) % d.step === 0;
  if (d.step === null) return true;
  const k = (internal - d.low) / d.step;
  return Math.abs(k - Math.round(k)) < 1e-8;
}

/** The largest double below `x`: numpy's `nextafter(x, x - 1)`, which Optuna uses to keep `high` out of a continuous draw. */
function below(x: number): number {
  const f = new Float64Array([x]);
  const b = new BigInt64Array(f.buffer);
  if (x === 0) return -Number.MIN_VALUE;
  b[0] = x > 0 ? b[0]! - 1n : b[0]! + 1n;
  return f[0]!;
}

const clip = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/**
 * One draw as Optuna's `RandomSampler` makes it (`_SearchSpaceTransform` + `rng.uniform`), with
 * `random()` uniform in [0, 1): log scales drawn in log space; steps and ints drawn on a range
 * widened by half a step each side and rounded, so the ends are as likely as the inside; a
 * categorical picks an index uniformly. Returns the external value.
 */
export function sample(d: Distribution, random: () => number): CategoricalChoice {
  const u = (lo: number, hi: number) => lo + (hi - lo) * random();
  if (d.kind === "categorical") return d.choices[Math.min(d.choices.length - 1, Math.floor(random() * d.choices.length))]!;
  if (d.kind === "int") {
    if (d.log) return clip(Math.round(Math.exp(u(Math.log(d.low - 0.5), Math.log(d.high + 0.5)))), d.low, d.high);
    const x = u(d.low - d.step / 2, d.high + d.step / 2);
    return clip(Math.round((x - d.low) / d.step) * d.step + d.low, d.low, d.high);
  }
  if (d.low === d.high) return d.low;
  if (d.log) return Math.min(Math.exp(u(Math.log(d.low), Math.log(d.high))), below(d.high));
  if (d.step !== null) {
    const x = u(d.low - d.step / 2, d.high + d.step / 2);
    return clip(Math.round((x - d.low) / d.step) * d.step + d.low, d.low, d.high);
  }
  return Math.min(u(d.low, d.high), below(d.high));
}

/** `lr: logUniform(1e-05, 0.1)`-style text for messages and tables. */
export function describeDistribution(d: Distribution): string {
  if (d.kind === "categorical") return `choice(${JSON.stringify(d.choices)})`;
  if (d.kind === "int") return `int(${d.low}, ${d.high}${d.step !== 1 ? `, step ${d.step}` : ""}${d.log ? ", log" : ""})`;
  if (d.log) return `logUniform(${d.low}, ${d.high})`;
  return `uniform(${d.low}, ${d.high}${d.step !== null ? `, step ${d.step}` : ""})`;
}
