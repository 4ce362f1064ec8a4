import { decodeState, encodeState, StateError, type StateArray } from "@fitloop/core";
import { CheckpointFormatError } from "./errors.js";
import { dtypeOf, type SafeTensor } from "./safetensors.js";

/**
 * Plain JSON for everything that is not a tensor, with core's state codec (`encodeState` /
 * `decodeState`): typed arrays (plugin states may hold them: best weights, normaliser statistics)
 * go to a safetensors file and are referenced as `{"$tensor": name}`; NaN, +-Infinity and -0 as
 * `{"$float": "NaN"}`, which any JSON reader accepts (JavaScript's JSON has no such numbers).
 * Errors are `CheckpointFormatError`s (the loader reports them as a corrupt checkpoint), with the
 * codec's `StateError` as `cause`.
 */
export function toJsonTree(value: unknown, tensors: Map<string, SafeTensor>): unknown {
  // the codec names arrays t0, t1, ...: a second tree in the same file would reuse the names
  if (tensors.size) throw new Error("toJsonTree: pass an empty tensor map (one map per file)");
  const { json, arrays } = formatErrors(() => encodeState(value));
  for (const [name, data] of arrays) tensors.set(name, { dtype: dtypeOf(data), shape: [data.length], data });
  return json;
}

/** The inverse of `toJsonTree`; every tag is checked, and each tensor is referenced exactly once. */
export function fromJsonTree(value: unknown, tensors: ReadonlyMap<string, SafeTensor>): unknown {
  const arrays = new Map<string, StateArray>();
  for (const [name, t] of tensors) {
    if (t.shape.length !== 1) throw new CheckpointFormatError(`state tensor "${name}" has shape [${t.shape.join(", ")}]; state arrays are 1-D`);
    arrays.set(name, t.data);
  }
  return formatErrors(() => decodeState(value, arrays));
}

function formatErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof StateError)) throw e;
    const error = new CheckpointFormatError(e.message);
    Object.defineProperty(error, "cause", { value: e, configurable: true, writable: true });
    throw error;
  }
}
