import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { Lifecycle, type DependencyContainer } from "tsyringe";
import { ObserverBus, type Observer } from "./bus.js";
import { CancelFit, Cancellation, misplacedCancel } from "./cancel.js";
import type { Callback } from "./callback.js";
import type { DataSource } from "./data.js";
import { FitloopError, PluginError } from "./errors.js";
import { createRootContainer, isPluginClass, TOKENS, type PluginClass } from "./di.js";
import type { EventName } from "./events.js";
import { hyperparameters } from "./hyperparams.js";
import type { Logger } from "./logger.js";
import { fitLoop } from "./loop.js";
import { resolveLoss, resolveMetrics, type LossFn, type LossName, type MetricSpec } from "./losses.js";
import { fitOptionsSchema, parseOptions, trainerOptionsSchema } from "./options.js";
import { describeOrder, resolveOrder, type ResolvedPlugin } from "./order.js";
import { preflight } from "./preflight.js";
import { explainMissingKernel } from "./backend.js";
import { BatchChecker } from "./batch-checks.js";
import { Rng, type RngState } from "./rng.js";
import { RunScope } from "./run.js";
import { collectStateful } from "./stateful.js";
import { copyProgress, createTrainState, type TrainerStateDict, emptyEpochProgress, trainStateDict, type FitOutcome, type StateDict, type TrainState, type TrainStateDict } from "./state.js";
import { captureWeights, checkWeights, loadWeights, SNAPSHOT_FORMAT, trainableVariables, type RunSnapshot } from "./snapshot.js";
import { checkOptimizerStateDict, loadOptimizerStateDict, optimizerStateDict } from "./optimizer-state.js";
import { parseTrainerStateDict } from "./state-schema.js";
import { checkPluginState } from "./state-codec.js";
import { StateError } from "./errors.js";

export interface TrainerOptions {
  model: LayersModel;
  optimizer: tf.Optimizer;
  loss: LossName | LossFn;
  /** `"acc"` picks the accuracy that fits the loss; or `{ name: fn }` for your own. */
  metrics?: MetricSpec[];
  /** Plugin instances, inline hook objects, or plugin classes (constructed by the run container). */
  callbacks?: Array<Callback | PluginClass>;
  /** Deterministic mode: same seed, same run, bit for bit on the cpu backend. */
  seed?: number;
  logger?: Logger;
  /** Root DI container (see `createRootContainer`); a child of it hosts each run. */
  container?: DependencyContainer;
  /** Fail the run (HOOK_TIMEOUT, naming plugin and event) when an async hook takes longer than this. Default: no limit. */
  hookTimeoutMs?: number;
  /**
   * Between batches, at most this often (ms), the loop lets the event loop run, so timers, I/O and
   * signal handlers (progress bars, dashboards, SIGINT checkpoints) are served during the run; the
   * tfjs cpu and wasm backends otherwise never give them a turn. Default 50; 0 after every batch;
   * false never.
   */
  yieldEveryMs?: number | false;
  /**
   * Data checks during training, after the pre-flight check. Every batch's structure and shapes are
   * checked on the host (free). `every: N` also checks the values of every Nth batch on the device:
   * NaN/Inf in the inputs, and targets the loss cannot take (NaN/Inf; class indices out of range;
   * cross-entropy targets outside [0, 1]; not for custom losses). Those flags ride in the step's one
   * packed read, so there is no extra device read; a bad batch is refused before its update with a
   * `DataError` naming epoch, batch and sample. `every: 0` checks values only in the pre-flight.
   * Sources whose batches are rows of what the pre-flight scanned (`tensorData`) need no value
   * checks and get none. Default `{ every: 1 }`.
   */
  dataChecks?: { every: number };
}

export interface FitOptions {
  epochs: number;
  train: DataSource;
  validation?: DataSource;
  /** Start at this epoch (ignored when a state was loaded with `loadStateDict`). */
  initialEpoch?: number;
  /**
   * Continue a run exactly from a snapshot (`ctx.snapshot()` in a checkpoint hook, or
   * `trainer.snapshot()`): weights, optimizer slots, position, RNG and plugin states are checked
   * now and restored before the first step.
   */
  resumeFrom?: RunSnapshot;
}

export interface FitResult {
  readonly outcome: FitOutcome;
  readonly state: Readonly<TrainState>;
}

export type { TrainerStateDict } from "./state.js";

export class Trainer {
  readonly bus: ObserverBus;
  readonly model: LayersModel;
  readonly optimizer: tf.Optimizer;
  private readonly opts: TrainerOptions;
  private readonly root: DependencyContainer;
  private readonly logger: Logger;
  private rng: Rng | undefined;
  private state: TrainState | undefined;
  private pending: TrainerStateDict | undefined;
  private pendingSnapshot: RunSnapshot | undefined;
  private plugins: ResolvedPlugin[] = [];
  private running = false;

  constructor(options: TrainerOptions) {
    parseOptions("Trainer", trainerOptionsSchema, options);
    resolveMetrics(options.metrics ?? [], options.loss); // names checked now, before any work
    this.opts = options;
    this.model = options.model;
    this.optimizer = options.optimizer;
    this.root = options.container ?? createRootContainer(options.logger ? { logger: options.logger } : {});
    this.logger = options.logger ?? this.root.resolve(TOKENS.Logger);
    this.bus = new ObserverBus(this.logger);
    this.rng = options.seed === undefined ? undefined : new Rng(options.seed);
  }

  /** Subscribes an observer (fire-and-forget) to one event or `"*"`; returns the unsubscribe. */
  on(event: EventName | "*", observer: Observer): () => void {
    return this.bus.on(event, observer);
  }

  async fit(options: FitOptions): Promise<FitResult> {
    if (this.running) throw new FitloopError("FIT_IN_PROGRESS", "this Trainer is already running fit(); two runs at once would interleave on the same model and optimizer: await the first");
    parseOptions("Trainer.fit", fitOptionsSchema, options);
    this.running = true;
    try {
      return await this.fitOnce(options);
    } finally {
      this.running = false;
    }
  }

  private async fitOnce(options: FitOptions): Promise<FitResult> {
    if (options.resumeFrom !== undefined) this.loadSnapshot(options.resumeFrom);
    const loss = this.opts.loss;
    const state = createTrainState(options.epochs);
    state.hasValidation = options.validation !== undefined;
    const resume = this.pending;
    const run = this.root.createChildContainer();
    try {
      const callbacks = this.resolvePlugins(run, state);
      this.plugins = resolveOrder(callbacks);
      const stateful = collectStateful(callbacks, (cb) => this.plugins.find((p) => p.callback === cb)?.name ?? "?");
      let startEpoch = options.initialEpoch ?? 0;
      let startBatch = 0;
      if (resume) {
        // a cursor at batchesPerEpoch is valid (saved after the last batch, before validation); past it is not
        const perEpoch = options.train.batchesPerEpoch;
        if (perEpoch !== undefined && resume.train.cursor.batchIndex > perEpoch) {
          throw new StateError("the saved state does not fit this data", [{ path: "train.cursor.batchIndex", message: `is ${resume.train.cursor.batchIndex}, but the training data has ${perEpoch} batches per epoch` }]);
        }
        state.resumed = true;
        this.applyResume(resume, state, stateful);
        startEpoch = state.epoch;
        startBatch = state.batchIndex;
      }
      // After plugin state is loaded (a restored normaliser may be what makes the data valid).
      await preflight(this.model, loss, options.train, "train");
      if (options.validation) await preflight(this.model, loss, options.validation, "validation");
      const snapshot = this.pendingSnapshot;
      if (snapshot) {
        // checked in loadSnapshot; applied last, once everything else has succeeded
        loadWeights(this.model, snapshot.weights);
        loadOptimizerStateDict(this.optimizer, snapshot.optimizer, trainableVariables(this.model));
      }
      this.pending = undefined;
      this.pendingSnapshot = undefined;
      this.state = state;
      const metrics = resolveMetrics(this.opts.metrics ?? [], loss);
      const logNames = ["loss", ...metrics.map(([name]) => name)];
      const reserved = new Set([...logNames, ...logNames.map((n) => `val_${n}`)]);
      const scope = new RunScope(state, this.model, this.optimizer, run.resolve(TOKENS.Hyperparameters), this.logger, this.bus, this.plugins, reserved, () => this.snapshot(), this.opts.seed, this.opts.hookTimeoutMs, { train: options.train, validation: options.validation });
      scope.yieldEveryMs = this.opts.yieldEveryMs ?? 50;
      const dataChecksEvery = this.opts.dataChecks?.every ?? 1;
      const spec = {
        train: options.train,
        validation: options.validation,
        loss: resolveLoss(loss),
        metrics,
        rng: this.rng,
        startEpoch,
        startBatch,
        logNames,
        checks: {
          train: new BatchChecker(this.model, loss, "train", dataChecksEvery, options.train.peekCoversBatches === true),
          validation: options.validation ? new BatchChecker(this.model, loss, "validation", dataChecksEvery, options.validation.peekCoversBatches === true) : undefined,
        },
      };
      return await runFit(scope, () => fitLoop(scope, spec));
    } finally {
      await run.dispose();
    }
  }

  private resolvePlugins(run: DependencyContainer, state: TrainState): Callback[] {
    run.register(TOKENS.Model, { useValue: this.model });
    run.register(TOKENS.Optimizer, { useValue: this.optimizer });
    run.register(TOKENS.Hyperparameters, { useValue: hyperparameters(this.optimizer) });
    run.register(TOKENS.TrainState, { useValue: state });
    run.register(TOKENS.Bus, { useValue: this.bus });
    if (!run.isRegistered(TOKENS.Logger, true)) run.register(TOKENS.Logger, { useValue: this.logger });
    const list = this.opts.callbacks ?? [];
    for (const p of list) {
      // Each plugin is also registered under its own class, so another plugin can inject it.
      if (isPluginClass(p)) {
        const cls = p as new () => Callback;
        run.register(cls, { useClass: cls }, { lifecycle: Lifecycle.ContainerScoped });
        run.register(TOKENS.Plugin, { useToken: cls });
      } else {
        const ctor = (p as { constructor?: unknown }).constructor;
        if (typeof ctor === "function" && ctor !== Object) run.register(ctor as new () => Callback, { useValue: p });
        run.register(TOKENS.Plugin, { useValue: p });
      }
    }
    return list.length ? run.resolveAll(TOKENS.Plugin) : [];
  }

  /**
   * Applies a loaded state to this run: plugin states first (each plugin validates its own; if one
   * refuses, the ones already loaded get their previous state back), then position, history, epoch
   * totals and RNG.
   */
  private applyResume(resume: TrainerStateDict, state: TrainState, stateful: Map<string, { stateDict(): StateDict; loadStateDict(s: StateDict): void }>): void {
    const loaded: [{ loadStateDict(s: StateDict): void }, StateDict | undefined][] = [];
    try {
      for (const [key, dict] of Object.entries(resume.plugins)) {
        const p = stateful.get(key);
        if (!p) {
          this.logger.warn(`fitloop: the saved state has plugin state "${key}" but no plugin with that stateKey is registered; ignored`);
          continue;
        }
        let previous: StateDict | undefined;
        try {
          previous = p.stateDict();
        } catch {
          previous = undefined; // a plugin with nothing to save yet (an unfitted normaliser): nothing to take back
        }
        try {
          p.loadStateDict(dict);
        } catch (e) {
          // a plugin's own error (a TypeError on a malformed dict) must still say whose state it was
          throw e instanceof FitloopError ? e : new PluginError(this.plugins.find((x) => x.callback === p)?.name ?? key, "loadStateDict", e);
        }
        loaded.push([p, previous]);
      }
    } catch (e) {
      for (const [p, previous] of loaded.reverse()) {
        if (previous === undefined) continue;
        try {
          p.loadStateDict(previous);
        } catch (rollback) {
          this.logger.error("fitloop: a plugin could not take back its previous state after another refused the saved one", rollback);
        }
      }
      throw e;
    }
    const t = resume.train;
    const midEpoch = t.cursor.batchIndex > 0;
    Object.assign(state, {
      epoch: t.cursor.epoch,
      batchIndex: t.cursor.batchIndex,
      cursor: { ...t.cursor },
      step: t.step,
      globalBatch: t.globalBatch,
      // a mid-epoch cursor: that epoch's partial record is replaced when the epoch completes
      history: t.history.filter((r) => !midEpoch || r.epoch < t.cursor.epoch).map((r) => ({ epoch: r.epoch, logs: { ...r.logs } })),
      epochProgress: midEpoch && t.epochProgress ? copyProgress(t.epochProgress) : emptyEpochProgress(),
    });
    if (resume.rng) (this.rng ??= new Rng(0)).setState(resume.rng);
  }

  /** The loop's events with the plugins that run on each, in order (resolves the order now). */
  describeLoop(): string {
    const callbacks = (this.opts.callbacks ?? []).filter((p): p is Callback => !isPluginClass(p));
    return describeOrder(this.plugins.length ? this.plugins : resolveOrder(callbacks));
  }

  /**
   * Position, RNG and every stateful plugin's state (weights and optimizer slots are saved by
   * the checkpoint plugin). Call during or after a run.
   */
  stateDict(): TrainerStateDict {
    if (!this.state) throw new Error("stateDict() needs a run: call it from a hook or after fit()");
    const plugins: Record<string, StateDict> = {};
    const stateful = collectStateful(this.plugins.map((p) => p.callback), (cb) => this.plugins.find((p) => p.callback === cb)!.name);
    for (const [key, cb] of stateful) {
      const dict = cb.stateDict();
      checkPluginState(key, this.plugins.find((p) => p.callback === cb)!.name, dict); // fails here, not later in a checkpoint writer
      plugins[key] = dict;
    }
    return { train: trainStateDict(this.state), rng: this.rng ? this.rng.getState() : null, plugins };
  }

  /**
   * Loads a state to resume from at the next `fit()` (plugin states are applied when the run starts).
   * The dict is checked now (a `StateError` lists every problem); weights and optimizer slots are not
   * part of it: see `loadSnapshot` / `fit({ resumeFrom })` for the whole run.
   */
  loadStateDict(state: TrainerStateDict): void {
    // a copy: the caller changing its object afterwards must not bypass the checks
    this.pending = parseTrainerStateDict(structuredClone(state));
    this.pendingSnapshot = undefined;
  }

  /**
   * The whole run as it stands: position, data cursor, epoch totals, history, RNG, every plugin's
   * state, optimizer slots and weights. After `fit()`, or from a plugin at a safe point through
   * `ctx.snapshot()` (in the middle of a run only the safe points are consistent).
   */
  async snapshot(): Promise<RunSnapshot> {
    const trainer = this.stateDict();
    const optimizer = await optimizerStateDict(this.optimizer, trainableVariables(this.model));
    return { format: SNAPSHOT_FORMAT, trainer, optimizer, weights: await captureWeights(this.model) };
  }

  /**
   * Loads a snapshot to continue from at the next `fit()` (what `fit({ resumeFrom })` does). Weights
   * and optimizer slots are checked against this model and optimizer now, so a mismatch fails before
   * anything changes; they are applied when the run starts, after plugin states and data checks.
   */
  loadSnapshot(snapshot: RunSnapshot): void {
    if (typeof snapshot !== "object" || snapshot === null || snapshot.format !== SNAPSHOT_FORMAT) {
      throw new StateError(`not a fitloop run snapshot (format "${SNAPSHOT_FORMAT}"), got ${snapshot === null ? "null" : typeof snapshot === "object" ? `format ${String((snapshot as { format?: unknown }).format)}` : typeof snapshot}`);
    }
    const trainer = parseTrainerStateDict(snapshot.trainer);
    checkWeights(this.model, snapshot.weights);
    checkOptimizerStateDict(this.optimizer, snapshot.optimizer, trainableVariables(this.model));
    this.pending = trainer;
    this.pendingSnapshot = snapshot;
  }
}

/** Runs the loop and always fires `afterFit` with the outcome; rethrows a failure after it. */
async function runFit(scope: RunScope, loop: () => Promise<void>): Promise<FitResult> {
  let failure: { error: unknown } | undefined;
  let outcome: FitOutcome;
  try {
    await scope.fire("beforeFit");
    await loop();
    outcome = scope.stopRequested ? { status: "stopped", stopRequests: [...scope.state.stopRequests], reason: scope.state.stopRequests.map((r) => `${r.by}: ${r.reason}`).join("; ") } : { status: "completed", stopRequests: [] };
  } catch (e) {
    if (e instanceof CancelFit) {
      outcome = { status: "cancelled", stopRequests: [...scope.state.stopRequests], reason: e.reason };
    } else {
      if (e instanceof Cancellation) e = misplacedCancel(e, scope.lastThrow);
      e = explainMissingKernel(e);
      failure = { error: e };
      outcome = { status: "failed", stopRequests: [...scope.state.stopRequests], reason: e instanceof Error ? e.message : String(e), error: e };
    }
  }
  scope.finish(outcome);
  // every plugin's afterFit runs (their cleanup), whatever the others do
  const errors = (await scope.fireAll("afterFit")).map(({ error, plugin }) => (error instanceof Cancellation ? misplacedCancel(error, { plugin, event: "afterFit" }) : error));
  if (failure) {
    for (const e of errors) scope.logger.error("fitloop: an afterFit hook threw while the run was failing", e);
    throw failure.error;
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} afterFit hooks failed: ${errors.map((e) => (e instanceof Error ? e.message : String(e))).join("; ")}`);
  return { outcome, state: scope.state };
}

/** One-call form: `await fit({ model, optimizer, loss, train, epochs })`. */
export async function fit(options: TrainerOptions & FitOptions): Promise<FitResult> {
  const { epochs, train, validation, initialEpoch, resumeFrom, ...trainer } = options;
  return new Trainer(trainer).fit({ epochs, train, ...(validation ? { validation } : {}), ...(initialEpoch !== undefined ? { initialEpoch } : {}), ...(resumeFrom !== undefined ? { resumeFrom } : {}) });
}
