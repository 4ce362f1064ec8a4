import {
  captureWeights,
  isStateful,
  loadOptimizerStateDict,
  loadWeights,
  optimizerStateDict,
  parseOptions,
  Trainer,
  trainableVariables,
  type Callback,
  type Logger,
  type OptimizerStateDict,
  type PluginClass,
  type SavedWeight,
  type StateDict,
  type StatefulCallback,
} from "@fitloop/core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import type * as tf from "@tensorflow/tfjs-core";
import { finderSchema, type FindLearningRateOptions } from "./options.js";
import { LRRangeTest, type RangeTestResult } from "./range-test.js";

/** Everything the range test changes, as it was before. */
interface Saved {
  readonly weights: SavedWeight[];
  readonly optimizer: OptimizerStateDict;
  readonly plugins: readonly [StatefulCallback, StateDict][];
}

/**
 * The learning-rate range test (Leslie Smith 2015; fastai's `lr_find`): trains from the model's
 * current weights with a learning rate that grows each step from `startLr` towards `endLr`, records
 * the loss, and stops after `steps` steps or when the smoothed loss diverges. Returns the curve,
 * fastai's suggestions (`valley`, `steep`, `minimum`, `slide`), the chosen one as `lr`, and a
 * verdict on how far to trust it.
 *
 * Afterwards, also when the run throws, every model weight (trainable or not), the optimizer's slots,
 * accumulators, iteration count, learning rate and momentum, and the states of stateful plugins in
 * `callbacks` are exactly what they were, bit for bit. The run uses its own seeded randomness
 * (`seed`) and never advances the global `Math.random`; data sources are read by cursor from epoch 0,
 * so nothing of a later `fit` changes.
 */
export async function findLearningRate(options: FindLearningRateOptions): Promise<RangeTestResult> {
  const o = parseOptions("findLearningRate", finderSchema, options);
  const { model, optimizer, loss, train, seed, suggest, steps } = o;
  const rangeTest = new LRRangeTest({ startLr: o.startLr, endLr: o.endLr, steps, mode: o.mode, smoothing: o.smoothing, stopDivergence: o.stopDivergence, divergenceFactor: o.divergenceFactor });
  const callbacks = o.callbacks ?? [];
  // Before anything changes: an optimizer fitloop cannot save (StateError) fails here.
  const saved = await save(model, optimizer, callbacks);
  const trainer = new Trainer({
    model,
    optimizer,
    loss,
    ...(o.metrics ? { metrics: o.metrics } : {}),
    callbacks: [rangeTest, ...callbacks],
    seed,
    ...(o.logger ? { logger: o.logger } : {}),
  });
  // fastai's lr_find: num_it // len(dls.train) + 1 epochs (the sweep stops itself after `steps` steps)
  const perEpoch = train.batchesPerEpoch;
  const epochs = perEpoch !== undefined && perEpoch > 0 ? Math.floor(steps / perEpoch) + 1 : steps;
  let failure: { error: unknown } | undefined;
  try {
    await trainer.fit({ epochs, train });
  } catch (e) {
    failure = { error: e };
  } finally {
    restore(model, optimizer, saved, failure, o.logger);
  }
  if (failure) throw failure.error;
  const result = rangeTest.result(suggest, o.confidence ?? {});
  o.logger?.debug(`findLearningRate: ${result.steps} steps, ${result.stopReason} (${result.stopMessage}); ${suggest} ${result.lr ?? "none"}; confidence ${result.confidence.verdict}`);
  return result;
}

async function save(model: LayersModel, optimizer: tf.Optimizer, callbacks: readonly (Callback | PluginClass)[]): Promise<Saved> {
  const optimizerState = await optimizerStateDict(optimizer, trainableVariables(model));
  const plugins: [StatefulCallback, StateDict][] = [];
  for (const cb of callbacks) {
    if (typeof cb === "function" || !isStateful(cb)) continue; // a plugin class is constructed fresh by the run: no state of yours
    let state: StateDict;
    try {
      state = structuredClone(cb.stateDict());
    } catch {
      continue; // nothing to save yet (an unfitted normaliser)
    }
    plugins.push([cb, state]);
  }
  return { weights: await captureWeights(model), optimizer: optimizerState, plugins };
}

/**
 * Puts everything back. Each part is attempted even when another fails; a failure to restore is
 * thrown (it matters more than the run's own error, which is then logged).
 */
function restore(model: LayersModel, optimizer: tf.Optimizer, saved: Saved, failure: { error: unknown } | undefined, logger: Logger | undefined): void {
  const errors: unknown[] = [];
  const attempt = (fn: () => void) => {
    try {
      fn();
    } catch (e) {
      errors.push(e);
    }
  };
  attempt(() => loadWeights(model, saved.weights));
  attempt(() => loadOptimizerStateDict(optimizer, saved.optimizer, trainableVariables(model)));
  for (const [cb, state] of saved.plugins) attempt(() => cb.loadStateDict(state));
  if (errors.length === 0) return;
  if (failure) (logger ?? console).error("findLearningRate: the range test failed, and restoring the model failed too; the run's error:", failure.error);
  throw errors.length === 1 ? errors[0] : new AggregateError(errors, "findLearningRate: restoring the model, optimizer or plugin states failed");
}
