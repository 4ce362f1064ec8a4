import { CheckpointFormatError } from "./errors.js";
import { dtypeOf, type SafeTensor, type TensorData } from "./safetensors.js";

/**
 * Plain JSON for everything that is not a tensor. Typed arrays (plugin states may hold them: best
 * weights, normaliser statistics) go to a safetensors file and are referenced as `{"$tensor": name}`;
 * NaN and +-Infinity (a diverged epoch's loss, an empty min) as `{"$float": "NaN"}`, which any JSON
 * reader accepts (JavaScript's JSON has no such numbers).
 */
export function toJsonTree(value: unknown, tensors: Map<string, SafeTensor>, path = "$"): unknown {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") return Number.isFinite(value) && !Object.is(value, -0) ? value : { $float: Object.is(value, -0) ? "-0" : String(value) };
  if (value instanceof Float32Array || value instanceof Int32Array || value instanceof Uint8Array) {
    const name = `t${tensors.size}`;
    tensors.set(name, { dtype: dtypeOf(value), shape: [value.length], data: value });
    return { $tensor: name };
  }
  if (Array.isArray(value)) return value.map((v, i) => toJsonTree(v, tensors, `${path}[${i}]`));
  if (typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue;
      setOwn(out, k, toJsonTree(v, tensors, `${path}.${k}`));
    }
    // an object that looks like one of our tags is escaped, so it comes back as the object it was
    const keys = Object.keys(out);
    return keys.length === 1 && TAGS.has(keys[0]!) ? { $object: out } : out;
  }
  throw new CheckpointFormatError(`cannot store ${typeof value} at ${path} (state holds JSON values and typed arrays)`);
}

const FLOATS: ReadonlyMap<string, number> = new Map([
  ["NaN", Number.NaN],
  ["Infinity", Number.POSITIVE_INFINITY],
  ["-Infinity", Number.NEGATIVE_INFINITY],
  ["-0", -0],
]);
const TAGS = new Set(["$float", "$tensor", "$object"]);

/** An own property, also for "__proto__" (plain assignment would set the prototype instead). */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** The inverse of `toJsonTree`; every tag is checked, and each tensor may be referenced once. */
export function fromJsonTree(value: unknown, tensors: ReadonlyMap<string, SafeTensor>, used = new Set<string>(), path = "$"): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v, i) => fromJsonTree(v, tensors, used, `${path}[${i}]`));
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === "$float") {
    const v = FLOATS.get(String(o["$float"]));
    if (v === undefined) throw new CheckpointFormatError(`${path}: {"$float": ${JSON.stringify(o["$float"]).slice(0, 40)}} is not NaN, Infinity, -Infinity or -0`);
    return v;
  }
  if (keys.length === 1 && keys[0] === "$object") {
    const inner = o["$object"];
    if (typeof inner !== "object" || inner === null || Array.isArray(inner)) throw new CheckpointFormatError(`${path}: {"$object": ...} must hold an object`);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(inner)) setOwn(out, k, fromJsonTree(v, tensors, used, `${path}.${k}`));
    return out;
  }
  if (keys.length === 1 && keys[0] === "$tensor") {
    const name = String(o["$tensor"]);
    const t = tensors.get(name);
    if (!t) throw new CheckpointFormatError(`${path}: refers to tensor "${name}", which the state file does not have`);
    if (used.has(name)) throw new CheckpointFormatError(`${path}: tensor "${name}" is referenced twice`);
    used.add(name);
    return t.data satisfies TensorData;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) setOwn(out, k, fromJsonTree(v, tensors, used, `${path}.${k}`));
  return out;
}
