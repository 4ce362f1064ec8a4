import { util, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { elementwiseSimd, type EmscriptenWasm } from "./simd/index.js";
import { asKernelFunc, type KernelArgs, WASM, type WasmHeapBackend } from "./wasm-util.js";

/**
 * Kernels over many tensors at once (PyTorch's `_foreach_*` idea), for what plugins do to all of a
 * model's gradients every step (global norm, clipping): one dispatch and one pass per tensor instead
 * of two or three ops per tensor; and for weight updates (averaging, accumulation). The names are the
 * contract: core's `sumOfSquares`, `scaleTensors`, `axpyTensors` and `lerpTensors` use these kernels
 * when the active backend has them, and tfjs ops otherwise.
 */

/** `sum over inputs of sum(x^2)` (float32 inputs, float32 scalar out; accumulated in float64). */
export const SUM_OF_SQUARES = "FitloopSumOfSquares";
/** Inputs `[s, x1 .. xN]` (s a float32 scalar): outputs `x_i * s`, one float32 multiply per element (attr `donate` as below). */
export const SCALE_TENSORS = "FitloopScaleTensors";
/**
 * Inputs `x1 .. xN`, attr `maxNorm`: outputs `[norm, scale]` with `norm = sqrt(sum of squares)` and
 * `scale = maxNorm / max(norm, maxNorm)` (the clip-by-global-norm factor), as float32 scalars: the
 * whole computation of gradient clipping in one dispatch.
 */
export const NORM_SCALE = "FitloopNormScale";
/**
 * Inputs `[y1 .. yN, x1 .. xN]` with attrs `{ a: number, scalarInput: false }` (a rounded to
 * float32), or `[a, y1 .. yN, x1 .. xN]` with `scalarInput: true` (a float32 scalar tensor, read
 * on the wasm heap): outputs `y_i + a * x_i`, a float32 multiply then an add (tfjs's Mul then Add,
 * bit for bit). With a number attr `scale`, `(y_i + a * x_i) * scale` in the same pass (then a Mul).
 * Gradient accumulation: one pass per micro-batch, the group's mean included.
 */
export const AXPY_TENSORS = "FitloopAxpyTensors";
/**
 * Inputs `[a1 .. aN, b1 .. bN]` with attrs `{ t: number, scalarInput: false }`, or `[t, a1 .. aN,
 * b1 .. bN]` with `scalarInput: true`: outputs `a_i + (b_i - a_i) * t`, float32 Sub, Mul, Add each
 * rounded (tfjs's ops, bit for bit). With attr `divide: true`, `a_i + (b_i - a_i) / t` (a true
 * float32 Div: PyTorch 1.x AveragedModel's running mean). EMA and running means: one pass per update.
 */
export const LERP_TENSORS = "FitloopLerpTensors";
/*
 * Both (and SCALE_TENSORS) take attr `donate: true`: the caller gives up the first operands
 * (disposes them right after, reads them no more), so a first operand whose buffer nothing else
 * holds (reference count 1, and no other input of the call) takes its own result in place: no new
 * buffer, and a pass over cold memory skips the write-allocate of a fresh output (all 6 MLP tensors,
 * cold: 45 -> 30 us). The output then shares that buffer.
 */

function float32Inputs(name: string, inputs: KernelArgs["inputs"]): TensorInfo[] {
  const xs = Object.values(inputs) as TensorInfo[];
  for (const x of xs) if (x.dtype !== "float32") throw new Error(`${name}: inputs must be float32, got ${x.dtype}`);
  return xs;
}

/** The sum of squares of every input, in float64: SIMD with one pass per tensor where available, else a JS loop. */
function sumSquaresOf(b: WasmHeapBackend, xs: readonly TensorInfo[]): number {
  const simd = elementwiseSimd(b.wasm);
  let total = 0;
  for (const x of xs) {
    const n = util.sizeFromShape(x.shape);
    const start = b.dataIdMap.get(x.dataId)!.memoryOffset;
    if (simd) {
      total += simd.exports.sumSquares(start, n);
      continue;
    }
    const heap = b.wasm.HEAPF32;
    for (let i = start / 4; i < start / 4 + n; i++) total += heap[i]! * heap[i]!;
  }
  return total;
}

/** With WebAssembly SIMD one pass per tensor (`simd/elementwise.wat` `sumSquares`); otherwise a float64 JS loop. */
export function wasmSumOfSquares({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as unknown as WasmHeapBackend;
  const total = sumSquaresOf(b, float32Inputs(SUM_OF_SQUARES, inputs));
  const out = b.makeOutput([], "float32");
  b.wasm.HEAPF32[b.dataIdMap.get(out.dataId)!.memoryOffset / 4] = total;
  return out;
}

/**
 * `[norm, scale]` as float32, computed as tfjs's Sqrt, Maximum and Div would on the float32 sum
 * (each a correctly rounded float32 operation, so the same bits as those ops on the cpu backend).
 */
export function wasmNormScale({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WasmHeapBackend;
  const f = Math.fround;
  const maxNorm = f((attrs as { maxNorm: number }).maxNorm);
  const norm = f(Math.sqrt(f(sumSquaresOf(b, float32Inputs(NORM_SCALE, inputs)))));
  // Math.max(NaN, m) is NaN, as tfjs's Maximum propagates NaN
  const scale = f(maxNorm / (Number.isNaN(norm) ? Number.NaN : Math.max(norm, maxNorm)));
  const outs = [b.makeOutput([], "float32"), b.makeOutput([], "float32")];
  const heap = b.wasm.HEAPF32;
  heap[b.dataIdMap.get(outs[0]!.dataId)!.memoryOffset / 4] = norm;
  heap[b.dataIdMap.get(outs[1]!.dataId)!.memoryOffset / 4] = scale;
  return outs;
}

/**
 * The scale is read from the wasm heap (the backend's own memory, not a device read), then one SIMD
 * pass per tensor; attr `donate: true` as for the pairwise kernels (in place where nothing else holds x).
 */
export function wasmScaleTensors({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WasmHeapBackend;
  const [s, ...xs] = float32Inputs(SCALE_TENSORS, inputs);
  if (!s || util.sizeFromShape(s.shape) !== 1) throw new Error(`${SCALE_TENSORS}: the first input must be a scalar`);
  const at = (t: TensorInfo) => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const outs = outputsFor(b, xs, [s, ...xs], (attrs as { donate?: unknown } | undefined)?.donate === true);
  const simd = elementwiseSimd(b.wasm);
  const heap = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
  const scale = heap[at(s) / 4]!;
  xs.forEach((x, i) => {
    const n = util.sizeFromShape(x.shape);
    if (simd) return simd.exports.scale(at(x), at(outs[i]!), n, scale);
    const src = at(x) / 4;
    const dst = at(outs[i]!) / 4;
    for (let k = 0; k < n; k++) heap[dst + k] = heap[src + k]! * scale;
  });
  return outs;
}

type PairOp = "axpy" | "axpyScale" | "lerp" | "lerpDiv";

/** The JS loops where SIMD is off, with the same float32 roundings (the store rounds the last operation). */
const PAIR_JS: Record<PairOp, (p: number, q: number, s: number, s2: number) => number> = {
  axpy: (y, x, a) => y + Math.fround(x * a),
  axpyScale: (y, x, a, s) => Math.fround(y + Math.fround(x * a)) * s,
  lerp: (a, b, t) => a + Math.fround(Math.fround(b - a) * t),
  lerpDiv: (a, b, d) => a + Math.fround(Math.fround(b - a) / d),
};

/**
 * The outputs for `firsts` (one each, float32, same shape): with `donate`, a first operand whose
 * buffer nothing else holds (reference count 1, no other input of the call) is its own output,
 * written in place (each element is read before it is written); otherwise a new buffer.
 */
function outputsFor(b: WasmHeapBackend, firsts: readonly TensorInfo[], all: readonly TensorInfo[], donate: boolean): TensorInfo[] {
  let uses: Map<object, number> | undefined;
  if (donate && typeof b.incRef === "function") {
    uses = new Map();
    for (const t of all) uses.set(t.dataId, (uses.get(t.dataId) ?? 0) + 1);
  }
  return firsts.map((p): TensorInfo => {
    if (uses && uses.get(p.dataId) === 1 && b.dataIdMap.get(p.dataId)!.refCount === 1) {
      b.incRef!(p.dataId);
      return { dataId: p.dataId, shape: [...p.shape], dtype: "float32" };
    }
    return b.makeOutput([...p.shape], "float32");
  });
}

/**
 * One output per pair `(p_i, q_i)`, `op(p_i, q_i, s)`, in one dispatch: one SIMD pass per pair
 * (reads both, writes the output once). The scalar is an attr (no tensor to make for a number) or
 * the first input (a tensor on the device, read on the heap: no device read).
 */
function pairwise(name: string, op: PairOp, attr: "a" | "t", { inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WasmHeapBackend;
  const xs = float32Inputs(name, inputs);
  const a = (attrs ?? {}) as Record<string, unknown>;
  const s = a["scalarInput"] === true ? xs.shift() : undefined;
  if (a["scalarInput"] === true && (!s || util.sizeFromShape(s.shape) !== 1)) throw new Error(`${name}: with scalarInput, the first input must be a scalar`);
  if (!s && typeof a[attr] !== "number") throw new Error(`${name}: attr ${attr} must be a number (or pass it as the first input with scalarInput: true)`);
  if (xs.length % 2 !== 0) throw new Error(`${name}: takes pairs of tensors (N firsts, then N seconds), got ${xs.length}`);
  const k = xs.length / 2;
  const sizes = xs.slice(0, k).map((p, i) => {
    const n = util.sizeFromShape(p.shape);
    if (n !== util.sizeFromShape(xs[k + i]!.shape)) throw new Error(`${name}: pair ${i} has [${p.shape.join(", ")}] and [${xs[k + i]!.shape.join(", ")}]`);
    return n;
  });
  const at = (t: TensorInfo) => b.dataIdMap.get(t.dataId)!.memoryOffset;
  const outs = outputsFor(b, xs.slice(0, k), s ? [s, ...xs] : xs, a["donate"] === true);
  const simd = elementwiseSimd(b.wasm);
  const heap = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
  const value = s ? heap[at(s) / 4]! : Math.fround(a[attr] as number);
  const value2 = op === "axpyScale" ? Math.fround(a["scale"] as number) : 0;
  const js = PAIR_JS[op];
  for (let i = 0; i < k; i++) {
    const [p, q, o, n] = [at(xs[i]!), at(xs[k + i]!), at(outs[i]!), sizes[i]!];
    if (simd) {
      // one thread: split over the kernel threads these short passes (30-60 us) ran ~1.7x slower
      // in bench/update-plugins with the second core busy (not measured on a quiet machine)
      if (op === "axpyScale") simd.exports.axpyScale(p, q, o, n, value, value2);
      else simd.exports[op](p, q, o, n, value);
      continue;
    }
    for (let j = 0; j < n; j++) heap[o / 4 + j] = js(heap[p / 4 + j]!, heap[q / 4 + j]!, value, value2);
  }
  return outs;
}

/** `y_i + a * x_i` for every pair, times attr `scale` when it is a number (`AXPY_TENSORS`). */
export const wasmAxpyTensors = (args: KernelArgs): TensorInfo[] => pairwise(AXPY_TENSORS, typeof (args.attrs as { scale?: unknown } | undefined)?.scale === "number" ? "axpyScale" : "axpy", "a", args);
/** `a_i + (b_i - a_i) * t` for every pair, or `/ t` with attr `divide` (`LERP_TENSORS`). */
export const wasmLerpTensors = (args: KernelArgs): TensorInfo[] => pairwise(LERP_TENSORS, (args.attrs as { divide?: unknown } | undefined)?.divide === true ? "lerpDiv" : "lerp", "t", args);

export const wasmSumOfSquaresConfig: KernelConfig = { kernelName: SUM_OF_SQUARES, backendName: WASM, kernelFunc: asKernelFunc(wasmSumOfSquares) };
export const wasmNormScaleConfig: KernelConfig = { kernelName: NORM_SCALE, backendName: WASM, kernelFunc: asKernelFunc(wasmNormScale as never) };
export const wasmScaleTensorsConfig: KernelConfig = { kernelName: SCALE_TENSORS, backendName: WASM, kernelFunc: asKernelFunc(wasmScaleTensors as never) };
export const wasmAxpyTensorsConfig: KernelConfig = { kernelName: AXPY_TENSORS, backendName: WASM, kernelFunc: asKernelFunc(wasmAxpyTensors as never) };
export const wasmLerpTensorsConfig: KernelConfig = { kernelName: LERP_TENSORS, backendName: WASM, kernelFunc: asKernelFunc(wasmLerpTensors as never) };
