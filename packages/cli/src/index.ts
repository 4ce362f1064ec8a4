// The `fitloop` command's parts, for programs that run a worker or read a study themselves.
export { runWorker, trialLine, SAMPLERS, type WorkerOptions, type WorkerResult, type SamplerName } from "./worker.js";
export { showStudy, studyTable, studyJson, type ShowStudyOptions, type StudyJson, type TrialJson } from "./show.js";
export { openStorage, checkStorageSpec, type OpenStorageOptions, type OpenedStorage } from "./storage.js";
export { loadObjectiveModule, checkObjectiveModule, type ObjectiveModule } from "./objective.js";
export { studyProgress, type StudyProgress } from "./progress.js";
export { CliError, exitCodeOf, type CliErrorCode } from "./errors.js";
export { main, type CliIo } from "./cli.js";
