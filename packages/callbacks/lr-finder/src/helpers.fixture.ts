import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { Rng, captureWeights, optimizerStateDict, resolveLoss, trainableVariables, type Callback, type LossFn } from "@fitloop/core";

/** The exact bits of float32 values (toEqual on floats would take -0 for 0). */
export const bits = (values: Float32Array | Int32Array | readonly number[]): number[] => Array.from(new Uint32Array(Float32Array.from(values).buffer));

/** Every model weight, the optimizer's slots, accumulators, iteration count, learning rate and momentum, as bits. */
export async function stateBits(model: LayersModel, optimizer: tf.Optimizer): Promise<unknown> {
  const weights = (await captureWeights(model)).map((w) => ({ shape: w.shape, dtype: w.dtype, bits: bits(w.values) }));
  const o = await optimizerStateDict(optimizer, trainableVariables(model));
  const slots = Object.fromEntries(Object.entries(o.slots).map(([k, list]) => [k, list.map((s) => ({ shape: s.shape, bits: bits(s.values) }))]));
  const scalars = Object.fromEntries(Object.entries(o.scalars).map(([k, v]) => [k, bits([v])]));
  return { weights, kind: o.kind, iterations: o.iterations, slots, scalars, lr: o.hyper!.learningRate, momentum: o.hyper!.momentum };
}

/** Runs `fn` with `Math.random` drawing from a seeded generator (restored after, also on failure); returns what it returns and the next draw. */
export async function withSeededMathRandom<T>(seed: number, fn: () => Promise<T>): Promise<{ value: T; next: number }> {
  const original = Math.random;
  const rng = new Rng(seed);
  Math.random = () => rng.next();
  try {
    const value = await fn();
    return { value, next: Math.random() };
  } finally {
    Math.random = original;
  }
}

/**
 * A loss scaled by `scale.value` (set by a test plugin between batches): sparse categorical cross
 * entropy times 1 normally, times 100 to make a spike, NaN to make it non-finite.
 */
export function scaledLoss(): { loss: LossFn; scale: { value: number } } {
  const scale = { value: 1 };
  const base = resolveLoss("sparseCategoricalCrossentropy");
  return { scale, loss: (y, p) => tf.mul(base(y, p), scale.value) };
}

/** A plugin that sets `scale.value` from the batch's global index (`at(globalBatch)`), before the forward pass. */
export function scaleAt(scale: { value: number }, at: (globalBatch: number) => number): Callback {
  return { name: "ScaleLoss", beforeBatch: (ctx) => void (scale.value = at(ctx.state.globalBatch)) };
}

/** Records the learning rate every step runs with (in beforeStep, after every plugin that sets it) and each batch's loss. */
export function recorder(): Callback & { lr: number[]; loss: number[] } {
  const lr: number[] = [];
  const loss: number[] = [];
  return { name: "Recorder", lr, loss, beforeStep: (ctx) => void lr.push(ctx.hyper.learningRate), afterBatch: (ctx) => void loss.push(ctx.logs.loss!) };
}

/** A stateful plugin that counts the batches it has seen. */
export function counter(): Callback & { n: number } {
  const c = {
    name: "Counter",
    stateKey: "counter",
    n: 0,
    afterBatch: () => void c.n++,
    stateDict: () => ({ n: c.n }),
    loadStateDict: (s: { readonly [k: string]: unknown }) => void (c.n = s["n"] as number),
  };
  return c;
}
