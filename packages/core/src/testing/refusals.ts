import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import type { FitloopError } from "../errors.js";

/**
 * Assertions for adversarial tests of bad input: the input must be refused with the expected typed
 * error (class and stable `code`), the message must name the culprit (the option, key, sample or
 * batch), and nothing may change: `tf.memory().numTensors` and, when a model is given, its weights.
 * Framework-neutral: a failed check throws a `RefusalCheckError` that says what differed.
 */

export type ErrorClass<E> = abstract new (...args: never[]) => E;
/** What the message must name: a string it contains, a pattern it matches, or several. */
export type Culprit = string | RegExp | readonly (string | RegExp)[];

export interface RefusalGuard {
  /** A model whose weights must be unchanged afterwards. */
  readonly model?: LayersModel;
}

/** A refusal check that failed: the wrong error, a message that does not name the culprit, a leak, changed weights. */
export class RefusalCheckError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RefusalCheckError";
  }
}

/** Every weight of `model` as plain numbers. */
export function weightsOf(model: LayersModel): number[][] {
  return model.getWeights().map((w) => Array.from(w.dataSync()));
}

function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name} (${(e as Partial<FitloopError>).code ?? "no code"}): ${e.message}` : String(e);
}

function checkRefusal<E extends FitloopError>(caught: { error: unknown } | undefined, type: ErrorClass<E>, code: string, culprit: Culprit, before: { tensors: number; weights: number[][] | undefined }, guard: RefusalGuard): E {
  if (!caught) throw new RefusalCheckError(`expected a ${type.name} (${code}), but nothing was thrown`);
  const e = caught.error;
  if (!(e instanceof type)) throw new RefusalCheckError(`expected a ${type.name} (${code}), got ${describeError(e)}`, { cause: e });
  const err = e as E;
  if (err.code !== code) throw new RefusalCheckError(`expected code ${code}, got ${describeError(err)}`, { cause: err });
  for (const c of Array.isArray(culprit) ? culprit : [culprit]) {
    const named = typeof c === "string" ? err.message.includes(c) : (c as RegExp).test(err.message);
    if (!named) throw new RefusalCheckError(`the message does not name ${typeof c === "string" ? JSON.stringify(c) : String(c)}: ${err.message}`, { cause: err });
  }
  const after = tf.memory().numTensors;
  if (after !== before.tensors) throw new RefusalCheckError(`tensors left behind: ${before.tensors} before, ${after} after (${err.message})`, { cause: err });
  if (guard.model && JSON.stringify(weightsOf(guard.model)) !== JSON.stringify(before.weights)) throw new RefusalCheckError(`the weights changed (${err.message})`, { cause: err });
  return err;
}

/** `fn` throws a `type` with `code` whose message names `culprit`; no tensor is left behind and the weights are unchanged. */
export function expectRefused<E extends FitloopError>(fn: () => unknown, type: ErrorClass<E>, code: string, culprit: Culprit, guard: RefusalGuard = {}): E {
  const before = { tensors: tf.memory().numTensors, weights: guard.model ? weightsOf(guard.model) : undefined };
  let caught: { error: unknown } | undefined;
  try {
    fn();
  } catch (error) {
    caught = { error };
  }
  return checkRefusal(caught, type, code, culprit, before, guard);
}

/** As `expectRefused`, for a function that rejects. */
export async function expectRejected<E extends FitloopError>(fn: () => Promise<unknown>, type: ErrorClass<E>, code: string, culprit: Culprit, guard: RefusalGuard = {}): Promise<E> {
  const before = { tensors: tf.memory().numTensors, weights: guard.model ? weightsOf(guard.model) : undefined };
  let caught: { error: unknown } | undefined;
  try {
    await fn();
  } catch (error) {
    caught = { error };
  }
  return checkRefusal(caught, type, code, culprit, before, guard);
}
