import * as tf from "@tensorflow/tfjs-core";
import { scaleTensors } from "@fitloop/core";

/**
 * The multiplier of one decoupled weight-decay step, `1 - lr * wd` (PyTorch's AdamW:
 * `param.mul_(1 - lr * weight_decay)`), in float64 on the host.
 */
export function decayFactor(learningRate: number, weightDecay: number): number {
  return 1 - learningRate * weightDecay;
}

/**
 * Decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"): every
 * variable `w <- w * factor`, with `factor = decayFactor(lr, wd)`, on the device and in place
 * (`assign`), without reading anything back. Call it right before the optimizer's update, on the
 * weights the gradients were taken at: that order is AdamW's. A scalar `factor` stays the caller's.
 */
export function decoupledWeightDecay(variables: readonly tf.Variable[], factor: number | tf.Scalar): void {
  if (factor === 1 || variables.length === 0) return;
  tf.tidy(() => {
    const f = typeof factor === "number" ? tf.scalar(factor) : factor;
    // one fused dispatch over every variable where the backend has it (fitloop's wasm), tf.mul
    // elsewhere; donated: each variable is replaced right here, so where nothing else holds its
    // buffer the decay is written in place, and assign (no copy) keeps it
    const decayed = scaleTensors(variables, f, { donate: true });
    variables.forEach((v, i) => v.assign(decayed[i]!));
  });
}
