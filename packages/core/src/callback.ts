import type * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import type { Batch, DataSource } from "./data.js";
import type { EventName } from "./events.js";
import type { Hyperparameters } from "./hyperparams.js";
import type { Logger } from "./logger.js";
import type { LogOptions } from "./logs.js";
import type { RunSnapshot } from "./snapshot.js";
import type { FitOutcome, Logs, StateDict, StopDetails, TrainState } from "./state.js";

export type Awaitable<T> = T | Promise<T>;

/** Named constants for `order`: lower runs first in `before*` hooks (and last in `after*`). */
export const ORDER = {
  FIRST: -10_000,
  SETUP: -1_000,
  /** Schedules set hyperparameters before anything reads them. */
  SCHEDULE: -200,
  DEFAULT: 0,
  /** Gradient transforms (clipping) after other gradient hooks. */
  GRADIENT: 100,
  /** Guards (NaN, divergence) see transformed gradients and fresh losses. */
  GUARD: 200,
  /** Monitors (early stopping, plateau) read final epoch logs. */
  MONITOR: 500,
  CHECKPOINT: 800,
  LOG: 900,
  LAST: 10_000,
} as const;

export type { Batch } from "./data.js";

/** What every hook sees: a narrow view of the run, never the trainer. */
export interface HookContext {
  readonly event: EventName;
  /** Name of the plugin this context belongs to (used to record stop requests). */
  readonly plugin: string;
  readonly state: Readonly<TrainState>;
  /** Shortcut for `state.logs`. */
  readonly logs: Readonly<Logs>;
  /** Learning rate and momentum of the optimizer, read and written the same way for every optimizer. */
  readonly hyper: Hyperparameters;
  readonly logger: Logger;
  readonly model: LayersModel;
  readonly optimizer: tf.Optimizer;
  /**
   * Ask the run to stop after the current batch; requests from several plugins OR together.
   * `details` (numbers, strings) go into `outcome.stopRequests` beside the reason.
   */
  requestStop(reason: string, details?: StopDetails): void;
  readonly stopRequested: boolean;
  /**
   * Adds a value to the logs under `name` (not one the loop writes: loss, metrics, `val_*`).
   * - In training-batch hooks it is part of this batch's logs (`ctx.logs` from `beforeStep` on,
   *   `state.batchLogs`, observers) and is reduced over the epoch (`options.reduce`, default mean
   *   over the batches that logged it). A scalar tensor is read together with the loss in the step's
   *   one device read, so tensors can be logged up to `afterGradients`; the loop disposes it (also
   *   when the call is refused). The loop's own tensors (loss, outputs, gradients, variables) are
   *   logged as clones. In one step a name belongs to the first plugin that logs it.
   * - In epoch hooks (`beforeEpoch` .. `afterEpoch`) it is an epoch value (numbers only), also
   *   written into that epoch's history record.
   */
  log(name: string, value: number | tf.Scalar, options?: LogOptions): void;
  /**
   * The whole run as it stands: position and data cursor, RNG, every plugin's state, optimizer slots
   * and model weights, as plain arrays (`fit({ resumeFrom })` continues from it exactly). Only at the
   * safe points, `batchCheckpoint` and `epochCheckpoint`; every caller there gets the same snapshot.
   */
  snapshot(): Promise<RunSnapshot>;
  /**
   * A uniform number in [0, 1). In deterministic mode (`seed`), the synchronous part of every hook
   * draws `Math.random` (so `tf.random*` without a seed too) from a stream of the run seed, the
   * plugin, the event and the position: two runs with one seed draw the same, also after a resume.
   */
  random(): number;
  /**
   * Optimizer updates an epoch will apply when nothing is skipped: the batches per epoch through
   * every plugin's `updatesPerEpoch` (fewer with gradient accumulation); undefined when the source's
   * length is unknown. Schedules size themselves with it.
   */
  readonly updatesPerEpoch: number | undefined;
  /** The run's data sources (`fit({ train, validation })`), e.g. to recompute BatchNorm statistics after weight averaging. */
  readonly data: { readonly train: DataSource; readonly validation: DataSource | undefined };
}

/** Context of training-batch hooks; tensors are valid only during the hook. */
export interface BatchContext extends HookContext {
  readonly batch: Batch;
  readonly batchSize: number;
  /** Model outputs (from `afterForward` on). */
  readonly outputs: tf.Tensor | undefined;
  /** The scalar loss tensor (from `afterForward` on); its value is `logs.loss` from `beforeStep` on. */
  readonly loss: tf.Scalar | undefined;
  /** Gradients by variable name (from `afterGradients` to `beforeStep`), with any pending `scaleGradients` applied. */
  readonly grads: Readonly<tf.NamedTensorMap> | undefined;
  /**
   * Multiply this step's update by `scale` (a scalar tensor; the loop owns it), e.g. clipping by
   * global norm. It is applied with the update (fused into the optimizer where the backend can, so no
   * scaled copy of every gradient is made), or when a later hook reads `ctx.grads`. Scales compose.
   * In afterGradients or beforeStep.
   */
  scaleGradients(scale: tf.Scalar): void;
  /** True in `afterStep`/`afterBatch` when the step was cancelled or skipped. */
  readonly stepSkipped: boolean;
  /**
   * True from `afterForward` to `beforeStep` once a plugin has asked to skip this step's update
   * (`ctx.skipStep`): gradient transforms and guards can then leave the gradients alone (gradient
   * accumulation skips every micro-batch but the last of a group).
   */
  readonly skipRequested: boolean;
  /** Whether this batch's logs have, or will have after the step's device read, a value for `name`. */
  hasLog(name: string): boolean;
  /**
   * Do not apply this step's update, but let every other plugin's hooks run (a guard after you still
   * sees the step; unlike throwing `CancelStep`, which ends the phase). From afterForward to beforeStep.
   */
  skipStep(reason: string): void;
}

export interface FitEndContext extends HookContext {
  readonly outcome: FitOutcome;
}

type Hook<C = HookContext> = (ctx: C) => Awaitable<void>;

/**
 * A plugin. Classes and plain objects (`{ afterEpoch: (ctx) => ... }`) both work.
 * Every field is optional; hooks that are absent cost nothing.
 */
export interface Callback {
  /** Unique name in a run; defaults to the class name (or `inline#<index>`). */
  readonly name?: string;
  /** Position in the loop; lower runs earlier in `before*` hooks. See `ORDER`. */
  readonly order?: number;
  /** Names of plugins this one must run after (in `before*` hooks). */
  readonly runsAfter?: readonly string[];
  /** Names of plugins this one must run before (in `before*` hooks). */
  readonly runsBefore?: readonly string[];
  /** Unique key of this plugin's state in a checkpoint. */
  readonly stateKey?: string;
  stateDict?(): StateDict;
  loadStateDict?(state: StateDict): void;
  /**
   * A plugin that applies fewer optimizer updates than there are batches (gradient accumulation)
   * says how many an epoch of `batchesPerEpoch` batches gets, so schedules size themselves in
   * updates (`ctx.updatesPerEpoch`). Must return an integer in [0, batchesPerEpoch].
   */
  updatesPerEpoch?(batchesPerEpoch: number): number;

  beforeFit?: Hook;
  beforeEpoch?: Hook;
  beforeTrain?: Hook;
  beforeBatch?: Hook<BatchContext>;
  afterForward?: Hook<BatchContext>;
  afterLoss?: Hook<BatchContext>;
  /**
   * May return replacement gradients (same names, shapes and dtypes); the loop disposes the ones
   * replaced. Tensors made during the batch become the loop's once returned (`tf.keep` or not) and
   * are disposed after the update. A tensor made before the batch began (a cache made in `beforeFit`)
   * is used through a clone and stays yours; returning a disposed tensor (a cache made lazily during
   * an earlier step, which the loop disposed) is an `INVALID_GRADIENTS` error that says so.
   */
  afterGradients?: (ctx: BatchContext) => Awaitable<tf.NamedTensorMap | void>;
  beforeStep?: Hook<BatchContext>;
  /**
   * Right before `applyGradients`, only when the update is applied (after every skip decision):
   * the weights are still those the gradients were taken at. For changes that belong with the update
   * itself, such as decoupled weight decay. Too late to skip (a `CancelStep` here is an error).
   */
  beforeUpdate?: Hook<BatchContext>;
  afterStep?: Hook<BatchContext>;
  afterBatch?: Hook<BatchContext>;
  afterTrain?: Hook;
  beforeValidate?: Hook;
  beforeValBatch?: Hook<BatchContext>;
  afterValBatch?: Hook<BatchContext>;
  afterValidate?: Hook;
  afterEpoch?: Hook;
  /** Safe point after every plugin's `afterBatch`: save here (`ctx.snapshot()`); do not change state. */
  batchCheckpoint?: Hook;
  /** Safe point after every plugin's `afterEpoch` (fresh `val_*` logs, monitors decided): save here. */
  epochCheckpoint?: Hook;
  afterFit?: Hook<FitEndContext>;
  /**
   * Release resources. Called after `afterFit` for plugins the run container constructed (plugin
   * classes); plugins passed as instances belong to the caller and are not disposed.
   */
  dispose?(): Awaitable<void>;
}

/** Base class that names a plugin after its class. Extending it is optional. */
export abstract class BaseCallback implements Callback {
  get name(): string {
    return this.constructor.name;
  }
}
