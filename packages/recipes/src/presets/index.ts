import { buildPreset, type Preset } from "./wiring.js";
import type { PresetOptions } from "./options.js";

/*
 * Named recipes that wire the plugins with defaults whose sources are printed (`preset.describe()`).
 * This entry is browser-safe: it makes the optimizer, schedule, clipping, weight decay, NaN guard,
 * early stopping, and checkpoints into a store you give. The same presets from
 * "@fitloop/recipes/node" also write checkpoints, a CSV log and a report under `dir`, and draw a
 * progress bar.
 */

/**
 * Training a classifier from scratch: Adam at 3e-4 (the peak of a 5 % warmup and a cosine decay),
 * decoupled weight decay, global-norm clipping at 1, a NaN guard, early stopping on val_loss with
 * patience by dataset size and the best weights restored.
 * `new Trainer({ model, loss, metrics: ["acc"], ...preset.trainer })`.
 */
export function classification(options: PresetOptions): Preset {
  return buildPreset("classification", options);
}

/** Regression from scratch: the same wiring as `classification`; pair it with standardised targets and `priorBiasInit(..., { kind: "regression" })`. */
export function regression(options: PresetOptions): Preset {
  return buildPreset("regression", options);
}

/** Fine-tuning pretrained weights: BERT's recipe (Adam 3e-5, 10 % warmup, weight decay 0.01, clip 1), patience 3. */
export function fineTune(options: PresetOptions): Preset {
  return buildPreset("fineTune", options);
}

export { buildPreset, type Preset, type PresetPlugins, type PresetIO } from "./wiring.js";
export type { PresetOptions, ScheduleOption, WarmupCosineOptions, OneCycleScheduleOptions, DataShape } from "./options.js";
export { PRESET_DEFAULTS, PATIENCE_RULE, PATIENCE_UNKNOWN, ONE_CYCLE, DROPOUT_ADVICE, OPTIMIZER_SOURCE, patienceFor, type PresetDefaults, type PresetName, type Sourced, type OptimizerFamily, type ScheduleKind } from "./defaults.js";
export { formatWiring, type WiringRow } from "./describe.js";
