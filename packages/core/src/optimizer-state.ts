import * as tf from "@tensorflow/tfjs-core";
import { StateError } from "./errors.js";
import { getLearningRate, getMomentum, momentumName, optimizerKind, setLearningRate, setMomentum } from "./hyperparams.js";
import { describeValue, type StateIssue } from "./state-schema.js";

/**
 * Optimizer state that restores bit for bit. tfjs keeps slots by position (slot i belongs to the
 * i-th gradient passed to `applyGradients`), `getWeights` is missing for Adamax, and Adam's
 * `setWeights` recomputes `accBeta1 = beta1^(t+1)` with `pow`, which differs in the last bits from
 * the running product (and is wrong after beta1 was scheduled). So this module reads and writes the
 * slot arrays and scalar accumulators directly, one table entry per optimizer.
 */

interface SlotRef {
  originalName: string;
  variable: tf.Variable;
}

const LAYOUT: Record<string, { slots: readonly string[]; scalars: readonly string[] }> = {
  sgd: { slots: [], scalars: [] },
  momentum: { slots: ["accumulations"], scalars: [] },
  adam: { slots: ["accumulatedFirstMoment", "accumulatedSecondMoment"], scalars: ["accBeta1", "accBeta2"] },
  adamax: { slots: ["accumulatedFirstMoment", "accumulatedWeightedInfNorm"], scalars: ["accBeta1", "iteration"] },
  rmsprop: { slots: ["accumulatedMeanSquares", "accumulatedMoments", "accumulatedMeanGrads"], scalars: [] },
  adagrad: { slots: ["accumulatedGrads"], scalars: [] },
  adadelta: { slots: ["accumulatedGrads", "accumulatedUpdates"], scalars: [] },
};

export interface SavedSlot {
  /** Name of the variable this slot belongs to when saved (checked, without tfjs's counters, against the variable at its position). */
  readonly variable: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

export interface OptimizerStateDict {
  readonly kind: string;
  readonly iterations: number;
  /** Trainable variables in the order the loop passes their gradients (slot order). */
  readonly variables: readonly { readonly name: string; readonly shape: readonly number[] }[];
  /** Per slot family (e.g. `accumulatedFirstMoment`), one entry per variable, or empty before the first step. */
  readonly slots: Readonly<Record<string, readonly SavedSlot[]>>;
  readonly scalars: Readonly<Record<string, number>>;
  /** Learning rate and momentum/beta1 at save time (schedules that are not pure functions of progress change them). */
  readonly hyper?: { readonly learningRate: number; readonly momentum?: number };
}

type Fields = Record<string, unknown> & { iterations_?: number; centered?: boolean };

function layoutOf(optimizer: tf.Optimizer): { slots: readonly string[]; scalars: readonly string[]; kind: string } {
  const kind = optimizerKind(optimizer);
  const layout = LAYOUT[kind];
  if (!layout) throw new StateError(`cannot save the state of ${optimizer.getClassName()}: fitloop knows sgd, momentum, adam, adamax, rmsprop, adagrad, adadelta`);
  return { ...layout, kind };
}

/** The slot families `optimizer` creates at its first step (RMSProp keeps mean gradients only when centered). */
function familiesCreated(optimizer: tf.Optimizer, slots: readonly string[]): readonly string[] {
  return optimizerKind(optimizer) === "rmsprop" && (optimizer as unknown as Fields).centered !== true ? slots.filter((f) => f !== "accumulatedMeanGrads") : slots;
}

/**
 * A variable name without the counters tfjs adds to make names unique in a process: the `_N` it
 * appends to a repeated name (`enc/kernel_1` -> `enc/kernel`, also Keras's `dense_1`, `sequential_2`)
 * and the number of an automatic layer name (`dense_Dense3` -> `dense_Dense`, `conv2d_Conv2D12` ->
 * `conv2d_Conv2D`). A model rebuilt in the same or another process compares equal, while the names a
 * user gave stay distinct: `enc`/`dec`, and `fc1`/`fc2` or `conv1`/`conv2` too (a digit not after an
 * underscore is part of the name). Names that differ only in `_N` (`block_1`, `block_2`) compare
 * equal: position and shape still hold there.
 */
export function comparableName(name: string): string {
  return name
    .split("/")
    .map((segment) => segment.replace(/_\d+$/, "").replace(/(_[A-Z][A-Za-z0-9]*?)\d+$/, "$1"))
    .join("/");
}

/** Reads every slot and accumulator of `optimizer` as plain arrays (one device read per tensor). */
export async function optimizerStateDict(optimizer: tf.Optimizer, variables: readonly tf.Variable[]): Promise<OptimizerStateDict> {
  const { slots, scalars, kind } = layoutOf(optimizer);
  const o = optimizer as unknown as Fields;
  const outSlots: Record<string, SavedSlot[]> = {};
  for (const field of slots) {
    const refs = ((o[field] as (SlotRef | undefined)[] | undefined) ?? []).filter((r): r is SlotRef => r != null);
    outSlots[field] = await Promise.all(
      refs.map(async (r, i) => ({ variable: variables[i]?.name ?? r.originalName, shape: [...r.variable.shape], values: Float32Array.from(await r.variable.data()) })),
    );
  }
  const outScalars: Record<string, number> = {};
  for (const field of scalars) outScalars[field] = (await (o[field] as tf.Variable).data())[0]!;
  return {
    kind,
    iterations: o.iterations_ ?? 0,
    variables: variables.map((v) => ({ name: v.name, shape: [...v.shape] })),
    slots: outSlots,
    scalars: outScalars,
    hyper: { learningRate: getLearningRate(optimizer), ...(getMomentum(optimizer) !== undefined ? { momentum: getMomentum(optimizer)! } : {}) },
  };
}

/**
 * Restores a saved state into `optimizer` for `variables` (the current model's trainable
 * variables, in loop order). Variables are matched by position, checked by shape and by name
 * without tfjs's counters (`comparableName`), so a model rebuilt in a fresh process restores, and
 * same-shape variables in another order are refused. Everything is checked first (a `StateError`
 * lists every problem and nothing changes); the new slot variables are built before the old ones
 * are disposed, so a failure leaves the optimizer as it was.
 */
export function loadOptimizerStateDict(optimizer: tf.Optimizer, state: OptimizerStateDict, variables: readonly tf.Variable[]): void {
  checkOptimizerStateDict(optimizer, state, variables);
  const { slots, scalars } = layoutOf(optimizer);
  const o = optimizer as unknown as Fields;
  const built = new Map<string, SlotRef[]>();
  try {
    for (const field of slots) {
      const list: SlotRef[] = [];
      built.set(field, list);
      for (const [i, s] of (state.slots[field] ?? []).entries()) {
        list.push({ originalName: `${variables[i]!.name}/${field}`, variable: tf.tidy(() => tf.variable(tf.tensor(s.values, [...s.shape], "float32"), false)) });
      }
    }
  } catch (e) {
    for (const list of built.values()) for (const r of list) r.variable.dispose();
    throw e;
  }
  // from here on nothing can fail: swap in the new slots, then let the old ones go
  for (const field of slots) {
    const old = (o[field] as (SlotRef | undefined)[] | undefined) ?? [];
    o[field] = built.get(field)!;
    for (const r of old) r?.variable.dispose();
  }
  for (const field of scalars) {
    const v = o[field] as tf.Variable;
    tf.tidy(() => v.assign(tf.scalar(state.scalars[field]!)));
  }
  o.iterations_ = state.iterations;
  if (state.hyper) {
    setLearningRate(optimizer, state.hyper.learningRate);
    if (state.hyper.momentum !== undefined) setMomentum(optimizer, state.hyper.momentum);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const shapeText = (s: unknown) => (Array.isArray(s) ? `[${s.join(",")}]` : describeValue(s));
const sameShape = (a: unknown, b: readonly number[]) => Array.isArray(a) && a.length === b.length && a.every((d, j) => d === b[j]);
/** Why a typed array arrives as an object: said wherever one is refused. */
export const JSON_HINT = "a JSON round trip turns typed arrays into plain objects: store states with encodeState/decodeState (or a checkpoint)";

/**
 * Checks that a saved state fits `optimizer` and `variables` without changing anything: kind,
 * iterations, variable count, shapes and names (`comparableName`), every slot family (present for
 * every variable once the optimizer has stepped), slot shapes, value types and sizes, scalars and
 * hyperparameters. One `StateError` lists every problem, naming the variable, slot or scalar.
 */
export function checkOptimizerStateDict(optimizer: tf.Optimizer, state: OptimizerStateDict, variables: readonly tf.Variable[]): void {
  const { slots, scalars, kind } = layoutOf(optimizer);
  const summary = `the saved optimizer state does not fit this ${kind} optimizer and model`;
  const s: unknown = state;
  if (!isRecord(s)) throw new StateError(summary, [{ path: "(optimizer)", message: `must be an optimizer state dict { kind, iterations, variables, slots, scalars }, got ${describeValue(s)}` }]);
  // another kind: its slots and scalars are not comparable, so this is the one problem to report
  if (s["kind"] !== kind) throw new StateError(summary, [{ path: "kind", message: `saved optimizer state is for ${String(s["kind"])}, but the optimizer is ${kind}` }]);
  const issues: StateIssue[] = [];
  const n = variables.length;
  const iterations = s["iterations"];
  const iterationsOk = typeof iterations === "number" && Number.isSafeInteger(iterations) && iterations >= 0;
  if (!iterationsOk) issues.push({ path: "iterations", message: `saved optimizer iterations must be an integer >= 0, got ${describeValue(iterations)}` });

  const saved = s["variables"];
  if (!Array.isArray(saved)) issues.push({ path: "variables", message: `must be an array of { name, shape }, got ${describeValue(saved)}` });
  else {
    // another count: positions no longer pair up, and every slot family would be reported too
    if (saved.length !== n) throw new StateError(summary, [{ path: "variables", message: `saved optimizer state has ${saved.length} variables, the model has ${n} trainable variables` }]);
    saved.forEach((v: unknown, i) => {
      const cur = variables[i]!;
      const name = isRecord(v) ? v["name"] : undefined;
      const shape = isRecord(v) ? v["shape"] : undefined;
      if (!sameShape(shape, cur.shape)) issues.push({ path: `variables[${i}]`, message: `saved variable ${i} (${String(name)}) has shape ${shapeText(shape)} but ${cur.name} has [${cur.shape.join(",")}]` });
      if (typeof name !== "string") issues.push({ path: `variables[${i}].name`, message: `must be the variable's name, got ${describeValue(name)}` });
      else if (comparableName(name) !== comparableName(cur.name)) {
        issues.push({ path: `variables[${i}]`, message: `saved variable ${i} is "${name}", the model's variable ${i} is "${cur.name}" (names compared without tfjs's counters): the variables are in another order, or the state is another model's` });
      }
    });
  }

  const savedSlots = s["slots"];
  if (!isRecord(savedSlots)) issues.push({ path: "slots", message: `must be a record of slot families, got ${describeValue(savedSlots)}` });
  else {
    for (const f of Object.keys(savedSlots)) if (!slots.includes(f)) issues.push({ path: `slots.${f}`, message: `is not a slot family of ${kind} (${slots.join(", ") || "it has none"})` });
    const created = familiesCreated(optimizer, slots);
    const lengths = new Map<string, number>();
    for (const f of slots) {
      const list = savedSlots[f] ?? [];
      if (!Array.isArray(list)) {
        issues.push({ path: `slots.${f}`, message: `must be an array of slots, got ${describeValue(list)}` });
        continue;
      }
      lengths.set(f, list.length);
      if (!created.includes(f)) {
        if (list.length) issues.push({ path: `slots.${f}`, message: `has ${list.length} slots, but this ${kind} optimizer never creates ${f} (not centered)` });
        continue;
      }
      if (list.length !== 0 && list.length !== n) issues.push({ path: `slots.${f}`, message: `saved slot family ${f} has ${list.length} entries for ${n} variables` });
      list.slice(0, n).forEach((slot: unknown, i) => {
        const cur = variables[i]!;
        const at = `slots.${f}[${i}]`;
        if (!isRecord(slot)) return void issues.push({ path: at, message: `saved slot ${f}[${i}] must be { variable, shape, values }, got ${describeValue(slot)}` });
        const size = cur.shape.reduce((a, b) => a * b, 1);
        const values = slot["values"];
        const length = values instanceof Float32Array ? values.length : undefined;
        if (!sameShape(slot["shape"], cur.shape) || length !== size) {
          const got = values instanceof Float32Array ? `${values.length} values` : `values ${describeValue(values)} (a Float32Array is needed${isRecord(values) || Array.isArray(values) ? `; ${JSON_HINT}` : ""})`;
          issues.push({ path: at, message: `saved slot ${f}[${i}] does not fit ${cur.name} [${cur.shape.join(",")}]: shape ${shapeText(slot["shape"])}, ${got}` });
        }
        const owner = slot["variable"];
        if (typeof owner === "string" && owner !== "" && comparableName(owner) !== comparableName(cur.name)) {
          issues.push({ path: at, message: `saved slot ${f}[${i}] belongs to "${owner}", the model's variable ${i} is "${cur.name}" (names compared without tfjs's counters)` });
        }
      });
    }
    const full = created.filter((f) => lengths.get(f) === n && n > 0);
    const empty = created.filter((f) => lengths.get(f) === 0);
    // slots exist from the first step on, all families at once: an optimizer that stepped has them all
    if (n > 0 && iterationsOk && (iterations > 0 || full.length > 0)) {
      for (const f of empty) {
        issues.push({ path: `slots.${f}`, message: iterations > 0 ? `is missing: the optimizer has stepped (iterations ${iterations}), so every variable has a ${f} slot` : `is missing while ${full.join(", ")} ${full.length === 1 ? "is" : "are"} saved: ${kind} creates its slot families together` });
      }
    }
  }

  const savedScalars = s["scalars"];
  if (!isRecord(savedScalars)) issues.push({ path: "scalars", message: `must be a record of numbers, got ${describeValue(savedScalars)}` });
  else {
    for (const f of Object.keys(savedScalars)) if (!scalars.includes(f)) issues.push({ path: `scalars.${f}`, message: `is not a scalar of ${kind} (${scalars.join(", ") || "it has none"})` });
    for (const f of scalars) {
      const v = savedScalars[f];
      if (typeof v !== "number" || !Number.isFinite(v)) issues.push({ path: `scalars.${f}`, message: `saved optimizer state lacks a finite ${f}, got ${describeValue(v)}` });
      // accBeta = beta^t (beta in [0, 1)); Adamax counts its steps in `iteration`
      else if (f.startsWith("accBeta") && (v < 0 || v > 1)) issues.push({ path: `scalars.${f}`, message: `${f} is a product of betas in [0, 1), got ${v}` });
      else if (f === "iteration" && (!Number.isInteger(v) || v < 0)) issues.push({ path: `scalars.${f}`, message: `must be an integer >= 0, got ${v}` });
    }
  }

  const hyper = s["hyper"];
  if (hyper !== undefined) {
    if (!isRecord(hyper)) issues.push({ path: "hyper", message: `must be { learningRate, momentum? }, got ${describeValue(hyper)}` });
    else {
      const lr = hyper["learningRate"];
      if (typeof lr !== "number" || !Number.isFinite(lr) || lr < 0) issues.push({ path: "hyper.learningRate", message: `saved learning rate must be a finite number >= 0, got ${describeValue(lr)}` });
      const m = hyper["momentum"];
      const mName = momentumName(optimizer);
      if (m !== undefined && (mName === undefined || typeof m !== "number" || !Number.isFinite(m) || m < 0 || (mName === "beta1" && m >= 1))) {
        issues.push({ path: "hyper.momentum", message: `saved ${mName ?? "momentum"} ${describeValue(m)} does not fit ${optimizer.getClassName()}${mName === "beta1" ? " (beta1 must be in [0, 1))" : mName ? " (must be a finite number >= 0)" : " (it has none)"}` });
      }
    }
  }
  if (issues.length) throw new StateError(summary, issues);
}
