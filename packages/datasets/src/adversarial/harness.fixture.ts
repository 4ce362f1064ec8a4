/**
 * Shared assertions of the adversarial suites: every refused input must raise the expected typed
 * error (class and stable `code`), name its culprit in the message, and leave `tf.memory().numTensors`
 * exactly as it was.
 */
import { expect } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import type { FitloopError } from "@fitloop/core";

export type ErrorClass<E> = abstract new (...args: never[]) => E;
export type Culprit = string | RegExp | readonly (string | RegExp)[];

function check<E extends FitloopError>(e: unknown, type: ErrorClass<E>, code: string, culprit: Culprit): E {
  expect(e, `expected a ${type.name}, got ${String(e)}`).toBeInstanceOf(type);
  const err = e as E;
  expect(err.code).toBe(code);
  for (const c of Array.isArray(culprit) ? culprit : [culprit]) {
    if (typeof c === "string") expect(err.message).toContain(c);
    else expect(err.message).toMatch(c as RegExp);
  }
  return err;
}

/** `fn` throws a `type` with `code` whose message names `culprit`; no tensor is left behind. */
export function expectRefused<E extends FitloopError>(fn: () => unknown, type: ErrorClass<E>, code: string, culprit: Culprit): E {
  const before = tf.memory().numTensors;
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, "expected a throw").toBeDefined();
  const err = check(caught, type, code, culprit);
  expect(tf.memory().numTensors, "tensors left behind").toBe(before);
  return err;
}

/** As `expectRefused`, for a function that rejects. */
export async function expectRejected<E extends FitloopError>(fn: () => Promise<unknown>, type: ErrorClass<E>, code: string, culprit: Culprit): Promise<E> {
  const before = tf.memory().numTensors;
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, "expected a rejection").toBeDefined();
  const err = check(caught, type, code, culprit);
  expect(tf.memory().numTensors, "tensors left behind").toBe(before);
  return err;
}

/** Reads every batch of an epoch as the loop does (disposing each), optionally stopping after `limit`. */
export async function drain(batches: Iterable<{ xs: tf.Tensor; ys: tf.Tensor }> | AsyncIterable<{ xs: tf.Tensor; ys: tf.Tensor }>, limit = Infinity): Promise<number> {
  let n = 0;
  for await (const b of batches) {
    tf.dispose([b.xs, b.ys]);
    if (++n >= limit) break;
  }
  return n;
}
