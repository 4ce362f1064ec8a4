import * as tf from "@tensorflow/tfjs-core";

/**
 * Names of the fused kernels below: fitloop's wasm kernels register them (one dispatch and one pass
 * over many tensors); on other backends the same results come from tfjs ops.
 */
export const SUM_OF_SQUARES_KERNEL = "FitloopSumOfSquares";
export const SCALE_TENSORS_KERNEL = "FitloopScaleTensors";
export const NORM_SCALE_KERNEL = "FitloopNormScale";

const fused = (kernel: string, tensors: readonly tf.Tensor[]): boolean => tensors.every((t) => t.dtype === "float32") && tf.getKernel(kernel, tf.getBackend()) !== undefined;

/** `sum over tensors of sum(t^2)` as a scalar on the device. */
export function sumOfSquares(tensors: readonly tf.Tensor[]): tf.Scalar {
  if (tensors.length === 0) return tf.scalar(0);
  if (fused(SUM_OF_SQUARES_KERNEL, tensors)) return tf.engine().runKernel(SUM_OF_SQUARES_KERNEL, [...tensors] as unknown as tf.NamedTensorMap) as tf.Scalar;
  return tf.tidy(() => tf.addN(tensors.map((t) => tf.sum(tf.square(t)))) as tf.Scalar);
}

/** Every tensor times the scalar `scale` (a tensor on the device), as new tensors in the same order. */
export function scaleTensors(tensors: readonly tf.Tensor[], scale: tf.Scalar): tf.Tensor[] {
  if (tensors.length === 0) return [];
  if (fused(SCALE_TENSORS_KERNEL, [scale, ...tensors])) return tf.engine().runKernel(SCALE_TENSORS_KERNEL, [scale, ...tensors] as unknown as tf.NamedTensorMap) as unknown as tf.Tensor[];
  return tensors.map((t) => tf.mul(t, scale));
}

/**
 * The global L2 norm of a set of gradients, `sqrt(sum over tensors of sum(g^2))` (PyTorch's
 * `clip_grad_norm_` norm), as a scalar on the device. Non-finite when any gradient is. For plugins
 * that clip or watch gradients: log it with `ctx.log("grad_norm", ...)` so it rides in the step's read.
 */
export function globalNorm(grads: Readonly<tf.NamedTensorMap>): tf.Scalar {
  return tf.tidy(() => tf.sqrt(sumOfSquares(Object.values(grads))) as tf.Scalar);
}

/**
 * The global norm of `grads` and the factor that clips them to `maxNorm`,
 * `maxNorm / max(norm, maxNorm)` (1 below the limit, NaN when the norm is), as scalars on the device:
 * gradient clipping's whole computation, one fused kernel where the backend has `FitloopNormScale`.
 */
export function globalNormScale(grads: Readonly<tf.NamedTensorMap>, maxNorm: number): { norm: tf.Scalar; scale: tf.Scalar } {
  const tensors = Object.values(grads);
  if (tensors.length > 0 && fused(NORM_SCALE_KERNEL, tensors)) {
    const [norm, scale] = tf.engine().runKernel(NORM_SCALE_KERNEL, tensors as unknown as tf.NamedTensorMap, { maxNorm } as unknown as tf.NamedAttrMap) as unknown as tf.Scalar[];
    return { norm: norm!, scale: scale! };
  }
  return tf.tidy(() => {
    const norm = globalNorm(grads);
    return { norm, scale: tf.div(maxNorm, tf.maximum(norm, maxNorm)) as tf.Scalar };
  });
}

/**
 * Applies `grads * scale` to the optimizer. A backend package may register a fused way (fitloop's
 * wasm Adam multiplies the scale in while it reads each gradient, so no scaled copy is made);
 * otherwise the gradients are scaled first (`scaleTensors`) and applied as usual.
 */
export type ScaledApply = (optimizer: tf.Optimizer, grads: tf.NamedTensorMap, scale: tf.Scalar) => boolean;

/**
 * Shared with backend packages without an import either way (`@fitloop/wasm` adds its fused Adam):
 * both reach the same `Set` through `Symbol.for("fitloop.scaledApply")` on `globalThis`.
 */
const SCALED_APPLY = Symbol.for("fitloop.scaledApply");
const scaledAppliers = ((globalThis as { [SCALED_APPLY]?: Set<ScaledApply> })[SCALED_APPLY] ??= new Set<ScaledApply>());

/** Registers a fused `grads * scale` update; it returns false where it does not apply. Returns the unregister function. */
export function registerScaledApply(apply: ScaledApply): () => void {
  scaledAppliers.add(apply);
  return () => scaledAppliers.delete(apply);
}

export function applyGradientsScaled(optimizer: tf.Optimizer, grads: tf.NamedTensorMap, scale: tf.Scalar): void {
  for (const apply of scaledAppliers) if (apply(optimizer, grads, scale)) return;
  const names = Object.keys(grads);
  const scaled = scaleTensors(Object.values(grads), scale);
  try {
    optimizer.applyGradients(Object.fromEntries(names.map((n, i) => [n, scaled[i]!])));
  } finally {
    tf.dispose(scaled);
  }
}
