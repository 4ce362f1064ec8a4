import {
  backend_util,
  customGrad,
  engine,
  getGradient,
  getKernel,
  registerGradient,
  registerKernel,
  tidy,
  type GradConfig,
  type GradSaveFunc,
  type KernelConfig,
  type NamedAttrMap,
  type Tensor,
  type TensorInfo,
} from "@tensorflow/tfjs-core";
import { maxPool2x2Simd, type EmscriptenWasm } from "./simd/index.js";
import { splitRows } from "./kernel-threads.js";
import { isPool2x2 } from "./wasm-max-pool.js";
import { asKernelFunc, disposeOnThrow, type KernelArgs, layerPrototype, WASM, type WasmHeapBackend } from "./wasm-util.js";

/**
 * 2x2/stride-2 max pooling in training that remembers its winners. tfjs's MaxPool gradient
 * (`MaxPoolGrad`, wasm-max-pool-grad.ts) reads the pooling's input again to find each window's
 * maximum: for a small MNIST CNN's first pooling that is 5.5 MB more from memory per step, on top of
 * writing dx. `FitloopMaxPool2x2Mask` pools and writes, per output element, which of the 4 window
 * pixels won (one byte, `simd/max-pool-2x2.wat` `maxPoolMask`); its gradient
 * (`FitloopMaxPool2x2MaskGrad`) scatters dy by that mask: bit for bit MaxPoolGrad's result (the same
 * comparisons: the first maximum in window order, NaN never wins, a -0 gradient becomes +0).
 * Used through tfjs-layers' MaxPooling2D (patched by `registerWasmKernels()`) under a gradient tape on
 * wasm, for 2x2 windows with stride 2, no padding, float32 NHWC with channels a multiple of 4;
 * elsewhere tfjs-layers' own code runs.
 */
export const MAX_POOL_MASK = "FitloopMaxPool2x2Mask";
export const MAX_POOL_MASK_GRAD = "FitloopMaxPool2x2MaskGrad";

const poolInfo = (shape: readonly number[]): backend_util.Conv2DInfo =>
  backend_util.computePool2DInfo(shape as [number, number, number, number], [2, 2], [2, 2], 1, "valid");

/** Whether an input of `shape` and `dtype` takes the masked pooling on this backend. */
export function maxPoolMaskApplies(backend: object, shape: readonly number[], dtype: string): boolean {
  return dtype === "float32" && shape.length === 4 && isPool2x2(poolInfo(shape)) && "wasm" in backend && maxPool2x2Simd((backend as WasmHeapBackend).wasm) !== undefined;
}

/** Input x; outputs [y, mask] (mask: one byte per y element, as int32 words). */
export function wasmMaxPoolMask({ inputs, backend }: KernelArgs): TensorInfo[] {
  const { x } = inputs as { x: TensorInfo };
  if (!x || !maxPoolMaskApplies(backend, x.shape, x.dtype)) throw new Error(`fitloop wasm ${MAX_POOL_MASK}: needs a float32 NHWC input with channels a multiple of 4 (2x2 pooling, stride 2)`);
  const b = backend as unknown as WasmHeapBackend;
  const simd = maxPool2x2Simd(b.wasm)!;
  const info = poolInfo(x.shape);
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth } = info;
  const y = b.makeOutput([...info.outShape], "float32");
  const mask = disposeOnThrow(b, [y], () => b.makeOutput([(batchSize * outHeight * outWidth * c) / 4], "int32"));
  const p = (t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const [xImage, yImage, maskImage] = [4 * inHeight * inWidth * c, 4 * outHeight * outWidth * c, outHeight * outWidth * c];
  const [px, py, pm] = [p(x), p(y), p(mask)];
  // images split over fitloop's kernel threads (a memory-bound pass; kernel-threads.ts)
  disposeOnThrow(b, [y, mask], () =>
    splitRows(simd.memory, "max-pool-2x2", "maxPoolMask", batchSize, (start, count) => [px + start * xImage, py + start * yImage, pm + start * maskImage, count, inHeight, inWidth, c, outHeight, outWidth], () => simd.exports.maxPoolMask(px, py, pm, batchSize, inHeight, inWidth, c, outHeight, outWidth), {
      align: 1,
      bytes: batchSize * (xImage + yImage),
      memoryBound: true,
    }),
  );
  return [y, mask];
}

/** Inputs dy, mask; attr inShape (the pooling's input shape); output dx. */
export function wasmMaxPoolMaskGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, mask } = inputs as { dy: TensorInfo; mask: TensorInfo };
  const inShape = (attrs as unknown as { inShape: number[] }).inShape;
  if (!dy || !mask || !inShape || !maxPoolMaskApplies(backend, inShape, "float32")) throw new Error(`fitloop wasm ${MAX_POOL_MASK_GRAD}: needs dy, mask and the input shape of a 2x2 pooling`);
  const info = poolInfo(inShape);
  if (dy.shape.join() !== info.outShape.join() || mask.shape[0] !== dy.shape.reduce((a, n) => a * n, 1) / 4) throw new Error(`fitloop wasm ${MAX_POOL_MASK_GRAD}: dy [${dy.shape.join(",")}] or the mask does not match the pooling of [${inShape.join(",")}]`);
  const b = backend as unknown as WasmHeapBackend;
  const simd = maxPool2x2Simd(b.wasm)!;
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth } = info;
  const dx = b.makeOutput([...inShape], "float32");
  const p = (t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const [xImage, yImage, maskImage] = [4 * inHeight * inWidth * c, 4 * outHeight * outWidth * c, outHeight * outWidth * c];
  const [pm, pdy, pdx] = [p(mask), p(dy), p(dx)];
  disposeOnThrow(b, [dx], () =>
    splitRows(simd.memory, "max-pool-2x2", "maxPoolGradMask", batchSize, (start, count) => [pm + start * maskImage, pdy + start * yImage, pdx + start * xImage, count, inHeight, inWidth, c, outHeight, outWidth], () => simd.exports.maxPoolGradMask(pm, pdy, pdx, batchSize, inHeight, inWidth, c, outHeight, outWidth), {
      align: 1,
      bytes: batchSize * (xImage + yImage),
      memoryBound: true,
    }),
  );
  return dx;
}

export const wasmMaxPoolMaskConfig: KernelConfig = { kernelName: MAX_POOL_MASK, backendName: WASM, kernelFunc: asKernelFunc(wasmMaxPoolMask) };
export const wasmMaxPoolMaskGradConfig: KernelConfig = { kernelName: MAX_POOL_MASK_GRAD, backendName: WASM, kernelFunc: asKernelFunc(wasmMaxPoolMaskGrad) };

const run = (name: string, inputs: Record<string, Tensor>, attrs: NamedAttrMap): Tensor | Tensor[] => engine().runKernel(name, inputs as never, attrs) as unknown as Tensor | Tensor[];

/**
 * dx from dy and the saved mask (the mask itself gets no gradient), for `FitloopMaxPool2x2Mask` run
 * directly on a tape (`runKernel`). tfjs-layers' MaxPooling2D goes through `poolKeepingWinners`
 * below, whose custom gradient runs the same kernel.
 */
export const maxPoolMaskGradConfig: GradConfig = {
  kernelName: MAX_POOL_MASK,
  outputsToSave: [false, true],
  gradFunc: (dys: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [dy] = dys as Tensor[];
    const [mask] = saved as [Tensor];
    return { x: () => run(MAX_POOL_MASK_GRAD, { dy: dy!, mask }, { inShape: (attrs as unknown as { inShape: number[] }).inShape } as unknown as NamedAttrMap) as Tensor };
  },
};

/** tfjs-layers 4.22's MaxPooling2D.poolingFunction(inputs, poolSize, strides, padding, dataFormat). */
type PoolingFn = (this: unknown, inputs: Tensor, poolSize: [number, number], strides: [number, number], padding: string, dataFormat: string) => Tensor;

const maxPooling2dPrototype = (): { poolingFunction: PoolingFn } | undefined => layerPrototype<"poolingFunction", PoolingFn>("MaxPooling2D", "poolingFunction");

let stockPooling: PoolingFn | undefined;
function maskedPooling(this: unknown, inputs: Tensor, poolSize: [number, number], strides: [number, number], padding: string, dataFormat: string): Tensor {
  const e = engine();
  const applies =
    e.state.gradientDepth > 0 && e.backendName === WASM && getKernel(MAX_POOL_MASK, WASM) !== undefined && dataFormat === "channelsLast" &&
    poolSize[0] === 2 && poolSize[1] === 2 && strides[0] === 2 && strides[1] === 2 && maxPoolMaskApplies(e.backend, inputs.shape, inputs.dtype) &&
    (padding === "valid" || (inputs.shape[1]! % 2 === 0 && inputs.shape[2]! % 2 === 0)); // 'same' on even sizes pads nothing
  if (!applies) return stockPooling!.call(this, inputs, poolSize, strides, padding, dataFormat);
  return tidy(() => poolKeepingWinners(inputs));
}

/**
 * The pooling as one tape node whose only output is the pooled tensor, the mask saved for the
 * gradient. Taped as the two-output kernel, tfjs's backprop would give the mask a gradient of zeros
 * made on the host and copied into the heap each step (its dy is null): 346 kB for the first pooling
 * of a small MNIST CNN. `save` keeps a clone of the mask, which shares its buffer with fitloop's
 * Identity kernel (on by default; after `restoreWasmKernels()` the stock Identity copies it).
 */
const poolKeepingWinners = customGrad((...args: (Tensor | GradSaveFunc)[]) => {
  const [x, save] = args as [Tensor, GradSaveFunc];
  const inShape = x.shape;
  const [y, mask] = run(MAX_POOL_MASK, { x }, { inShape } as unknown as NamedAttrMap) as Tensor[];
  save([mask!]);
  return { value: y!, gradFunc: (dy: Tensor, saved: Tensor[]) => run(MAX_POOL_MASK_GRAD, { dy, mask: saved[0]! }, { inShape } as unknown as NamedAttrMap) as Tensor };
}) as (x: Tensor) => Tensor;

/** Registers the kernels and gradient, and routes tfjs-layers' MaxPooling2D training calls on wasm through them. Idempotent. */
export function enableMaxPoolMask(): void {
  for (const config of [wasmMaxPoolMaskConfig, wasmMaxPoolMaskGradConfig]) if (!getKernel(config.kernelName, WASM)) registerKernel(config);
  if (!getGradient(MAX_POOL_MASK)) registerGradient(maxPoolMaskGradConfig);
  const proto = maxPooling2dPrototype();
  if (!proto || proto.poolingFunction === maskedPooling) return;
  stockPooling = proto.poolingFunction;
  proto.poolingFunction = maskedPooling;
}

/** Puts back tfjs-layers' own MaxPooling2D pooling (the kernels stay registered, unused). */
export function disableMaxPoolMask(): void {
  const proto = maxPooling2dPrototype();
  if (proto && proto.poolingFunction === maskedPooling && stockPooling) proto.poolingFunction = stockPooling;
}

export const isMaxPoolMaskEnabled = (): boolean => maxPooling2dPrototype()?.poolingFunction === maskedPooling;
