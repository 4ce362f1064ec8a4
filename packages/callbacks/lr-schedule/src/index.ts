export { makeSchedule, preview, type Schedule } from "./schedule.js";
export {
  constant,
  cosineAnnealingLR,
  cosineAnnealingWarmRestarts,
  stepLR,
  multiStepLR,
  exponentialLR,
  polynomialLR,
  linearLR,
  linearWarmup,
  exponentialWarmup,
  inverseSqrt,
  warmupStableDecay,
} from "./shapes.js";
export { oneCycleLR, type OneCycle, type OneCycleOptions } from "./one-cycle.js";
export { sequence, product } from "./compose.js";
export { applyPlateau, plateauUpdate, initialPlateauState, type PlateauOptions, type PlateauState, type ResolvedPlateauOptions } from "./plateau.js";
export { Scheduler, ReduceLROnPlateau, type SchedulerOptions } from "./scheduler.js";
