/**
 * Shared assertions of core's adversarial suites (state, failure paths, silent mistakes, data).
 * Every refused input must raise the expected typed error (class and stable `code`), name its
 * culprit in the message, and leave `tf.memory().numTensors` and the model's weights exactly as
 * they were.
 */
import { expect } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import type { FitloopError } from "../errors.js";
import { seeded } from "../rng.js";
import { silentLogger } from "../logger.js";
import { Trainer, type TrainerOptions } from "../trainer.js";
import { tensorData } from "../data.js";

export type ErrorClass<E> = abstract new (...args: never[]) => E;
/** What the message must name: a string it contains, a pattern it matches, or several. */
export type Culprit = string | RegExp | readonly (string | RegExp)[];

function check<E extends FitloopError>(e: unknown, type: ErrorClass<E>, code: string, culprit: Culprit): E {
  expect(e, `expected a ${type.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`).toBeInstanceOf(type);
  const err = e as E;
  expect(err.code).toBe(code);
  for (const c of Array.isArray(culprit) ? culprit : [culprit]) {
    if (typeof c === "string") expect(err.message).toContain(c);
    else expect(err.message).toMatch(c as RegExp);
  }
  return err;
}

/** Every weight of `model` as plain numbers (compare before/after with `toEqual`). */
export function weightsOf(model: tfl.LayersModel): number[][] {
  return model.getWeights().map((w) => Array.from(w.dataSync()));
}

interface Guarded {
  /** The model whose weights must not change; omit when no model is involved. */
  model?: tfl.LayersModel;
}

/** `fn` throws a `type` with `code` whose message names `culprit`; no tensor is left behind and the weights are unchanged. */
export function expectRefused<E extends FitloopError>(fn: () => unknown, type: ErrorClass<E>, code: string, culprit: Culprit, guard: Guarded = {}): E {
  const before = tf.memory().numTensors;
  const weights = guard.model ? weightsOf(guard.model) : undefined;
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, "expected a throw").toBeDefined();
  const err = check(caught, type, code, culprit);
  expect(tf.memory().numTensors, "tensors left behind").toBe(before);
  if (guard.model) expect(weightsOf(guard.model), "weights changed").toEqual(weights);
  return err;
}

/** As `expectRefused`, for a function that rejects. */
export async function expectRejected<E extends FitloopError>(fn: () => Promise<unknown>, type: ErrorClass<E>, code: string, culprit: Culprit, guard: Guarded = {}): Promise<E> {
  const before = tf.memory().numTensors;
  const weights = guard.model ? weightsOf(guard.model) : undefined;
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, "expected a rejection").toBeDefined();
  const err = check(caught, type, code, culprit);
  expect(tf.memory().numTensors, "tensors left behind").toBe(before);
  if (guard.model) expect(weightsOf(guard.model), "weights changed").toEqual(weights);
  return err;
}

/** A small seeded classifier: 4 inputs, 8 hidden, 3 classes (softmax). */
export function smallModel(seed = 1, inputs = 4, classes = 3): tfl.LayersModel {
  return seeded(seed, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [inputs], units: 8, activation: "relu" }));
    m.add(tfl.layers.dense({ units: classes, activation: "softmax" }));
    return m;
  });
}

/** 24 samples of 4 features with labels 0..2, as tensors the caller disposes. */
export function smallData(samples = 24, seed = 2): { xs: tf.Tensor2D; ys: tf.Tensor1D } {
  return seeded(seed, () => ({
    xs: tf.randomNormal([samples, 4]) as tf.Tensor2D,
    ys: tf.tensor1d(Array.from({ length: samples }, (_, i) => i % 3)),
  }));
}

/**
 * A trainer on `smallModel` (Adam, sparse cross-entropy, silent logger) and its data. The
 * optimizer is created, and a throwaway step is not taken: counts taken after this call include
 * everything the trainer holds.
 */
export function smallRun(options: Partial<TrainerOptions> = {}) {
  const model = options.model ?? smallModel();
  const data = smallData();
  const trainer = new Trainer({ model, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", logger: silentLogger, ...options });
  return {
    model,
    trainer,
    xs: data.xs,
    ys: data.ys,
    train: (batchSize = 8) => tensorData(data.xs, data.ys, { batchSize, seed: 3 }),
    dispose() {
      model.dispose();
      tf.dispose([data.xs, data.ys]);
    },
  };
}
