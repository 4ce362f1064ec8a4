export { GradAccumulation, type GradAccumulationOptions } from "./grad-accumulation.js";
export { optimizerSteps, type OptimizerStepsOptions } from "./steps.js";
export type { SavedGroup, SavedSum } from "./state.js";
