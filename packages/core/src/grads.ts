import * as tf from "@tensorflow/tfjs-core";

/**
 * Names of the fused kernels below: fitloop's wasm kernels register them (one dispatch and one pass
 * over many tensors); on other backends the same results come from tfjs ops.
 */
export const SUM_OF_SQUARES_KERNEL = "FitloopSumOfSquares";
export const SCALE_TENSORS_KERNEL = "FitloopScaleTensors";

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
