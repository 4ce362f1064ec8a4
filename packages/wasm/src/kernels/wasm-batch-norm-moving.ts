import { util, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { asKernelFunc, disposeOnThrow, type KernelArgs, WASM, type WasmHeapBackend } from "./wasm-util.js";

/**
 * BatchNormalization's moving averages in training as one kernel: tfjs-layers updates each as
 * `moving - (moving - batch) * (1 - momentum)`, three float32 ops per average (Sub, Multiply, Sub),
 * six per layer and step, each recorded on the gradient tape (the Multiply saving both inputs). This
 * computes both averages with the same float32 roundings in one call: bit for bit the ops' result.
 * Inputs movingMean, movingVariance, mean, variance (float32, same size); attr momentum; outputs
 * [new moving mean, new moving variance]. No gradient: the averages are not on any path to a loss.
 */
export const BN_MOVING_AVERAGES = "FitloopBatchNormMovingAverages";

export function wasmBatchNormMovingAverages({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { movingMean, movingVariance, mean, variance } = inputs as Record<string, TensorInfo>;
  const momentum = (attrs as unknown as { momentum: number }).momentum;
  const n = movingMean ? util.sizeFromShape(movingMean.shape) : -1;
  for (const t of [movingMean, movingVariance, mean, variance]) {
    if (!t || t.dtype !== "float32" || util.sizeFromShape(t.shape) !== n) throw new Error(`fitloop wasm ${BN_MOVING_AVERAGES}: inputs movingMean, movingVariance, mean and variance, float32 and of one size, are required`);
  }
  if (!(momentum >= 0 && momentum <= 1)) throw new Error(`fitloop wasm ${BN_MOVING_AVERAGES}: momentum must be in [0, 1], got ${momentum}`);
  const b = backend as unknown as WasmHeapBackend;
  const outMean = b.makeOutput([...movingMean!.shape], "float32");
  const outVar = disposeOnThrow(b, [outMean], () => b.makeOutput([...movingVariance!.shape], "float32"));
  const heap = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
  const at = (t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset / 4;
  // tfjs-layers' `1 - momentum` becomes a float32 scalar tensor
  const rate = Math.fround(1 - momentum);
  const lerp = (moving: number, value: number, out: number): void => {
    for (let i = 0; i < n; i++) {
      const orig = heap[moving + i]!;
      heap[out + i] = orig - Math.fround(Math.fround(orig - heap[value + i]!) * rate);
    }
  };
  lerp(at(movingMean!), at(mean!), at(outMean));
  lerp(at(movingVariance!), at(variance!), at(outVar));
  return [outMean, outVar];
}

export const wasmBatchNormMovingAveragesConfig: KernelConfig = { kernelName: BN_MOVING_AVERAGES, backendName: WASM, kernelFunc: asKernelFunc(wasmBatchNormMovingAverages) };
