export { globalNorm, globalNormScale, clipByGlobalNorm, clipByNorm, clipByValue, adaptiveClip, unitwiseNorm, type ClipResult, type AdaptiveClipOptions } from "./clip.js";
export { GradClip, NonFiniteGradientError, type GradClipOptions } from "./grad-clip.js";
