import * as tf from "@tensorflow/tfjs-core";
import { globalNorm, globalNormScale, scaleTensors, sumOfSquares } from "@fitloop/core";

export { globalNorm, globalNormScale };

/**
 * What a clipping function returns; every tensor in it is new and the caller's to dispose, except
 * gradients passed through unchanged (the same tensor object as the input).
 */
export interface ClipResult {
  /** The clipped gradients, same names as the input. */
  readonly grads: tf.NamedTensorMap;
  /** The global L2 norm of the gradients before clipping (non-finite when any gradient is). */
  readonly norm: tf.Scalar;
  /** 1 when clipping changed any gradient, else 0 (float32 scalar). */
  readonly clipped: tf.Scalar;
}


/**
 * Clip by global norm (Keras `global_clipnorm`, `tf.clip_by_global_norm`): every gradient times
 * `maxNorm / max(norm, maxNorm)`, so the clipped gradients have global norm at most `maxNorm` and
 * keep their direction. (PyTorch's `clip_grad_norm_` divides by `norm + 1e-6`: a 1e-6/norm
 * relative difference.)
 */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): ClipResult {
  const { grads: out, norm } = scaleToGlobalNorm(grads, maxNorm);
  return { grads: out, norm, clipped: tf.tidy(() => tf.cast(tf.greater(norm, maxNorm), "float32") as tf.Scalar) };
}

/** `clipByGlobalNorm` without the `clipped` flag. */
export function scaleToGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): { grads: tf.NamedTensorMap; norm: tf.Scalar } {
  return tf.tidy(() => {
    const names = Object.keys(grads);
    const { norm, scale } = globalNormScale(grads, maxNorm);
    const scaled = scaleTensors(Object.values(grads), scale);
    const out: tf.NamedTensorMap = {};
    names.forEach((name, i) => (out[name] = scaled[i]!));
    return { grads: out, norm };
  });
}

/** Clip each gradient to L2 norm `maxNorm` on its own (Keras `clipnorm`, `tf.clip_by_norm`). */
export function clipByNorm(grads: tf.NamedTensorMap, maxNorm: number): ClipResult {
  return tf.tidy(() => {
    const sums = Object.values(grads).map((g) => sumOfSquares([g]));
    const out: tf.NamedTensorMap = {};
    const norms: tf.Scalar[] = [];
    Object.entries(grads).forEach(([name, g], i) => {
      const n = tf.sqrt(sums[i]!) as tf.Scalar;
      norms.push(n);
      out[name] = tf.mul(g, tf.div(maxNorm, tf.maximum(n, maxNorm)));
    });
    const largest = tf.max(tf.stack(norms));
    return { grads: out, norm: tf.sqrt(tf.addN(sums)) as tf.Scalar, clipped: tf.cast(tf.greater(largest, maxNorm), "float32") as tf.Scalar };
  });
}

/** Clip every element to `[-clipValue, clipValue]` (Keras `clipvalue`, Lightning's "value"). */
export function clipByValue(grads: tf.NamedTensorMap, clipValue: number): ClipResult {
  return tf.tidy(() => {
    const out: tf.NamedTensorMap = {};
    const peaks: tf.Scalar[] = [];
    for (const [name, g] of Object.entries(grads)) {
      out[name] = tf.clipByValue(g, -clipValue, clipValue);
      peaks.push(tf.max(tf.abs(g)) as tf.Scalar);
    }
    return { grads: out, norm: globalNorm(grads), clipped: tf.cast(tf.greater(tf.max(tf.stack(peaks)), clipValue), "float32") as tf.Scalar };
  });
}

/**
 * Unit-wise L2 norms (NFNets' `unitwise_norm`): one norm per output unit, i.e. over every axis but
 * the last, for kernels (dense `[in, out]`, conv `[h, w, in, out]`); a single norm for vectors and
 * scalars (biases, gains). Kept dims, so it broadcasts against the tensor.
 */
export function unitwiseNorm(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const squeezedRank = x.shape.filter((d) => d !== 1).length;
    if (x.rank <= 1 || squeezedRank <= 1) return tf.sqrt(tf.sum(tf.square(x)));
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    return tf.sqrt(tf.sum(tf.square(x), axes, true));
  });
}

export interface AdaptiveClipOptions {
  /** λ: the largest allowed ratio of a unit's gradient norm to its weight norm (NFNets use 0.01-0.16). */
  readonly clipping: number;
  /** Weight norms below this count as this (so fresh zero-initialised units can move). Default 1e-3. */
  readonly eps?: number;
  /** Gradient names left as they are (e.g. the final layer, which NFNets do not clip). */
  readonly skip?: ReadonlySet<string>;
}

/**
 * Adaptive gradient clipping (Brock et al. 2021, "High-Performance Large-Scale Image Recognition
 * Without Normalization"), unit-wise as in their reference code and optax's `adaptive_grad_clip`:
 * where `||G_i|| / max(||W_i||, eps) > clipping`, `G_i <- G_i * clipping * max(||W_i||, eps) / ||G_i||`.
 * `params` holds the weights under the gradients' names.
 */
export function adaptiveClip(grads: tf.NamedTensorMap, params: tf.NamedTensorMap, options: AdaptiveClipOptions): ClipResult {
  const eps = options.eps ?? 1e-3;
  return tf.tidy(() => {
    const out: tf.NamedTensorMap = {};
    const engaged: tf.Scalar[] = [];
    for (const [name, g] of Object.entries(grads)) {
      if (options.skip?.has(name)) {
        out[name] = g;
        continue;
      }
      const p = params[name];
      if (!p) throw new Error(`adaptiveClip: no weight named "${name}" for its gradient`);
      const maxNorm = tf.mul(tf.maximum(unitwiseNorm(p), eps), options.clipping);
      const gNorm = unitwiseNorm(g);
      const over = tf.greater(gNorm, maxNorm);
      out[name] = tf.where(over, tf.mul(g, tf.div(maxNorm, tf.maximum(gNorm, 1e-6))), g);
      engaged.push(tf.any(over) as tf.Scalar);
    }
    const clipped = engaged.length ? tf.cast(tf.any(tf.stack(engaged)), "float32") : tf.scalar(0);
    return { grads: out, norm: globalNorm(grads), clipped: clipped as tf.Scalar };
  });
}
