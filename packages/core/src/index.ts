// tsyringe needs the Reflect metadata API before it loads.
import "reflect-metadata";

export { Trainer, fit, type TrainerOptions, type FitOptions, type FitResult, type TrainerStateDict } from "./trainer.js";
export { EVENTS, REVERSED_EVENTS, CHECKPOINT_EVENTS, isEventName, type EventName } from "./events.js";
export { ORDER, BaseCallback, type Callback, type Batch, type HookContext, type BatchContext, type FitEndContext, type Awaitable } from "./callback.js";
export { CancelBatch, CancelStep, CancelEpoch, CancelFit, Cancellation, type CancellationClass } from "./cancel.js";
export { resolveOrder, describeOrder, pluginName, type ResolvedPlugin } from "./order.js";
export { isStateful, collectStateful, type StatefulCallback } from "./stateful.js";
export { ObserverBus, type Observer, type ObserverEvent, type ObserverError, type ObserverState } from "./bus.js";
export {
  createTrainState,
  trainStateDict,
  historySeries,
  type TrainState,
  type TrainStateDict,
  type Logs,
  type StateValue,
  type StateDict,
  type EpochRecord,
  type EpochProgress,
  type LogAggregate,
  type StopRequest,
  type StopDetails,
  type FitOutcome,
  type FitStatus,
} from "./state.js";
export {
  hyperparameters,
  getLearningRate,
  setLearningRate,
  getMomentum,
  setMomentum,
  momentumName,
  optimizerKind,
  type Hyperparameters,
} from "./hyperparams.js";
export { resolveLoss, resolveMetrics, accuracyFor, LOSS_NAMES, type LossFn, type LossName, type MetricSpec } from "./losses.js";
export { tensorData, arrayData, type DataSource, type DataCursor, type TensorDataOptions } from "./data.js";
export { Rng, seeded, withRandom, epochPermutation, permutation, mixSeed, type RngState } from "./rng.js";
export { TOKENS, createRootContainer, type PluginClass, type RootServices } from "./di.js";
export { consoleLogger, silentLogger, systemClock, type Logger, type Clock } from "./logger.js";
export { parseOptions } from "./options.js";
export {
  globalNorm,
  globalNormScale,
  sumOfSquares,
  scaleTensors,
  axpyTensors,
  lerpTensors,
  applyGradientsScaled,
  NORM_SCALE_KERNEL,
  registerScaledApply,
  SUM_OF_SQUARES_KERNEL,
  SCALE_TENSORS_KERNEL,
  AXPY_TENSORS_KERNEL,
  LERP_TENSORS_KERNEL,
  type AxpyOptions,
  type DonateOption,
  type LerpOptions,
  type ScalarOperand,
  type ScaledApply,
} from "./grads.js";
export type { LogReduce, LogOptions } from "./logs.js";
export { resolveMonitorMode, initialBest, isImprovement, monitorValue, checkMonitorPossible, MissingMonitorError, type MonitorMode, type MinDeltaMode, type ImprovementRule } from "./monitor.js";
export {
  FitloopError,
  OptionsError,
  DataError,
  ShapeMismatchError,
  PluginOrderError,
  DuplicateStateKeyError,
  BackendError,
  HyperparameterError,
  StateError,
  PluginError,
  type OptionIssue,
  type BatchLocation,
  type DataErrorDetails,
} from "./errors.js";
export { optimizerStateDict, loadOptimizerStateDict, checkOptimizerStateDict, comparableName, type OptimizerStateDict, type SavedSlot } from "./optimizer-state.js";
export { captureWeights, checkWeights, loadWeights, trainableVariables, SNAPSHOT_FORMAT, type RunSnapshot, type SavedWeight } from "./snapshot.js";
export { parseTrainerStateDict, type StateIssue } from "./state-schema.js";
export { encodeState, decodeState, type EncodedState, type StateArray, type JsonValue } from "./state-codec.js";
export { useBackend, type BackendName, type UseBackendOptions } from "./backend.js";
