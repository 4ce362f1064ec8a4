import * as tf from "@tensorflow/tfjs-core";
import { comparableName, StateError, type StateDict, type StateIssue } from "@fitloop/core";

/** One running sum as a checkpoint holds it: in trainable-variable order, like the gradients. */
export interface SavedSum {
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

/** The group in progress: how many micro-batches and samples it holds, and their weighted gradient sums. */
export interface SavedGroup {
  readonly microBatches: number;
  readonly samples: number;
  readonly sums: readonly SavedSum[];
}

const KEYS = ["microBatches", "samples", "sums"];
const SUM_KEYS = ["name", "shape", "values"];

const describe = (v: unknown): string => {
  if (v === null) return "null";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return typeof v;
};

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;

/**
 * Checks a saved group on its own (the model is checked at `beforeFit`, see `checkAgainstModel`).
 * Every problem is listed in one `StateError`. Sum values may be NaN or infinite: a non-finite
 * micro-batch gradient poisons its group, and the group's step is where guards catch it.
 */
export function parseGroup(owner: string, steps: number, state: StateDict): SavedGroup {
  const issues: StateIssue[] = [];
  const bad = (path: string, message: string) => void issues.push({ path, message });
  const fail = () => new StateError(`${owner}: the saved state is invalid`, issues);
  if (typeof state !== "object" || state === null || Array.isArray(state)) {
    bad("", `must be { microBatches, samples, sums }, got ${describe(state)}`);
    throw fail();
  }
  for (const k of Object.keys(state)) if (!KEYS.includes(k)) bad(k, `unknown key (the state has ${KEYS.join(", ")})`);
  for (const k of KEYS) if (!(k in state)) bad(k, "missing");
  const { microBatches, samples, sums } = state as Record<string, unknown>;
  if ("microBatches" in state) {
    if (!isCount(microBatches)) bad("microBatches", `must be an integer >= 0, got ${describe(microBatches)}`);
    else if (microBatches >= steps) bad("microBatches", `is ${microBatches}, but a group has ${steps} micro-batches (steps): a group that far along has already stepped`);
  }
  if ("samples" in state && !isCount(samples)) bad("samples", `must be an integer >= 0, got ${describe(samples)}`);
  const list: SavedSum[] = [];
  if ("sums" in state) {
    if (!Array.isArray(sums)) bad("sums", `must be an array of { name, shape, values }, got ${describe(sums)}`);
    else sums.forEach((s: unknown, i) => {
      const at = `sums[${i}]`;
      if (typeof s !== "object" || s === null || Array.isArray(s)) return bad(at, `must be { name, shape, values }, got ${describe(s)}`);
      const e = s as Record<string, unknown>;
      for (const k of Object.keys(e)) if (!SUM_KEYS.includes(k)) bad(`${at}.${k}`, "unknown key");
      const okName = typeof e["name"] === "string" && e["name"].length > 0;
      if (!okName) bad(`${at}.name`, `must be the gradient's variable name, got ${describe(e["name"])}`);
      const shape = e["shape"];
      const okShape = Array.isArray(shape) && shape.every(isCount);
      if (!okShape) bad(`${at}.shape`, `must be an array of integers >= 0, got ${describe(shape)}`);
      const values = e["values"];
      if (!(values instanceof Float32Array)) {
        const hint = typeof values === "object" && values !== null && !ArrayBuffer.isView(values) ? " (a plain JSON.stringify turns a Float32Array into an object: store states with encodeState/decodeState)" : "";
        return bad(`${at}.values`, `must be a Float32Array, got ${describe(values)}${hint}`);
      }
      if (!okName || !okShape) return;
      const size = (shape as number[]).reduce((a, b) => a * b, 1);
      if (values.length !== size) return bad(`${at}.values`, `has ${values.length} values, but its shape [${(shape as number[]).join(", ")}] holds ${size}`);
      if (list.some((x) => x.name === e["name"])) return bad(`${at}.name`, `"${e["name"] as string}" appears twice`);
      list.push({ name: e["name"] as string, shape: [...(shape as number[])], values: values.slice() }); // a copy: the caller keeps theirs
    });
  }
  if (issues.length === 0) {
    const k = microBatches as number;
    const n = samples as number;
    const len = (sums as unknown[]).length;
    // all three say "empty" together, or all three say "in progress"
    if (k === 0 && (n !== 0 || len !== 0)) bad("microBatches", `is 0 (no group in progress), but samples is ${n} and sums has ${len} entries`);
    if (k > 0 && n < k) bad("samples", `is ${n}, fewer than the ${k} micro-batches accumulated (each has at least one sample)`);
    if (k > 0 && len === 0) bad("sums", `is empty, but ${k} micro-batches were accumulated`);
  }
  if (issues.length) throw fail();
  return { microBatches: microBatches as number, samples: samples as number, sums: list };
}

/** A `StateError` unless `group`'s sums fit `variables` one to one: count, names (without tfjs's counters) and shapes. */
export function checkAgainstModel(owner: string, group: SavedGroup, variables: readonly tf.Variable[]): void {
  const summary = `${owner}: the saved gradient sums do not match the model's trainable weights`;
  if (group.sums.length !== variables.length) throw new StateError(summary, [{ path: "sums", message: `${group.sums.length} sums saved, the model has ${variables.length} trainable weights (${variables.map((v) => v.name).join(", ")})` }]);
  const issues: StateIssue[] = [];
  group.sums.forEach((s, i) => {
    const v = variables[i]!;
    if (comparableName(s.name) !== comparableName(v.name)) issues.push({ path: `sums[${i}].name`, message: `is "${s.name}", but trainable weight ${i} is "${v.name}" (names compared without tfjs's counters)` });
    if (s.shape.join(",") !== v.shape.join(",")) issues.push({ path: `sums[${i}].shape`, message: `is [${s.shape.join(", ")}], but ${v.name} is [${v.shape.join(", ")}]` });
  });
  if (issues.length) throw new StateError(summary, issues);
}

/** The saved group as device tensors (rebuilt at the first micro-batch after a load). */
export function toTensors(group: SavedGroup): tf.Tensor[] {
  return group.sums.map((s) => tf.keep(tf.tensor(s.values, [...s.shape], "float32")));
}

/** The sums read from the device (at snapshot time, or when a stopped run keeps its group). */
export function toHost(names: readonly string[], sums: readonly tf.Tensor[]): SavedSum[] {
  return sums.map((t, i) => ({ name: names[i]!, shape: [...t.shape], values: new Float32Array(t.dataSync() as Float32Array) }));
}
