import { backend_util, Mean, Sum, util, type KernelBackend, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { elementwiseSimd, type EmscriptenWasm } from "./simd/index.js";
import { asKernelFunc, type KernelArgs, runWasm, WASM, type WasmHeapBackend } from "./wasm-util.js";

/**
 * Number of leading elements reduced when `axes` are exactly the leading axes 0..k-1 of `shape`
 * (and do not cover all axes), else 0. Such a reduction is a column sum of a [rows, cols] matrix.
 */
function leadingRows(shape: readonly number[], axes: number[]): number {
  const sorted = [...axes].sort((p, q) => p - q);
  if (sorted.length === 0 || sorted.length >= shape.length || sorted.some((ax, i) => ax !== i)) return 0;
  return util.sizeFromShape(shape.slice(0, sorted.length));
}

/**
 * Sum and Mean over leading axes (e.g. [0, 1, 2] of an NHWC tensor: bias and BatchNorm gradients)
 * as a column sum on the wasm heap, in float64. tfjs-wasm's stock kernels first transpose the whole
 * tensor so the reduced axes are innermost, then reduce; other axis sets still go there. With
 * WebAssembly SIMD the column sum runs in `simd/elementwise.wat` (float64 accumulators too).
 */
function reduceLeading(kind: "sum" | "mean", { inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x } = inputs;
  if (!x) throw new Error(`fitloop wasm ${kind}: input x is required`);
  const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
  const axes = util.parseAxisParam(axis, x.shape);
  const size = util.sizeFromShape(x.shape);
  if (x.dtype === "float32" && size >= FULL_SUM_MIN && new Set(axes).size === x.shape.length) {
    const [outShape] = backend_util.computeOutAndReduceShapes(x.shape, axes);
    return fullSum(x, size, keepDims ? backend_util.expandShapeToKeepDim(outShape, axes) : outShape, kind === "mean" ? 1 / size : 1, backend);
  }
  const rows = x.dtype === "float32" ? leadingRows(x.shape, axes) : 0;
  if (rows === 0 || size === 0) return runWasm(kind === "sum" ? Sum : Mean, backend, inputs, attrs);
  const cols = size / rows;
  const [outShape] = backend_util.computeOutAndReduceShapes(x.shape, axes);
  const shape = keepDims ? backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
  return columnSum(x, rows, cols, shape, kind === "mean" ? 1 / rows : 1, backend);
}

function columnSum(x: TensorInfo, rows: number, cols: number, shape: number[], scale: number, kb: KernelBackend): TensorInfo {
  const backend = kb as unknown as WasmHeapBackend;
  const out = backend.makeOutput(shape, "float32");
  const simd = elementwiseSimd(backend.wasm);
  if (simd) {
    // the same float64 column sum as the JS loop below, 4 channels per vector (simd/elementwise.wat)
    const acc = simd.malloc(cols * 8);
    try {
      new Float64Array(simd.memory.buffer, acc, cols).fill(0);
      const p = (t: TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
      simd.exports.colSum(p(x), acc, rows, cols);
      simd.exports.finishSum(acc, p(out), cols, scale);
    } finally {
      simd.free(acc);
    }
    return out;
  }
  const heap = backend.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
  const src = backend.dataIdMap.get(x.dataId)!.memoryOffset / 4;
  const dst = backend.dataIdMap.get(out.dataId)!.memoryOffset / 4;
  const acc = new Float64Array(cols);
  const [c1, c2, c3, c4, c5, c6, c7] = [1, 2, 3, 4, 5, 6, 7].map((k) => k * cols) as [number, number, number, number, number, number, number];
  let r = 0;
  let p = src;
  // eight rows per pass over the accumulator: ~3x fewer accumulator loads/stores (V8 does not vectorise)
  for (; r + 8 <= rows; r += 8, p += c1 * 8) {
    for (let c = 0; c < cols; c++) {
      const q = p + c;
      acc[c]! += heap[q]! + heap[q + c1]! + (heap[q + c2]! + heap[q + c3]!) + (heap[q + c4]! + heap[q + c5]! + (heap[q + c6]! + heap[q + c7]!));
    }
  }
  for (; r < rows; r++, p += cols) {
    for (let c = 0; c < cols; c++) acc[c]! += heap[p + c]!;
  }
  for (let c = 0; c < cols; c++) heap[dst + c] = acc[c]! * scale;
  return out;
}

/** Below this many elements the stock kernel's fixed cost is already small. */
const FULL_SUM_MIN = 1024;
/** Lanes of the float64 partial sums of a full reduction (a [size / LANES, LANES] column sum). */
const LANES = 64;

/**
 * Sum or mean over every axis (gradient norms, losses). tfjs-wasm's stock kernel is a scalar loop
 * (~107 us for 200k values here); this is the SIMD column sum over a [rows, 64] view in float64,
 * then the 64 partial sums and the tail in JS, also in float64.
 */
function fullSum(x: TensorInfo, size: number, shape: number[], scale: number, kb: KernelBackend): TensorInfo {
  const backend = kb as unknown as WasmHeapBackend;
  const out = backend.makeOutput(shape, "float32");
  const rows = Math.floor(size / LANES);
  const src = backend.dataIdMap.get(x.dataId)!.memoryOffset / 4;
  const dst = backend.dataIdMap.get(out.dataId)!.memoryOffset / 4;
  const simd = elementwiseSimd(backend.wasm);
  let total = 0;
  if (simd) {
    const acc = simd.malloc(LANES * 8);
    try {
      const partial = new Float64Array(simd.memory.buffer, acc, LANES);
      partial.fill(0);
      simd.exports.colSum(src * 4, acc, rows, LANES);
      for (let c = 0; c < LANES; c++) total += partial[c]!;
    } finally {
      simd.free(acc);
    }
  } else {
    const heap = backend.wasm.HEAPF32;
    const partial = new Float64Array(LANES);
    for (let r = 0, p = src; r < rows; r++, p += LANES) for (let c = 0; c < LANES; c++) partial[c]! += heap[p + c]!;
    for (let c = 0; c < LANES; c++) total += partial[c]!;
  }
  const heap = backend.wasm.HEAPF32; // after the mallocs above, which may grow the heap
  for (let i = src + rows * LANES; i < src + size; i++) total += heap[i]!;
  heap[dst] = total * scale;
  return out;
}

export const wasmSum = (args: KernelArgs): TensorInfo => reduceLeading("sum", args);
export const wasmMean = (args: KernelArgs): TensorInfo => reduceLeading("mean", args);
export const wasmSumConfig: KernelConfig = { kernelName: Sum, backendName: WASM, kernelFunc: asKernelFunc(wasmSum) };
export const wasmMeanConfig: KernelConfig = { kernelName: Mean, backendName: WASM, kernelFunc: asKernelFunc(wasmMean) };
