// The tuner: random search over a declared space on a study kept in Optuna's journal format.
// Browser-safe: the file journal and plot rendering are in `@fitloop/recipes/node`.
export { tune, trialSeed, checkpointDir, failDeadWorkers, workerOf, type TuneOptions, type TuneResult } from "./tune.js";
export { Trial } from "./trial.js";
export { TrialReporter, type TrialReporterOptions } from "./reporter.js";
export { Study, type OpenStudyOptions } from "./study.js";
export { logUniform, uniform, int, choice, sample, toInternal, toExternal, contains, incompatibility, distributionToJson, distributionFromJson, describeDistribution, DistributionFormatError, type Distribution as ParamDistribution, type FloatDistribution, type IntDistribution, type CategoricalDistribution, type CategoricalChoice, type SearchSpace, type Params, type ParamValue } from "./space.js";
export { medianPruner, percentilePruner, nanPercentile, type Pruner, type PrunerContext, type PruneDecision, type MedianPrunerOptions } from "./pruner.js";
export { successiveHalvingPruner, type SuccessiveHalvingPrunerOptions } from "./successive-halving.js";
export { randomSampler, type Sampler, type SamplerContext } from "./sampler.js";
export { tpeSampler, defaultGamma, hyperoptDefaultGamma, defaultWeights, type TpeSamplerOptions } from "./tpe.js";
export { MemoryJournal, OP, TRIAL_STATE, TRIAL_STATE_NAMES, isFinished, parseRecord, recordLine, type JournalStorage, type JournalWriter, type JournalRecord, type OpCode, type TrialStateName, type WorkerInfo, type WorkerLiveness, type WorkerHeartbeat } from "./journal.js";
export { JournalReplay, type TrialRecord, type StudyRecord, type StudyDirection } from "./replay.js";
export { studySummary, studyPlots, formatValue, type StudyView, type SummaryOptions, type StudyPlots, type StudyPlotOptions } from "./summary.js";
export { parsePyJson, stringifyPy, pyFloatRepr, localIsoTimestamp, parseLocalIsoTimestamp, PyJsonSyntaxError, type JsonValue, type JsonObject } from "./json.js";
export { TunerError, TrialPruned, type TunerErrorCode } from "./errors.js";
