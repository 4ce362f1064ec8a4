/**
 * Shared parts of the adversarial suites: core's refusal assertions (`@fitloop/core/testing`: the
 * expected typed error and `code`, the culprit named in the message, `tf.memory().numTensors`
 * unchanged) and `drain`.
 */
import * as tf from "@tensorflow/tfjs-core";

export { expectRefused, expectRejected, type Culprit, type ErrorClass } from "@fitloop/core/testing";

/** Reads every batch of an epoch as the loop does (disposing each), optionally stopping after `limit`. */
export async function drain(batches: Iterable<{ xs: tf.Tensor; ys: tf.Tensor }> | AsyncIterable<{ xs: tf.Tensor; ys: tf.Tensor }>, limit = Infinity): Promise<number> {
  let n = 0;
  for await (const b of batches) {
    tf.dispose([b.xs, b.ys]);
    if (++n >= limit) break;
  }
  return n;
}
