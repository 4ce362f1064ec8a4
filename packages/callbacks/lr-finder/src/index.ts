export { findLearningRate } from "./find.js";
export { LRRangeTest, type Curve, type RangeTestResult, type StopReason } from "./range-test.js";
export { valley, steep, minimum, slide, suggestAll, suggestionWindow, gradient, SUGGESTION_NAMES, type Suggestion, type SuggestionName, type Suggestions, type SlideOptions } from "./suggest.js";
export { confidence, noiseStd, DEFAULT_THRESHOLDS, type Confidence, type ConfidenceInput, type ConfidenceThresholds, type Verdict } from "./confidence.js";
export { sweepLr, sweepLrs, smoothLosses, SmoothedLoss, type SweepMode } from "./curve.js";
export { finderSchema, rangeTestSchema, type FindLearningRateOptions, type RangeTestOptions, type SweepOptions } from "./options.js";
