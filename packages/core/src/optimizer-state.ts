import * as tf from "@tensorflow/tfjs-core";
import { StateError } from "./errors.js";
import { getLearningRate, getMomentum, momentumName, optimizerKind, setLearningRate, setMomentum } from "./hyperparams.js";

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
  /** Name of the variable this slot belongs to when saved (informational; slots restore by position). */
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

type Fields = Record<string, unknown> & { iterations_?: number };

function layoutOf(optimizer: tf.Optimizer): { slots: readonly string[]; scalars: readonly string[]; kind: string } {
  const kind = optimizerKind(optimizer);
  const layout = LAYOUT[kind];
  if (!layout) throw new StateError(`cannot save the state of ${optimizer.getClassName()}: fitloop knows sgd, momentum, adam, adamax, rmsprop, adagrad, adadelta`);
  return { ...layout, kind };
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
 * variables, in loop order). Variables are matched by position and checked by shape, so a model
 * rebuilt in a fresh process (new variable names) restores correctly.
 */
export function loadOptimizerStateDict(optimizer: tf.Optimizer, state: OptimizerStateDict, variables: readonly tf.Variable[]): void {
  checkOptimizerStateDict(optimizer, state, variables);
  const { slots, scalars } = layoutOf(optimizer);
  const o = optimizer as unknown as Fields;
  for (const field of slots) {
    const saved = state.slots[field] ?? [];
    const old = (o[field] as (SlotRef | undefined)[] | undefined) ?? [];
    for (const r of old) r?.variable.dispose();
    o[field] = saved.map((s, i) => ({ originalName: `${variables[i]!.name}/${field}`, variable: tf.tidy(() => tf.variable(tf.tensor(s.values, [...s.shape]), false)) }));
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

/**
 * Checks that a saved state fits `optimizer` and `variables` (kind, variable count and shapes, slot
 * counts, shapes and sizes, scalars), without changing anything: a `StateError` names the mismatch.
 */
export function checkOptimizerStateDict(optimizer: tf.Optimizer, state: OptimizerStateDict, variables: readonly tf.Variable[]): void {
  const { slots, scalars, kind } = layoutOf(optimizer);
  if (typeof state !== "object" || state === null || !Array.isArray(state.variables) || typeof state.slots !== "object" || state.slots === null || typeof state.scalars !== "object" || state.scalars === null) {
    throw new StateError("the saved optimizer state is not an optimizer state dict (kind, iterations, variables, slots, scalars)");
  }
  if (state.kind !== kind) throw new StateError(`saved optimizer state is for ${state.kind}, but the optimizer is ${kind}`);
  if (!Number.isInteger(state.iterations) || state.iterations < 0) throw new StateError(`saved optimizer iterations must be an integer >= 0, got ${String(state.iterations)}`);
  if (state.variables.length !== variables.length) {
    throw new StateError(`saved optimizer state has ${state.variables.length} variables, the model has ${variables.length} trainable variables`);
  }
  state.variables.forEach((v: { readonly name: string; readonly shape: readonly number[] }, i: number) => {
    const cur = variables[i]!;
    if (!Array.isArray(v?.shape) || v.shape.length !== cur.shape.length || v.shape.some((d: number, j: number) => d !== cur.shape[j])) {
      throw new StateError(`saved variable ${i} (${v.name}) has shape [${v.shape.join(",")}] but ${cur.name} has [${cur.shape.join(",")}]`);
    }
  });
  for (const field of slots) {
    const saved = state.slots[field] ?? [];
    if (!Array.isArray(saved) || (saved.length !== 0 && saved.length !== variables.length)) throw new StateError(`saved slot family ${field} has ${Array.isArray(saved) ? saved.length : "no"} entries for ${variables.length} variables`);
    saved.forEach((slot, i) => {
      const cur = variables[i]!;
      const size = cur.shape.reduce((a, b) => a * b, 1);
      if (!Array.isArray(slot?.shape) || slot.shape.join(",") !== cur.shape.join(",") || !(slot.values instanceof Float32Array) || slot.values.length !== size) {
        throw new StateError(`saved slot ${field}[${i}] does not fit ${cur.name} [${cur.shape.join(",")}]: shape [${Array.isArray(slot?.shape) ? slot.shape.join(",") : "?"}], ${slot?.values?.length ?? 0} values`);
      }
    });
  }
  for (const field of scalars) {
    const value = state.scalars[field];
    if (typeof value !== "number" || !Number.isFinite(value)) throw new StateError(`saved optimizer state lacks a finite ${field}, got ${String(value)}`);
  }
  if (state.hyper !== undefined && (typeof state.hyper.learningRate !== "number" || !Number.isFinite(state.hyper.learningRate) || state.hyper.learningRate < 0)) {
    throw new StateError(`saved learning rate must be a finite number >= 0, got ${String(state.hyper.learningRate)}`);
  }
  const m = state.hyper?.momentum;
  const mName = momentumName(optimizer);
  if (m !== undefined && (mName === undefined || typeof m !== "number" || !Number.isFinite(m) || m < 0 || (mName === "beta1" && m >= 1))) {
    throw new StateError(`saved ${mName ?? "momentum"} ${String(m)} does not fit ${optimizer.getClassName()}${mName === "beta1" ? " (beta1 must be in [0, 1))" : mName ? " (must be a finite number >= 0)" : " (it has none)"}`);
  }
}
