import {
  engine,
  getGradient,
  getKernel,
  mul,
  registerGradient,
  registerKernel,
  tidy,
  util,
  type GradConfig,
  type KernelConfig,
  type NamedAttrMap,
  type Tensor,
  type TensorInfo,
} from "@tensorflow/tfjs-core";
import { batchNormSimd, type BatchNormSimdExports, type EmscriptenWasm, type SimdKernels } from "./simd/index.js";
import { asKernelFunc, disposeOnThrow, type KernelArgs, layerPrototype, WASM, type WasmHeapBackend } from "./wasm-util.js";
import { bnGradSums, bnGradX, bnNormalize, bnStats } from "./wasm-batch-norm-threads.js";
import { BN_MOVING_AVERAGES, wasmBatchNormMovingAveragesConfig } from "./wasm-batch-norm-moving.js";

/**
 * BatchNormalization in training as one forward and two backward kernels on the wasm heap.
 *
 * tfjs-layers' BatchNormalization trains through `moments` (Mean, Sub, Square, Mean) and
 * `batchNorm` (FusedBatchNorm), and their gradients: ~25 full-size elementwise kernels per layer
 * (Multiply, Sum, Sub, Add, RealDiv, Tile, ...), ~45 ms of a small CNN's ~140 ms step on wasm.
 * Here the forward is two passes over x (per-channel statistics in float64, then normalise) and the
 * backward two passes over (dy, x): per-channel sums, then the closed form
 *   dx = gamma*rstd*dy - gamma*rstd^2*sum(dy*xhat)/N*(x-mean) - gamma*rstd*sum(dy)/N
 *        (+ dmean/N + 2*dvar*(x-mean)/N when the mean/variance outputs get gradients)
 * with rstd = 1/sqrt(var + eps), xhat = (x-mean)*rstd, N = elements per channel.
 *
 * Used through `BatchNormalization.call` of tfjs-layers (patched by `registerWasmKernels()`): in
 * training, on the wasm backend, for float32 inputs with the channel axis last and both gamma and
 * beta; everything else runs tfjs-layers' own code. Pinned to tfjs 4.22 (layer fields, wasm heap).
 *
 * The full-size passes run as WebAssembly SIMD (`simd/batch-norm.wat`, on tfjs-wasm's own memory)
 * when the channel count is a multiple of 4 and SIMD is available; otherwise as the JS loops below.
 * Both keep the per-channel statistics in float64 and normalise as (x - mean) * scale + beta.
 */
export const BN_TRAIN = "FitloopBatchNormTrain";
export const BN_TRAIN_GRAD_SUMS = "FitloopBatchNormTrainGradSums";
export const BN_TRAIN_GRAD_X = "FitloopBatchNormTrainGradX";

const offset = (b: WasmHeapBackend, t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset / 4;
const channels = (x: TensorInfo): number => x.shape[x.shape.length - 1]!;

/** Per-channel float64 copy of a [C] float32 tensor on the heap. */
function readChannels(b: WasmHeapBackend, t: TensorInfo, c: number): Float64Array {
  const heap = b.wasm.HEAPF32;
  const o = offset(b, t);
  const out = new Float64Array(c);
  for (let i = 0; i < c; i++) out[i] = heap[o + i]!;
  return out;
}

/** The SIMD kernels for this call, or undefined (JS loops): needs C % 4 == 0. */
function simdFor(b: WasmHeapBackend, c: number): SimdKernels<BatchNormSimdExports> | undefined {
  return c % 4 === 0 ? batchNormSimd(b.wasm) : undefined;
}

/** Runs `body` with `bytes` of scratch memory on tfjs-wasm's heap (8-byte aligned), freed afterwards. */
function withScratch<T>(simd: SimdKernels<BatchNormSimdExports>, bytes: number, body: (ptr: number) => T): T {
  const ptr = simd.malloc(bytes);
  if (!ptr) throw new Error("fitloop BatchNorm: wasm malloc failed");
  try {
    return body(ptr);
  } finally {
    simd.free(ptr);
  }
}

const ptr = (b: WasmHeapBackend, t: TensorInfo): number => b.dataIdMap.get(t.dataId)!.memoryOffset;

function simdTrain(b: WasmHeapBackend, simd: SimdKernels<BatchNormSimdExports>, x: TensorInfo, gamma: TensorInfo, beta: TensorInfo, eps: number, rows: number, c: number): TensorInfo[] {
  const y = b.makeOutput([...x.shape], "float32");
  const meanOut = b.makeOutput([c], "float32");
  const varOut = b.makeOutput([c], "float32");
  disposeOnThrow(b, [y, meanOut, varOut], () => withScratch(simd, 20 * c, (sp) => {
    const qp = sp + 8 * c;
    const scp = sp + 16 * c; // f32 scale [c]
    bnStats(simd, ptr(b, x), rows, c, sp, qp);
    const buf = simd.memory.buffer; // after every malloc (the heap may have grown)
    const s = new Float64Array(buf, sp, c);
    const q = new Float64Array(buf, qp, c);
    const shift = new Float32Array(buf, ptr(b, x), c);
    const g = new Float32Array(buf, ptr(b, gamma), c);
    const mean = new Float32Array(buf, ptr(b, meanOut), c);
    const variance = new Float32Array(buf, ptr(b, varOut), c);
    const scale = new Float32Array(buf, scp, c);
    for (let k = 0; k < c; k++) {
      const m = s[k]! / rows;
      mean[k] = m + shift[k]!;
      variance[k] = Math.max(0, q[k]! / rows - m * m);
      scale[k] = g[k]! / Math.sqrt(variance[k]! + eps);
    }
    bnNormalize(simd, ptr(b, x), ptr(b, y), rows, c, ptr(b, meanOut), scp, ptr(b, beta));
  }));
  return [y, meanOut, varOut];
}

/** Forward: inputs x [..., C], gamma [C], beta [C]; attrs epsilon; outputs y (x's shape), mean [C], variance [C] (biased, as `moments`). */
export function wasmBatchNormTrain({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const eps = (attrs as { epsilon: number }).epsilon;
  const b = backend as unknown as WasmHeapBackend;
  const c = channels(x);
  const size = util.sizeFromShape(x.shape);
  const rows = size / c;
  const simd = simdFor(b, c);
  if (simd) return simdTrain(b, simd, x, gamma, beta, eps, rows, c);
  const y = b.makeOutput([...x.shape], "float32");
  const meanOut = b.makeOutput([c], "float32");
  const varOut = b.makeOutput([c], "float32");
  const heap = b.wasm.HEAPF32; // after makeOutput, whose malloc may grow the heap
  const xs = offset(b, x);
  const X = heap.subarray(xs, xs + size);
  // shifted sums (shift = first row) keep the variance accurate when |mean| >> std
  const shift = new Float64Array(c);
  for (let k = 0; k < c; k++) shift[k] = X[k]!;
  const s = new Float64Array(c);
  const q = new Float64Array(c);
  let p = 0;
  // four rows per pass over the accumulators (V8 keeps neither them nor the rows in registers)
  for (const c2 = 2 * c, c3 = 3 * c, c4 = 4 * c; p + c4 <= size; p += c4) {
    for (let k = 0; k < c; k++) {
      const i = p + k;
      const h = shift[k]!;
      const v0 = X[i]! - h;
      const v1 = X[i + c]! - h;
      const v2 = X[i + c2]! - h;
      const v3 = X[i + c3]! - h;
      s[k]! += v0 + v1 + (v2 + v3);
      q[k]! += v0 * v0 + v1 * v1 + (v2 * v2 + v3 * v3);
    }
  }
  for (; p < size; p += c) {
    for (let k = 0; k < c; k++) {
      const v = X[p + k]! - shift[k]!;
      s[k]! += v;
      q[k]! += v * v;
    }
  }
  const g = readChannels(b, gamma, c);
  const be = readChannels(b, beta, c);
  const scale = new Float64Array(c);
  const bias = new Float64Array(c);
  const mo = offset(b, meanOut);
  const vo = offset(b, varOut);
  for (let k = 0; k < c; k++) {
    const m = s[k]! / rows;
    const mean = m + shift[k]!;
    const v = Math.max(0, q[k]! / rows - m * m);
    heap[mo + k] = mean;
    heap[vo + k] = v;
    scale[k] = g[k]! / Math.sqrt(Math.fround(v) + eps);
    bias[k] = be[k]! - Math.fround(mean) * scale[k]!; // y = (x - mean) * scale + beta, in float64
  }
  const ys = offset(b, y);
  const Y = heap.subarray(ys, ys + size);
  for (let p = 0; p < size; p += c) {
    for (let k = 0; k < c; k++) Y[p + k] = X[p + k]! * scale[k]! + bias[k]!;
  }
  return [y, meanOut, varOut];
}

/**
 * Backward, pass 1: inputs dy, x, mean, variance; attrs epsilon; outputs [dbeta, dgamma], each [C]:
 * sum(dy) and sum(dy * xhat), the gradients of beta and gamma as they are (no slicing kernels after).
 */
export function wasmBatchNormTrainGradSums({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { dy, x, mean, variance } = inputs as { dy: TensorInfo; x: TensorInfo; mean: TensorInfo; variance: TensorInfo };
  const eps = (attrs as { epsilon: number }).epsilon;
  const b = backend as unknown as WasmHeapBackend;
  const c = channels(x);
  const rows = util.sizeFromShape(x.shape) / c;
  const dbetaOut = b.makeOutput([c], "float32");
  const outs = [dbetaOut, disposeOnThrow(b, [dbetaOut], () => b.makeOutput([c], "float32"))];
  const simd = simdFor(b, c);
  if (simd) {
    disposeOnThrow(b, outs, () => withScratch(simd, 16 * c, (sp) => {
      bnGradSums(simd, ptr(b, dy), ptr(b, x), rows, c, ptr(b, mean), sp, sp + 8 * c);
      const buf = simd.memory.buffer;
      const sd = new Float64Array(buf, sp, c);
      const sdx = new Float64Array(buf, sp + 8 * c, c);
      const v = new Float32Array(buf, ptr(b, variance), c);
      const [dbeta, dgamma] = outs.map((t) => new Float32Array(buf, ptr(b, t), c)) as [Float32Array, Float32Array];
      for (let k = 0; k < c; k++) {
        dbeta[k] = sd[k]!;
        dgamma[k] = sdx[k]! / Math.sqrt(v[k]! + eps);
      }
    }));
    return outs;
  }
  const heap = b.wasm.HEAPF32;
  const m = readChannels(b, mean, c);
  const v = readChannels(b, variance, c);
  const size = rows * c;
  const X = heap.subarray(offset(b, x), offset(b, x) + size);
  const D = heap.subarray(offset(b, dy), offset(b, dy) + size);
  const sd = new Float64Array(c);
  const sdx = new Float64Array(c);
  let p = 0;
  for (const c2 = 2 * c, c3 = 3 * c, c4 = 4 * c; p + c4 <= size; p += c4) {
    for (let k = 0; k < c; k++) {
      const i = p + k;
      const mk = m[k]!;
      const d0 = D[i]!;
      const d1 = D[i + c]!;
      const d2 = D[i + c2]!;
      const d3 = D[i + c3]!;
      sd[k]! += d0 + d1 + (d2 + d3);
      sdx[k]! += d0 * (X[i]! - mk) + d1 * (X[i + c]! - mk) + (d2 * (X[i + c2]! - mk) + d3 * (X[i + c3]! - mk));
    }
  }
  for (; p < size; p += c) {
    for (let k = 0; k < c; k++) {
      const d = D[p + k]!;
      sd[k]! += d;
      sdx[k]! += d * (X[p + k]! - m[k]!);
    }
  }
  const [ob, og] = outs.map((t) => offset(b, t)) as [number, number];
  for (let k = 0; k < c; k++) {
    heap[ob + k] = sd[k]!;
    heap[og + k] = sdx[k]! / Math.sqrt(v[k]! + eps);
  }
  return outs;
}

/**
 * Backward, pass 2: inputs dy, x, mean, variance, gamma, dbeta and dgamma ([C] each, from pass 1),
 * and optionally dmean, dvar ([C]); attrs epsilon; output dx.
 */
export function wasmBatchNormTrainGradX({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, x, mean, variance, gamma, dbeta, dgamma, dmean, dvar } = inputs as Record<string, TensorInfo | undefined> as {
    dy: TensorInfo;
    x: TensorInfo;
    mean: TensorInfo;
    variance: TensorInfo;
    gamma: TensorInfo;
    dbeta: TensorInfo;
    dgamma: TensorInfo;
    dmean?: TensorInfo;
    dvar?: TensorInfo;
  };
  const eps = (attrs as { epsilon: number }).epsilon;
  const b = backend as unknown as WasmHeapBackend;
  const c = channels(x);
  const rows = util.sizeFromShape(x.shape) / c;
  const dx = b.makeOutput([...x.shape], "float32");
  const simd = simdFor(b, c);
  if (simd) {
    disposeOnThrow(b, [dx], () => withScratch(simd, 12 * c, (sp) => {
      const buf = simd.memory.buffer;
      const [a, bx, k0] = [0, 1, 2].map((i) => new Float32Array(buf, sp + 4 * c * i, c)) as [Float32Array, Float32Array, Float32Array];
      const v = new Float32Array(buf, ptr(b, variance), c);
      const g = new Float32Array(buf, ptr(b, gamma), c);
      const sumDy = new Float32Array(buf, ptr(b, dbeta), c);
      const sumDyXhat = new Float32Array(buf, ptr(b, dgamma), c);
      const dm = dmean ? new Float32Array(buf, ptr(b, dmean), c) : undefined;
      const dv = dvar ? new Float32Array(buf, ptr(b, dvar), c) : undefined;
      for (let k = 0; k < c; k++) {
        const rstd = 1 / Math.sqrt(v[k]! + eps);
        a[k] = g[k]! * rstd;
        bx[k] = (-g[k]! * rstd * rstd * sumDyXhat[k]!) / rows + (dv ? (2 * dv[k]!) / rows : 0);
        k0[k] = (-g[k]! * rstd * sumDy[k]!) / rows + (dm ? dm[k]! / rows : 0);
      }
      bnGradX(simd, ptr(b, dy), ptr(b, x), ptr(b, dx), rows, c, sp, ptr(b, mean), sp + 4 * c, sp + 8 * c);
    }));
    return dx;
  }
  const heap = b.wasm.HEAPF32;
  const m = readChannels(b, mean, c);
  const v = readChannels(b, variance, c);
  const g = readChannels(b, gamma, c);
  const [sb, sg] = [offset(b, dbeta), offset(b, dgamma)];
  const dm = dmean ? readChannels(b, dmean, c) : undefined;
  const dv = dvar ? readChannels(b, dvar, c) : undefined;
  const a = new Float64Array(c); // coefficient of dy
  const bx = new Float64Array(c); // coefficient of (x - mean)
  const k0 = new Float64Array(c); // constant
  for (let k = 0; k < c; k++) {
    const rstd = 1 / Math.sqrt(v[k]! + eps);
    const sumDy = heap[sb + k]!;
    const sumDyXhat = heap[sg + k]!;
    a[k] = g[k]! * rstd;
    bx[k] = (-g[k]! * rstd * rstd * sumDyXhat) / rows + (dv ? (2 * dv[k]!) / rows : 0);
    k0[k] = (-g[k]! * rstd * sumDy) / rows + (dm ? dm[k]! / rows : 0);
  }
  const size = rows * c;
  const X = heap.subarray(offset(b, x), offset(b, x) + size);
  const D = heap.subarray(offset(b, dy), offset(b, dy) + size);
  const O = heap.subarray(offset(b, dx), offset(b, dx) + size);
  for (let k = 0; k < c; k++) k0[k] = k0[k]! - bx[k]! * m[k]!; // bx * (x - m) + k0 = bx * x + (k0 - bx * m)
  for (let p = 0; p < size; p += c) {
    for (let k = 0; k < c; k++) O[p + k] = a[k]! * D[p + k]! + bx[k]! * X[p + k]! + k0[k]!;
  }
  return dx;
}

export const wasmBatchNormTrainConfig: KernelConfig = { kernelName: BN_TRAIN, backendName: WASM, kernelFunc: asKernelFunc(wasmBatchNormTrain as unknown as (a: KernelArgs) => TensorInfo) };
export const wasmBatchNormTrainGradSumsConfig: KernelConfig = { kernelName: BN_TRAIN_GRAD_SUMS, backendName: WASM, kernelFunc: asKernelFunc(wasmBatchNormTrainGradSums) };
export const wasmBatchNormTrainGradXConfig: KernelConfig = { kernelName: BN_TRAIN_GRAD_X, backendName: WASM, kernelFunc: asKernelFunc(wasmBatchNormTrainGradX) };

const run = (name: string, inputs: Record<string, Tensor>, attrs: NamedAttrMap): Tensor | Tensor[] =>
  engine().runKernel(name, inputs as never, attrs) as unknown as Tensor | Tensor[];

export const batchNormTrainGradConfig: GradConfig = {
  kernelName: BN_TRAIN,
  inputsToSave: ["x", "gamma"],
  outputsToSave: [false, true, true],
  gradFunc: (dys: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [dy, dmean, dvar] = dys as (Tensor | null)[];
    const [x, gamma, mean, variance] = saved as [Tensor, Tensor, Tensor, Tensor];
    const epsilon = (attrs as { epsilon: number }).epsilon;
    // no gradient reached y (only mean/variance were used): dy is zero
    const dyT = dy ?? tidy(() => mul(x, 0));
    const [dbeta, dgamma] = run(BN_TRAIN_GRAD_SUMS, { dy: dyT, x, mean, variance }, { epsilon }) as [Tensor, Tensor];
    const extra: Record<string, Tensor> = {};
    if (dmean) extra["dmean"] = dmean;
    if (dvar) extra["dvar"] = dvar;
    return {
      x: () => run(BN_TRAIN_GRAD_X, { dy: dyT, x, mean, variance, gamma, dbeta, dgamma, ...extra }, { epsilon }) as Tensor,
      gamma: () => dgamma,
      beta: () => dbeta,
    };
  },
};

/** The fields of tfjs-layers 4.22's BatchNormalization used here. */
interface BatchNormLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma: { read(): Tensor } | null;
  beta: { read(): Tensor } | null;
  movingMean: { read(): Tensor; write(t: Tensor): void };
  movingVariance: { read(): Tensor; write(t: Tensor): void };
}
type CallFn = (this: BatchNormLayer, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>) => Tensor | Tensor[];

let stockCall: CallFn | undefined;

const batchNormPrototype = (): { call: CallFn } | undefined => layerPrototype<"call", CallFn>("BatchNormalization", "call");

/** Whether this call can take the fused path (else tfjs-layers' own code runs). */
function fusable(layer: BatchNormLayer, input: Tensor | undefined, training: boolean): input is Tensor {
  if (!training || !input || input.dtype !== "float32" || input.rank < 2) return false;
  const axis = layer.axis >= 0 ? layer.axis : layer.axis + input.rank;
  if (axis !== input.rank - 1 || !layer.gamma || !layer.beta || input.size === 0) return false;
  return engine().backendName === WASM && getKernel(BN_TRAIN, WASM) !== undefined && getKernel(BN_MOVING_AVERAGES, WASM) !== undefined;
}

function fusedCall(this: BatchNormLayer, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>): Tensor | Tensor[] {
  const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
  if (!fusable(this, input, kwargs?.["training"] === true)) return stockCall!.call(this, inputs, kwargs);
  return tidy(() => {
    const [y, mean, variance] = run(BN_TRAIN, { x: input, gamma: this.gamma!.read(), beta: this.beta!.read() }, { epsilon: this.epsilon }) as Tensor[];
    // the moving averages exactly as tfjs-layers updates them, in one kernel (wasm-batch-norm-moving.ts)
    const [movingMean, movingVariance] = run(BN_MOVING_AVERAGES, { movingMean: this.movingMean.read(), movingVariance: this.movingVariance.read(), mean: mean!, variance: variance! }, { momentum: this.momentum }) as Tensor[];
    this.movingMean.write(movingMean!);
    this.movingVariance.write(movingVariance!);
    return y!;
  });
}

/** Registers the kernels and gradient, and routes tfjs-layers' BatchNormalization training calls on wasm through them. Idempotent. */
export function enableFusedBatchNorm(): void {
  for (const config of [wasmBatchNormTrainConfig, wasmBatchNormTrainGradSumsConfig, wasmBatchNormTrainGradXConfig, wasmBatchNormMovingAveragesConfig]) {
    if (!getKernel(config.kernelName, WASM)) registerKernel(config);
  }
  if (!getGradient(BN_TRAIN)) registerGradient(batchNormTrainGradConfig);
  const proto = batchNormPrototype();
  if (!proto || proto.call === fusedCall) return;
  stockCall = proto.call;
  proto.call = fusedCall;
}

/** Puts back tfjs-layers' own BatchNormalization.call (the kernels stay registered, unused). */
export function disableFusedBatchNorm(): void {
  const proto = batchNormPrototype();
  if (proto && proto.call === fusedCall && stockCall) proto.call = stockCall;
}

export const isFusedBatchNormEnabled = (): boolean => batchNormPrototype()?.call === fusedCall;
