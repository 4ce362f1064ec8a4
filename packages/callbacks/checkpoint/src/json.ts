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
  if (typeof value === "number") return Number.isFinite(value) ? value : { $float: String(value) };
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
      out[k] = toJsonTree(v, tensors, `${path}.${k}`);
    }
    return out;
  }
  throw new CheckpointFormatError(`cannot store ${typeof value} at ${path} (state holds JSON values and typed arrays)`);
}

const FLOATS: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, "-Infinity": Number.NEGATIVE_INFINITY };

/** The inverse of `toJsonTree`; every tag is checked, and each tensor may be referenced once. */
export function fromJsonTree(value: unknown, tensors: ReadonlyMap<string, SafeTensor>, used = new Set<string>(), path = "$"): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v, i) => fromJsonTree(v, tensors, used, `${path}[${i}]`));
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === "$float") {
    const v = FLOATS[String(o["$float"])];
    if (v === undefined) throw new CheckpointFormatError(`${path}: {"$float": ${JSON.stringify(o["$float"])}} is not NaN, Infinity or -Infinity`);
    return v;
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
  for (const [k, v] of Object.entries(o)) out[k] = fromJsonTree(v, tensors, used, `${path}.${k}`);
  return out;
}
