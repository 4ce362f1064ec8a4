// Node-only parts of the tuner (file system, processes): `@fitloop/recipes/node`.
export { FileJournal, type FileJournalOptions } from "./file-journal.js";
export { localLiveness, procStat } from "./liveness.js";
export { writeStudyPlots, type WriteStudyPlotsOptions } from "./plots-node.js";
export { trialCheckpoint, trialCheckpointAt, type TrialCheckpoint } from "./trial-checkpoint.js";
