import type { RngState } from "./rng.js";

/** Metric values as plain numbers, Keras names: `loss`, `acc`, `val_loss`, `val_acc`, `lr`. */
export type Logs = Record<string, number>;

/**
 * What a plugin's `stateDict()` returns and `loadStateDict()` gets back: null, booleans, strings,
 * numbers (NaN, +-Infinity and -0 too), Float32Array, Int32Array, Uint8Array, and arrays and plain
 * objects of these (any key, `__proto__` too); `undefined` properties are left out. Anything else is
 * refused by `Trainer.stateDict()` (so at every snapshot) with a `StateError` naming the stateKey and
 * the path. Checkpoints store it with `encodeState` / `decodeState`; test yours with `roundTripState`
 * (`@fitloop/core/testing`).
 */
export type StateValue =
  | null
  | boolean
  | number
  | string
  | Float32Array
  | Int32Array
  | Uint8Array
  | readonly StateValue[]
  | { readonly [key: string]: StateValue };
export type StateDict = { readonly [key: string]: StateValue };

export interface EpochRecord {
  readonly epoch: number;
  readonly logs: Logs;
}

/** Facts a plugin attaches to a stop request (best epoch, offending value, ...). */
export type StopDetails = Readonly<Record<string, number | string | boolean>>;

/** Who asked the run to stop, and why. Requests OR together: the first one stops the run. */
export interface StopRequest {
  readonly by: string;
  readonly reason: string;
  readonly epoch: number;
  readonly step: number;
  readonly details?: StopDetails;
}

export type FitStatus = "completed" | "stopped" | "cancelled" | "failed";

export interface FitOutcome {
  readonly status: FitStatus;
  /** Every stop request, in the order made (empty unless `status` is `stopped`). */
  readonly stopRequests: readonly StopRequest[];
  /**
   * Why the run ended early: the stop requests joined as `"by: reason; ..."` (`stopped`), the
   * cancellation's reason (`cancelled`, when it gave one) or the error's message (`failed`). Not set
   * for `completed`.
   */
  readonly reason?: string;
  readonly error?: unknown;
}

/** How a per-batch plugin log is being reduced over the current epoch. */
export interface LogAggregate {
  reduce: "mean" | "sum" | "min" | "max" | "last";
  sum: number;
  count: number;
  min: number;
  max: number;
  last: number;
}

/** The current epoch's running totals, so a run resumed mid-epoch reports the same epoch means. */
export interface EpochProgress {
  /** Samples trained so far this epoch (the weights of the loss and metric means). */
  samples: number;
  /** Sample-weighted sums of the loss and metrics over those samples. */
  sums: Record<string, number>;
  /** Per-batch plugin logs reduced so far this epoch. */
  plugins: Record<string, LogAggregate>;
}

export function emptyEpochProgress(): EpochProgress {
  return { samples: 0, sums: {}, plugins: {} };
}

/** The run's position and results. Plugins read it; only core writes it. */
export interface TrainState {
  /** Current epoch, 0-based. */
  epoch: number;
  /** Total epochs of this fit call. */
  epochs: number;
  /** Optimizer steps taken in the whole run (skipped steps do not count). */
  step: number;
  /** Batches seen in the whole run. */
  globalBatch: number;
  /** Index of the current batch within its epoch (the data cursor). */
  batchIndex: number;
  /**
   * Where a resumed run starts: the next batch to train. Moves past a batch once its step is
   * done (before `afterStep`), and to `{epoch + 1, 0}` when the training phase ends.
   */
  cursor: { epoch: number; batchIndex: number };
  /** Batches per epoch, when the data source knows it. */
  batchesPerEpoch: number | undefined;
  /** This fit has validation data (so `val_*` logs will exist at the end of each epoch). */
  hasValidation: boolean;
  /**
   * This fit continues a loaded state (`fit({ resumeFrom })`, `loadSnapshot`, `loadStateDict`):
   * plugins keep the state they were given instead of starting over (as Keras' on_train_begin would).
   */
  resumed: boolean;
  /**
   * Latest logs: during a training batch, that batch's logs (empty until the step's device read,
   * which comes after `afterGradients`); epoch logs from `afterTrain` on.
   */
  logs: Logs;
  /** Logs of the last training batch whose values were read. */
  batchLogs: Logs;
  /** Logs of the current epoch so far (train means, then val_*). */
  epochLogs: Logs;
  /** One record per completed epoch. */
  history: EpochRecord[];
  /** Running totals of the current epoch (checkpointed, so a mid-epoch resume gives the same means). */
  epochProgress: EpochProgress;
  stopRequests: StopRequest[];
  outcome: FitOutcome | undefined;
}

export function createTrainState(epochs: number): TrainState {
  return {
    epoch: 0,
    epochs,
    step: 0,
    globalBatch: 0,
    batchIndex: 0,
    cursor: { epoch: 0, batchIndex: 0 },
    batchesPerEpoch: undefined,
    hasValidation: false,
    resumed: false,
    logs: {},
    batchLogs: {},
    epochLogs: {},
    history: [],
    epochProgress: emptyEpochProgress(),
    stopRequests: [],
    outcome: undefined,
  };
}

/** The serialisable part of `TrainState` that a checkpoint stores. */
export interface TrainStateDict {
  readonly epoch: number;
  readonly step: number;
  readonly globalBatch: number;
  readonly batchIndex: number;
  /** The next batch to train when resuming. */
  readonly cursor: { readonly epoch: number; readonly batchIndex: number };
  readonly history: readonly EpochRecord[];
  /** The current epoch's running totals (they matter when `cursor` is mid-epoch). */
  readonly epochProgress?: EpochProgress;
}

/** A deep copy. */
function copyProgress(p: EpochProgress): EpochProgress {
  return { samples: p.samples, sums: { ...p.sums }, plugins: Object.fromEntries(Object.entries(p.plugins).map(([k, a]) => [k, { ...a }])) };
}

export function trainStateDict(state: TrainState): TrainStateDict {
  return {
    epoch: state.epoch,
    step: state.step,
    globalBatch: state.globalBatch,
    batchIndex: state.batchIndex,
    cursor: { ...state.cursor },
    history: state.history.map((r) => ({ epoch: r.epoch, logs: { ...r.logs } })),
    epochProgress: copyProgress(state.epochProgress),
  };
}

export { copyProgress };

/** Values in one series of the history, e.g. `historySeries(state, "val_loss")`. */
export function historySeries(state: Pick<TrainState, "history">, key: string): number[] {
  return state.history.map((r) => r.logs[key] ?? Number.NaN);
}

/** Everything a checkpoint needs from the trainer besides weights and optimizer slots. */
export interface TrainerStateDict {
  readonly train: TrainStateDict;
  readonly rng: RngState | null;
  readonly plugins: Readonly<Record<string, StateDict>>;
}
