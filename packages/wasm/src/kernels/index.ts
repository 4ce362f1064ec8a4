import { getKernel, registerKernel } from "@tensorflow/tfjs-core";
import { wasmBatchMatMulConfig } from "./wasm-batch-matmul.js";
import { wasmConv2DBackpropFilterConfig } from "./wasm-conv2d-backprop-filter.js";
import { wasmConv2DBackpropInputConfig } from "./wasm-conv2d-backprop-input.js";
import { wasmIdentityConfig } from "./wasm-identity.js";
import { wasmMaxPoolGradConfig } from "./wasm-max-pool-grad.js";
import { wasmMaxPoolConfig } from "./wasm-max-pool.js";
import { wasmAddConfig } from "./wasm-add-bias.js";
import { wasmMeanConfig, wasmSumConfig } from "./wasm-reduce.js";
import { wasmTileConfig } from "./wasm-tile.js";
import { wasmAxpyTensorsConfig, wasmLerpTensorsConfig, wasmNormScaleConfig, wasmScaleTensorsConfig, wasmSumOfSquaresConfig } from "./wasm-foreach.js";
import { wasmBatchCheckConfig } from "./wasm-batch-check.js";
import { disableFusedBatchNorm, enableFusedBatchNorm } from "./wasm-batch-norm-training.js";
import { disableReluGrad, enableReluGrad } from "./wasm-relu-grad.js";
import { disableFusedAdam, enableFusedAdam } from "./wasm-adam.js";
import { disableConvBiasRelu, enableConvBiasRelu } from "./wasm-conv-bias-relu.js";
import { disableMaxPoolMask, enableMaxPoolMask } from "./wasm-max-pool-mask.js";
import { disableSparseCrossentropy, enableSparseCrossentropy } from "./wasm-sparse-ce.js";
import { disableFusedDense, enableFusedDense } from "./wasm-dense.js";
import { replaceWasmKernel, restoreWasmKernels as restoreStockWasmKernels } from "./wasm-util.js";
import { wasmGatedKernelConfigs } from "./wasm-threaded-kernels.js";
import { setWasmThreadGate } from "./wasm-threadpool.js";
import { disableAugmentKernels, enableAugmentKernels } from "./wasm-augment.js";
import { setSimdKernelsEnabled as setSimdModulesEnabled } from "./simd/index.js";

export { DEFAULT_IM2COL_MIN_FLOPS, im2colFilterGradMinFlops, planFilterGradConv, setIm2colFilterGradMinFlops, useIm2colFilterGrad, wasmConv2DBackpropFilter, wasmConv2DBackpropFilterConfig } from "./wasm-conv2d-backprop-filter.js";
export type { FilterGradPlan, WasmConv2DBackpropFilterAttrs, WasmKernelArgs } from "./wasm-conv2d-backprop-filter.js";
export { wasmBatchMatMul, wasmBatchMatMulConfig } from "./wasm-batch-matmul.js";
export type { InputGradPath } from "./wasm-conv2d-backprop-input.js";
export { col2imInputGradEnabled, COL2IM_MAX_SCRATCH, inputGradPath, planInputGradConv, planInputGradGemm, setCol2imInputGradEnabled, wasmConv2DBackpropInput, wasmConv2DBackpropInputConfig } from "./wasm-conv2d-backprop-input.js";
export { wasmTile, wasmTileConfig } from "./wasm-tile.js";
export { AXPY_TENSORS, LERP_TENSORS, NORM_SCALE, SCALE_TENSORS, SUM_OF_SQUARES, wasmAxpyTensors, wasmAxpyTensorsConfig, wasmLerpTensors, wasmLerpTensorsConfig, wasmNormScale, wasmNormScaleConfig, wasmScaleTensors, wasmScaleTensorsConfig, wasmSumOfSquares, wasmSumOfSquaresConfig } from "./wasm-foreach.js";
export { wasmMean, wasmMeanConfig, wasmSum, wasmSumConfig } from "./wasm-reduce.js";
export { BATCH_CHECK, wasmBatchCheck, wasmBatchCheckConfig, type TargetRule } from "./wasm-batch-check.js";
export { wasmMaxPoolGrad, wasmMaxPoolGradConfig } from "./wasm-max-pool-grad.js";
export { isPool2x2, wasmMaxPool, wasmMaxPoolConfig } from "./wasm-max-pool.js";
export { planBiasAdd, wasmAdd, wasmAddConfig } from "./wasm-add-bias.js";
export type { BiasAddPlan } from "./wasm-add-bias.js";
// not registered (no faster than stock XNNPACK in a training step; round 8b): kept for a row-split (threaded) ReLU
export { wasmIdentity, wasmIdentityConfig } from "./wasm-identity.js";
export { replaceWasmKernel, stockWasmKernel } from "./wasm-util.js";
export {
  BN_TRAIN,
  BN_TRAIN_GRAD_SUMS,
  BN_TRAIN_GRAD_X,
  disableFusedBatchNorm,
  enableFusedBatchNorm,
  isFusedBatchNormEnabled,
  wasmBatchNormTrain,
  wasmBatchNormTrainGradSums,
  wasmBatchNormTrainGradX,
} from "./wasm-batch-norm-training.js";
export { disableReluGrad, enableReluGrad, isReluGradEnabled, RELU_GRAD, wasmReluGrad } from "./wasm-relu-grad.js";
export { fmaEnabled, fmaSupported, setFmaEnabled, simdKernelsEnabled, type FmaStatus } from "./simd/index.js";
export { convImagesEnabled, fmaActive, packedGemmEnabled, setConvImagesEnabled, setPackedGemmEnabled, setSplitGemmMinFlops, splitGemmMinFlops } from "./wasm-gemm-split.js";
export { setWinogradEnabled, winogradEnabled, WINOGRAD_MIN_CHANNELS } from "./wasm-conv-winograd.js";
export { AUGMENT_JOIN, AUGMENT_POST, AUGMENT_RELEASE, augmentKernelsEnabled, augmentPending, disableAugmentKernels, enableAugmentKernels, wasmAugmentJoin, wasmAugmentPost, wasmAugmentRelease } from "./wasm-augment.js";
export type { AugmentNoiseStep, AugmentNoiseTables, AugmentPostAttrs } from "./wasm-augment.js";
export { CHUNKS_PER_THREAD, DEFAULT_MIN_SPLIT_BYTES, kernelThreadPool, kernelThreadsEnabled, memoryBoundSplitEnabled, planParts, poolFor, runInBackground, setKernelThreadPool, setKernelThreadsEnabled, setMemoryBoundSplit, splitRows } from "./kernel-threads.js";
export type { BackgroundJob, BackgroundOptions, KernelCall, KernelThreadPool, SplitRowsOptions } from "./kernel-threads.js";
export { ADAM, disableFusedAdam, enableFusedAdam, isFusedAdamEnabled, wasmAdam } from "./wasm-adam.js";
export { CONV_BIAS_RELU, disableConvBiasRelu, enableConvBiasRelu, isConvBiasReluEnabled } from "./wasm-conv-bias-relu.js";
export { disableMaxPoolMask, enableMaxPoolMask, isMaxPoolMaskEnabled, MAX_POOL_MASK, MAX_POOL_MASK_GRAD } from "./wasm-max-pool-mask.js";
export {
  disableSparseCrossentropy,
  enableSparseCrossentropy,
  isSparseCrossentropyEnabled,
  SPARSE_CE,
  SPARSE_CE_GRAD,
  wasmSparseCrossentropy,
  wasmSparseCrossentropyGrad,
  type SparseCrossentropyAttrs,
} from "./wasm-sparse-ce.js";
export { DENSE, DENSE_GRAD, disableFusedDense, enableFusedDense, isFusedDenseEnabled, wasmDense, wasmDenseGrad, type DenseActivation } from "./wasm-dense.js";
export { DEFAULT_THREAD_MIN_FLOPS, kernelFlops, setWasmThreadGate, THREADPOOL_ADDRESS, wasmThreadGateEnabled, wasmThreadGateInfo, wasmThreadMinFlops, withWasmThreads } from "./wasm-threadpool.js";
export { wasmGatedKernelConfigs } from "./wasm-threaded-kernels.js";
export { setSimdMatMulEnabled, simdMatMul, simdMatMulEnabled } from "./wasm-matmul-simd.js";

/** Kernels tfjs-wasm 4.22 lacks (and fitloop's own fused ones); added when missing. */
/** Whether `registerWasmKernels` registered the batch kernels (restored by `setSimdKernelsEnabled(true)`). */
let augmentWanted = false;

/**
 * Turns fitloop's SIMD kernels off (the kernels that have JS loops run them; the others fall back to
 * tfjs's own) or back on; for benches and tests. Default on. The loader's batch kernels
 * (`FitloopAugmentPost` ...) have no JS twin here: they are unregistered while off, so
 * @fitloop/datasets makes its batches on the host.
 */
export function setSimdKernelsEnabled(on: boolean): void {
  setSimdModulesEnabled(on);
  if (!on) disableAugmentKernels();
  else if (augmentWanted) enableAugmentKernels();
}

const ADDED = [wasmConv2DBackpropFilterConfig, wasmSumOfSquaresConfig, wasmScaleTensorsConfig, wasmNormScaleConfig, wasmAxpyTensorsConfig, wasmLerpTensorsConfig, wasmBatchCheckConfig];
/** Stock tfjs-wasm kernels fitloop replaces with faster ones (each falls back to the stock kernel where it does not apply). */
const REPLACED = [
  wasmBatchMatMulConfig,
  wasmConv2DBackpropInputConfig,
  wasmTileConfig,
  wasmSumConfig,
  wasmMeanConfig,
  wasmMaxPoolGradConfig,
  wasmIdentityConfig,
  wasmAddConfig,
  wasmMaxPoolConfig,
  ...wasmGatedKernelConfigs,
];

/**
 * Registers fitloop's kernels for the wasm backend (see docs/journal.md):
 * - adds `Conv2DBackpropFilter`, which tfjs-wasm 4.22 lacks (so CNNs cannot train there otherwise), and
 *   `FitloopSumOfSquares`, `FitloopNormScale`, `FitloopScaleTensors`, `FitloopAxpyTensors` and
 *   `FitloopLerpTensors` (one dispatch over many tensors: gradient norms and clipping, accumulation,
 *   weight averaging; core's `sumOfSquares`, `globalNormScale`, `scaleTensors`, `axpyTensors` and
 *   `lerpTensors` use them, `wasm-foreach.ts`), and `FitloopBatchCheck` (the per-batch data check, `wasm-batch-check.ts`);
 * - replaces `BatchMatMul` (below the thread gate's size: fitloop's SIMD GEMM, `wasm-matmul-simd.ts`, also
 *   for `_FusedMatMul`; larger: transposed operands take XNNPACK's fast path), `Conv2DBackpropInput`
 *   (3x3 stride 1 with 16+ channels by Winograd F(2x2, 3x3), `wasm-conv-winograd.ts`, as are those
 *   convolutions' forward and filter gradient; else GEMM + a SIMD col2im gather, `simd/gemm.wat`, image by image where one image's cols fit 1 MiB; without SIMD, stride 1 as XNNPACK's forward Conv2D), `Tile` (memory copies on the wasm heap), and `Sum`
 *   and `Mean` over leading axes (a column sum instead of a full transpose), `MaxPoolGrad` (one pass
 *   over the windows) and `Identity` (shares the buffer instead of copying it), and with WebAssembly
 *   SIMD `Add` of a per-channel bias and 2x2/stride-2 `MaxPool` (`simd/elementwise.wat`, `simd/max-pool-2x2.wat`);
 * - routes tfjs-layers' BatchNormalization in training on wasm through three fused kernels
 *   (`wasm-batch-norm-training.ts`: two passes forward, two backward, instead of ~25 kernels);
 * - overrides the gradient of `Relu` on wasm with one kernel (`wasm-relu-grad.ts`) instead of three;
 * - runs `AdamOptimizer.applyGradients` on wasm as one kernel for every variable (`wasm-adam.ts`);
 * - routes tfjs-layers' Conv2D with bias and ReLU in training on wasm through one fused forward kernel (`wasm-conv-bias-relu.ts`);
 * - adds `FitloopSparseCrossentropy` and its gradient kernel: core's sparse categorical cross-entropy as one kernel forward, one backward (`wasm-sparse-ce.ts`);
 * - routes tfjs-layers' Dense (rank-2 input; linear, relu or softmax) on wasm through one forward and one backward kernel (`wasm-dense.ts`).
 * The full-size passes of BatchNorm, MaxPoolGrad and the ReLU gradient run as WebAssembly SIMD
 * (`simd/`) where available, on tfjs-wasm's own memory.
 * Forward convolutions with few taps run as im2col + fitloop's SIMD GEMM (`wasm-conv2d-im2col.ts`).
 * With tfjs-wasm's threaded build, threads per operation (`wasm-threadpool.ts`): only matmuls and
 * convolutions above a size use XNNPACK's thread pool (Conv2D, FusedConv2D, _FusedMatMul and the
 * depthwise convolutions are wrapped for this); and in Node, fitloop's own kernel threads
 * (`kernel-threads.ts`, started by `@fitloop/wasm/node`) split fitloop's GEMMs and SIMD passes.
 * Idempotent, and safe before the wasm backend is initialised (the registry is keyed by backend
 * name only; the stock kernels' setup functions are kept). An added kernel already registered under
 * the same name, ours or one a later tfjs ships, is left in place. `restoreWasmKernels()` undoes
 * the replacements; `useBackend('wasm', {wasmKernels: false})` calls it.
 */
export function registerWasmKernels(options: RegisterWasmKernelsOptions = {}): void {
  for (const config of ADDED) {
    if (!getKernel(config.kernelName, config.backendName)) registerKernel(config);
  }
  for (const config of REPLACED) replaceWasmKernel(config);
  enableFusedBatchNorm();
  enableReluGrad();
  enableFusedAdam();
  enableConvBiasRelu();
  enableMaxPoolMask();
  enableSparseCrossentropy();
  enableFusedDense();
  augmentWanted = true;
  enableAugmentKernels();
  // The gate writes at an address of one tfjs-wasm binary: only for the version it was read from.
  setWasmThreadGate(options.tfjsWasmVersion === PINNED_TFJS_WASM_GATE_VERSION);
}

/** The tfjs-wasm release whose threaded binary the thread gate's address was read from. */
export const PINNED_TFJS_WASM_GATE_VERSION = "4.22.0";

export interface RegisterWasmKernelsOptions {
  /**
   * `version_wasm` of the loaded `@tensorflow/tfjs-backend-wasm` (`useBackend` passes it). The thread
   * gate (threads only for large matmuls and convolutions) is enabled only when it is
   * `PINNED_TFJS_WASM_GATE_VERSION`; otherwise tfjs-wasm's own threading is left as it is.
   */
  tfjsWasmVersion?: string;
}

/**
 * Puts back every stock wasm kernel fitloop replaced, tfjs-layers' own BatchNormalization
 * training path, tfjs-core's gradient of `Relu` and its Adam update, core's sparse cross-entropy as tfjs ops, and tfjs-wasm's thread pool for every operation. `useBackend('wasm', {wasmKernels: false})` calls it.
 */
export function restoreWasmKernels(): void {
  restoreStockWasmKernels();
  disableFusedBatchNorm();
  disableReluGrad();
  disableFusedAdam();
  augmentWanted = false;
  disableAugmentKernels();
  disableConvBiasRelu();
  disableMaxPoolMask();
  disableSparseCrossentropy();
  disableFusedDense();
  setWasmThreadGate(false);
}

export { REPLACED as replacedWasmKernelConfigs };
