export { emaUpdate, swaUpdate, type SavedAverageWeight } from "./average.js";
export { updateBatchNorm, batchNormLayers, type UpdateBatchNormOptions, type UpdateBatchNormResult, type BatchNormData } from "./batch-norm.js";
export { EMA, emaDecayAt, type EMAOptions, type EMADecayOptions, type EMAWarmup } from "./ema.js";
export { SWA, swaLearningRate, type SWAOptions, type SWALearningRate } from "./swa.js";
export { AveragingPlugin, type CommonOptions } from "./plugin.js";
