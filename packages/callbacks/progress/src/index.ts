export { ProgressBar, type ProgressBarOptions, type ProgressMode } from "./progress-bar.js";
export { SafeOutput, type ProgressStream } from "./output.js";
export {
  formatNumber,
  formatDuration,
  formatStepTime,
  formatRate,
  progressText,
  endText,
  barString,
  runningLogs,
  selectLogs,
  reduceAggregate,
  isCI,
  BAR_WIDTH,
  type ProgressView,
  type EndPosition,
} from "./format.js";
