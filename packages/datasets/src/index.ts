/**
 * @fitloop/datasets: the data side of fitloop. Browser-safe: nothing here imports `node:`
 * modules; file readers and the embedded MNIST digits are in `@fitloop/datasets/node`.
 */
export { fromArrays, fromTensors, subset, sampleX, type ArrayDataset, type FromArraysOptions, type NumericInput } from "./dataset.js";
export { DataLoader, dataLoader, type LoaderOptions } from "./loader.js";
export { streamData, type Sample, type StreamSource, type StreamOptions } from "./stream.js";
export { prefetch } from "./prefetch.js";
export { gatherBatch, toOneHot, toTensors, applyTransforms, type HostBatch, type BatchTransform, type KernelStep, type KernelTransform, type TransformContext, type TransformInfo } from "./batch.js";
export { splitDataset, apportion, type SplitOptions, type Splits } from "./split.js";
export { Normalizer, fitNormalizer, type NormalizerOptions, type NormalizePer } from "./normalize.js";
export {
  randomCrop,
  randomShift,
  randomRotation,
  horizontalFlip,
  FLIP_WARNING,
  type RandomCropOptions,
  type RandomShiftOptions,
  type RandomRotationOptions,
  type HorizontalFlipOptions,
} from "./augment/geometric.js";
export { gaussianNoise, type GaussianNoiseOptions } from "./augment/noise.js";
export { mixUp, cutMix, type MixUpOptions, type CutMixOptions } from "./augment/mix.js";
export { labelSmoothing, type LabelSmoothingOptions } from "./augment/labels.js";
export { imageDims, type ImageDims } from "./augment/shape.js";
export { twoSpirals, gaussianBlobs, xor, noisyRegression, SYNTHETIC_MAX_VALUES } from "./synthetic.js";
export {
  parseIdx,
  parseIdxHeader,
  encodeIdx,
  IdxError,
  IDX_TYPES,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  IDX_MAX_BYTES,
  IDX_MAX_BYTES_LIMIT,
  IDX_MAX_HEADER_BYTES,
  type IdxErrorCode,
  type IdxReadOptions,
  type IdxArray,
  type IdxDtype,
  type IdxHeader,
} from "./idx.js";
export { MNIST_FILES, MNIST_CLASS_NAMES, FASHION_MNIST_CLASS_NAMES, expectedMnistFiles, idxToDataset, type MnistSplit, type MnistKind, type IdxDatasetOptions } from "./mnist.js";
export { dataReport, type DataReport, type DataReportOptions, type SplitReport, type RenderedSample } from "./report/report.js";
export { formatReport, type FormatReportOptions } from "./report/format.js";
export { renderAscii, toPgm } from "./report/render.js";
export type { ClassBalance, FeatureStats, NonFiniteCounts } from "./report/stats.js";
export type { Duplicates, DuplicateGroup, CrossSplitDuplicates } from "./report/duplicates.js";
export { fillNormal, beta, permutation } from "./random.js";
