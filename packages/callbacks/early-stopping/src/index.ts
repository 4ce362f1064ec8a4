export { EarlyStopping, type EarlyStoppingResult } from "./early-stopping.js";
export { earlyStoppingSchema, resolveEarlyStoppingOptions, type EarlyStoppingOptions, type ResolvedEarlyStoppingOptions } from "./options.js";
export { earlyStoppingStep, initialEarlyStoppingState, STOP_KINDS, type EarlyStoppingDecision, type EarlyStoppingRule, type EarlyStoppingState, type StopKind } from "./step.js";
export type { SavedWeight } from "./weights.js";
