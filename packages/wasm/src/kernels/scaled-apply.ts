import type { NamedTensorMap, Optimizer, Scalar } from "@tensorflow/tfjs-core";

/**
 * The registry of fused `grads * scale` updates, shared with `@fitloop/core` without an import
 * either way: both sides reach the same `Set` through `Symbol.for("fitloop.scaledApply")` on
 * `globalThis` (core's `applyGradientsScaled` tries each entry before scaling the gradients itself).
 * The contract: an entry applies the update and returns true, or returns false and changes nothing.
 */
export type ScaledApply = (optimizer: Optimizer, grads: NamedTensorMap, scale: Scalar) => boolean;

const KEY = Symbol.for("fitloop.scaledApply");

function registry(): Set<ScaledApply> {
  const g = globalThis as { [KEY]?: Set<ScaledApply> };
  return (g[KEY] ??= new Set<ScaledApply>());
}

/** Adds a fused update; returns the function that removes it. */
export function registerScaledApply(apply: ScaledApply): () => void {
  registry().add(apply);
  return () => registry().delete(apply);
}
