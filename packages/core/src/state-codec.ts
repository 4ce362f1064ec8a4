import { StateError } from "./errors.js";
import type { StateDict, StateValue } from "./state.js";
import { describeValue, type StateIssue } from "./state-schema.js";

/**
 * The state codec: plugin states (and the trainer state) as plain JSON plus a set of typed arrays,
 * independent of where either is stored (a checkpoint puts the arrays in a safetensors file).
 *
 * What a state may hold (`StateValue`): `null`, booleans, strings, numbers (NaN, +-Infinity and
 * -0 included), `Float32Array`, `Int32Array`, `Uint8Array`, arrays and plain objects of these.
 * Object keys may be anything, `__proto__` included. An object property that is `undefined` is
 * left out (as JSON.stringify does). Refused, with a `StateError` naming the path: `undefined`
 * elsewhere, functions, symbols, bigints, other typed arrays (Float64Array, ...), Maps, Sets,
 * Dates, class instances, cycles, holes in arrays.
 *
 * Encoding: numbers JSON cannot hold become `{"$float": "NaN" | "Infinity" | "-Infinity" | "-0"}`,
 * each typed array `{"$tensor": "t<i>"}` with the array in `arrays` under that name (not copied),
 * and an object that looks like a tag (one key, `$float`, `$tensor` or `$object`) `{"$object": ...}`.
 */

/** A typed array a state may hold. */
export type StateArray = Float32Array | Int32Array | Uint8Array;

/** JSON as `JSON.parse` returns it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface EncodedState {
  readonly json: JsonValue;
  /** The typed arrays, by the name their `{"$tensor": name}` tag uses (the state's own arrays, not copies). */
  readonly arrays: Map<string, StateArray>;
}

const FLOATS: ReadonlyMap<string, number> = new Map([
  ["NaN", Number.NaN],
  ["Infinity", Number.POSITIVE_INFINITY],
  ["-Infinity", Number.NEGATIVE_INFINITY],
  ["-0", -0],
]);
const TAGS = new Set(["$float", "$tensor", "$object"]);
// exact classes: a subclass (Node's Buffer is a Uint8Array) would come back as its base class
const ARRAY_PROTOS = new Set<object>([Float32Array.prototype, Int32Array.prototype, Uint8Array.prototype]);
/** Deeper than this is refused rather than risking a stack overflow on a forged file. */
const MAX_DEPTH = 256;
/** The message lists at most this many problems. */
const MAX_ISSUES = 50;

/** An own property, also for "__proto__" (plain assignment would set the prototype instead). */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

const key = (path: string, k: string) => (/^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`);

class Issues {
  readonly list: StateIssue[] = [];
  more = 0;
  add(path: string, message: string): void {
    if (this.list.length < MAX_ISSUES) this.list.push({ path, message });
    else this.more++;
  }
  throwIfAny(summary: string): void {
    if (!this.list.length) return;
    throw new StateError(summary, this.more ? [...this.list, { path: "", message: `and ${this.more} more` }] : this.list);
  }
}

function unstorable(v: unknown): string {
  if (typeof v === "function") return "a function cannot be stored";
  if (typeof v === "bigint") return "a bigint cannot be stored (use a number or a string)";
  if (typeof v === "symbol") return "a symbol cannot be stored";
  if (v === undefined) return "undefined cannot be stored here (use null)";
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} cannot be stored (state holds Float32Array, Int32Array and Uint8Array)`;
  if (v instanceof Map) return "a Map cannot be stored (use an object or an array of [key, value] pairs)";
  if (v instanceof Set) return "a Set cannot be stored (use an array)";
  return `${describeValue(v)} cannot be stored (state holds JSON values, typed arrays, arrays and plain objects)`;
}

/**
 * Encodes a state value (see the module comment for what it may hold) as JSON plus typed arrays,
 * without copying the arrays. Every value that cannot be stored is listed in one `StateError`,
 * by path from `path` (default `$`, e.g. `$.best.weights[2]`).
 */
export function encodeState(value: unknown, options: { path?: string } = {}): EncodedState {
  const arrays = new Map<string, StateArray>();
  const issues = new Issues();
  const ancestors = new Set<object>();
  const walk = (v: unknown, path: string, depth: number): JsonValue => {
    if (v === null || typeof v === "boolean" || typeof v === "string") return v;
    if (typeof v === "number") return Number.isFinite(v) && !Object.is(v, -0) ? v : { $float: Object.is(v, -0) ? "-0" : String(v) };
    if (typeof v !== "object") return issues.add(path, unstorable(v)), null;
    if (ancestors.has(v)) return issues.add(path, "a cycle: this value contains itself"), null;
    if (depth > MAX_DEPTH) return issues.add(path, `nested deeper than ${MAX_DEPTH} levels`), null;
    const proto = Object.getPrototypeOf(v) as object | null;
    if (ARRAY_PROTOS.has(proto!)) {
      const name = `t${arrays.size}`;
      arrays.set(name, v as StateArray);
      return { $tensor: name };
    }
    ancestors.add(v);
    try {
      if (Array.isArray(v) && proto === Array.prototype) {
        const out: JsonValue[] = new Array<JsonValue>(v.length);
        for (let i = 0; i < v.length; i++) {
          if (!(i in v)) issues.add(`${path}[${i}]`, "a hole in an array cannot be stored (JSON would make it null)");
          else out[i] = walk(v[i], `${path}[${i}]`, depth + 1);
        }
        return out;
      }
      if (proto !== Object.prototype && proto !== null) return issues.add(path, unstorable(v)), null;
      if (Object.getOwnPropertySymbols(v).some((s) => Object.prototype.propertyIsEnumerable.call(v, s))) issues.add(path, "symbol keys cannot be stored");
      const out: Record<string, JsonValue> = {};
      for (const k of Object.keys(v)) {
        const x = (v as Record<string, unknown>)[k];
        if (x !== undefined) setOwn(out, k, walk(x, key(path, k), depth + 1));
      }
      // an object that looks like one of the tags is escaped, so it comes back as the object it was
      const keys = Object.keys(out);
      return keys.length === 1 && TAGS.has(keys[0]!) ? { $object: out } : out;
    } finally {
      ancestors.delete(v);
    }
  };
  const json = walk(value, options.path ?? "$", 0);
  issues.throwIfAny("the state cannot be stored");
  return { json, arrays };
}

/**
 * The inverse of `encodeState`: every tag is checked, each array must be referenced exactly once,
 * and the arrays are returned as they are (not copied). Problems are listed in one `StateError`
 * by path.
 */
export function decodeState(json: unknown, arrays: ReadonlyMap<string, StateArray>, options: { path?: string } = {}): StateValue {
  const issues = new Issues();
  const used = new Set<string>();
  const walk = (v: unknown, path: string, depth: number): StateValue => {
    if (v === null || typeof v === "boolean" || typeof v === "string") return v;
    if (typeof v === "number") {
      if (!Number.isFinite(v)) issues.add(path, `${v} is not JSON (a non-finite number must be tagged {"$float": "${v}"})`);
      return v;
    }
    if (typeof v !== "object") return issues.add(path, `${describeValue(v)} is not JSON`), null;
    if (depth > MAX_DEPTH) return issues.add(path, `nested deeper than ${MAX_DEPTH} levels`), null;
    if (Array.isArray(v)) {
      const out: StateValue[] = [];
      for (let i = 0; i < v.length; i++) out.push(walk(v[i], `${path}[${i}]`, depth + 1));
      return out;
    }
    const proto = Object.getPrototypeOf(v) as object | null;
    if (proto !== Object.prototype && proto !== null) return issues.add(path, `${describeValue(v)} is not JSON`), null;
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    const tag = keys.length === 1 && TAGS.has(keys[0]!) ? keys[0]! : undefined;
    if (tag === "$float") {
      const f = typeof o["$float"] === "string" ? FLOATS.get(o["$float"]) : undefined;
      if (f === undefined) issues.add(path, `{"$float": ${String(JSON.stringify(o["$float"])).slice(0, 40)}} is not NaN, Infinity, -Infinity or -0`);
      return f ?? null;
    }
    if (tag === "$tensor") {
      const name = o["$tensor"];
      const a = typeof name === "string" ? arrays.get(name) : undefined;
      if (a === undefined) return issues.add(path, `refers to array ${String(JSON.stringify(name)).slice(0, 40)}, which is not among the stored arrays`), null;
      if (used.has(name as string)) issues.add(path, `array "${String(name)}" is referenced twice`);
      used.add(name as string);
      return a;
    }
    let entries = o;
    if (tag === "$object") {
      const inner = o["$object"];
      if (typeof inner !== "object" || inner === null || Array.isArray(inner)) return issues.add(path, `{"$object": ...} must hold an object, got ${describeValue(inner)}`), null;
      entries = inner as Record<string, unknown>;
    }
    const out: Record<string, StateValue> = {};
    for (const k of Object.keys(entries)) setOwn(out, k, walk(entries[k], key(path, k), depth + 1));
    return out;
  };
  const root = options.path ?? "$";
  const out = walk(json, root, 0);
  for (const name of arrays.keys()) if (!used.has(name)) issues.add(root, `stored array "${name}" is not referenced (a corrupted or mismatched state)`);
  issues.throwIfAny("the stored state cannot be decoded");
  return out;
}

/**
 * A `StateError` naming the plugin, its stateKey and every path in its state that cannot be
 * stored; for `Trainer.stateDict()`, so the mistake shows at the snapshot, not in a checkpoint
 * writer later. Walks the state without copying its arrays.
 */
export function checkPluginState(stateKey: string, plugin: string, state: StateDict): void {
  if (typeof state !== "object" || state === null || Array.isArray(state) || (Object.getPrototypeOf(state) !== Object.prototype && Object.getPrototypeOf(state) !== null)) {
    throw new StateError(`plugin "${plugin}" (stateKey "${stateKey}"): stateDict() must return a plain object`, [{ path: "$", message: `got ${describeValue(state)}` }]);
  }
  try {
    encodeState(state);
  } catch (e) {
    if (!(e instanceof StateError)) throw e;
    throw new StateError(`plugin "${plugin}" (stateKey "${stateKey}"): its stateDict() holds values a checkpoint cannot store`, e.issues);
  }
}
