import * as tf from "@tensorflow/tfjs-core";
import { FitloopError } from "./errors.js";

/**
 * Names of the fused kernels below: fitloop's wasm kernels register them (one dispatch and one pass
 * over many tensors); on other backends the same results come from tfjs ops.
 */
export const SUM_OF_SQUARES_KERNEL = "FitloopSumOfSquares";
export const SCALE_TENSORS_KERNEL = "FitloopScaleTensors";
export const NORM_SCALE_KERNEL = "FitloopNormScale";
export const AXPY_TENSORS_KERNEL = "FitloopAxpyTensors";
export const LERP_TENSORS_KERNEL = "FitloopLerpTensors";

const fused = (kernel: string, tensors: readonly tf.Tensor[]): boolean => tensors.every((t) => t.dtype === "float32") && tf.getKernel(kernel, tf.getBackend()) !== undefined;

/** `sum over tensors of sum(t^2)` as a scalar on the device. */
export function sumOfSquares(tensors: readonly tf.Tensor[]): tf.Scalar {
  if (tensors.length === 0) return tf.scalar(0);
  if (fused(SUM_OF_SQUARES_KERNEL, tensors)) return tf.engine().runKernel(SUM_OF_SQUARES_KERNEL, [...tensors] as unknown as tf.NamedTensorMap) as tf.Scalar;
  return tf.tidy(() => tf.addN(tensors.map((t) => tf.sum(tf.square(t)))) as tf.Scalar);
}

/**
 * Every tensor times the scalar `scale` (a tensor on the device), as new tensors in the same order;
 * with `donate`, the tensors are given up and may take their results in place (see `DonateOption`).
 */
export function scaleTensors(tensors: readonly tf.Tensor[], scale: tf.Scalar, options: DonateOption = {}): tf.Tensor[] {
  if (tensors.length === 0) return [];
  const attrs = (options.donate === true ? { donate: true } : {}) as unknown as tf.NamedAttrMap;
  if (fused(SCALE_TENSORS_KERNEL, [scale, ...tensors])) return tf.engine().runKernel(SCALE_TENSORS_KERNEL, [scale, ...tensors] as unknown as tf.NamedTensorMap, attrs) as unknown as tf.Tensor[];
  return tensors.map((t) => tf.mul(t, scale));
}

/**
 * The scalar of `axpyTensors` and `lerpTensors`: a number (rounded to float32, as `tf.scalar` does;
 * a fused kernel takes it as an attribute, so no tensor is made for it: the cheap choice for a value
 * the host computes anyway, such as an EMA decay) or a scalar tensor, used on the device and never
 * read back (for a value computed there).
 */
export type ScalarOperand = number | tf.Scalar;

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** A `FitloopError` (`TENSOR_MISMATCH`, naming the first bad index) unless the lists pair up: same length, per index the same shape and dtype. */
function checkPairs(fn: string, [p, q]: readonly [string, string], ps: readonly tf.Tensor[], qs: readonly tf.Tensor[]): void {
  if (ps.length !== qs.length) throw new FitloopError("TENSOR_MISMATCH", `${fn}: ${ps.length} tensors in ${p} and ${qs.length} in ${q}; they are taken pairwise`);
  for (let i = 0; i < ps.length; i++) {
    const [a, b] = [ps[i]!, qs[i]!];
    if (a.dtype !== b.dtype || !sameShape(a.shape, b.shape)) throw new FitloopError("TENSOR_MISMATCH", `${fn}: tensor ${i} is ${a.dtype} [${a.shape.join(", ")}] in ${p} and ${b.dtype} [${b.shape.join(", ")}] in ${q}`);
  }
}

/**
 * Runs `kernel` over the pairs when the backend has it and every tensor is float32 (the scalar as an
 * attr, or as the first input when it is a tensor); `undefined` when the caller must use tfjs ops.
 */
function checkScalar(fn: string, attr: "a" | "t", s: ScalarOperand): void {
  if (typeof s !== "number" && !(s instanceof tf.Tensor && s.size === 1)) throw new FitloopError("INVALID_SCALAR", `${fn}: ${attr} must be a number or a scalar tensor, got ${s instanceof tf.Tensor ? `a tensor of shape [${s.shape.join(", ")}]` : typeof s}`);
}

function fusedPairs(kernel: string, attr: "a" | "t", ps: readonly tf.Tensor[], qs: readonly tf.Tensor[], s: ScalarOperand, extra: tf.NamedAttrMap = {}): tf.Tensor[] | undefined {
  const tensors = typeof s === "number" ? [...ps, ...qs] : [s, ...ps, ...qs];
  if (!fused(kernel, tensors)) return undefined;
  const attrs = { ...extra, ...(typeof s === "number" ? { [attr]: s, scalarInput: false } : { scalarInput: true }) };
  return tf.engine().runKernel(kernel, tensors as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
}

/**
 * Buffer donation (JAX's `donate_argnums` idea) for the foreach updates: with `donate: true` you
 * give up the first operands (`ys`, `as`): dispose them right after the call, as usual, and do not
 * read them. A backend that can tell nothing else holds one's buffer (fitloop's wasm: reference
 * count 1, not another input of the call) writes the result into it: no new buffer, and a pass over
 * cold memory skips the write-allocate of a fresh output. Elsewhere the results are new tensors. Default false.
 */
export interface DonateOption {
  readonly donate?: boolean;
}

export interface AxpyOptions extends DonateOption {
  /**
   * Multiplies each result, `(y + a * x) * scale`, in the same pass (a float32 multiply after the
   * add, as `tf.mul`): a running sum's last term and its mean at once. A number (the host knows it).
   */
  readonly scale?: number;
}

/**
 * `y_i + a * x_i` for every pair (times `options.scale` if given), as new tensors in `ys` order
 * (yours to dispose; with `donate`, possibly in the donated buffers, see `DonateOption`): a running sum of many tensors at once (gradient accumulation's
 * `sum += n * g`). On wasm with `@fitloop/wasm`, one `FitloopAxpyTensors` dispatch and one SIMD
 * pass per pair, bit for bit the tfjs ops it replaces (`tf.add(y, tf.mul(x, a))`, then `tf.mul` by
 * the scale; used elsewhere and for dtypes other than float32). `ys[i]` and `xs[i]` must have the
 * same shape and dtype (else a `FitloopError`, code `TENSOR_MISMATCH`, naming `i`).
 */
export function axpyTensors(ys: readonly tf.Tensor[], xs: readonly tf.Tensor[], a: ScalarOperand, options: AxpyOptions = {}): tf.Tensor[] {
  checkPairs("axpyTensors", ["ys", "xs"], ys, xs);
  checkScalar("axpyTensors", "a", a);
  const { scale } = options;
  if (scale !== undefined && typeof scale !== "number") throw new FitloopError("INVALID_SCALAR", `axpyTensors: options.scale must be a number, got ${typeof scale}`);
  if (ys.length === 0) return [];
  const out = fusedPairs(AXPY_TENSORS_KERNEL, "a", ys, xs, a, { ...(scale === undefined ? {} : { scale }), ...(options.donate === true ? { donate: true } : {}) });
  if (out) return out;
  return tf.tidy(() => {
    const s = typeof a === "number" ? tf.scalar(a) : a;
    const c = scale === undefined ? undefined : tf.scalar(scale);
    return ys.map((y, i) => {
      const sum = tf.add(y, tf.mul(xs[i]!, s));
      return c ? tf.mul(sum, c) : sum;
    });
  });
}

export interface LerpOptions extends DonateOption {
  /**
   * `t` divides instead of multiplying: `a + (b - a) / t`, a true float32 division (`tf.div`), so a
   * running mean `lerpTensors(means, values, n + 1, { divide: true })` is PyTorch 1.x
   * `AveragedModel`'s bit for bit, where `* (1 / (n + 1))` can differ by a rounding. Default false.
   */
  readonly divide?: boolean;
}

/**
 * `a_i + (b_i - a_i) * t` for every pair, as new tensors in `as` order (yours to dispose; `donate`
 * as for `axpyTensors`): PyTorch's
 * `torch._foreach_lerp`, in the form that gives `b` at `t = 1` only up to rounding. An EMA update is
 * `lerpTensors(averages, weights, 1 - decay)`; a running mean of n values takes one more with
 * `t = 1 / (n + 1)` (or `n + 1` and `divide`, see `LerpOptions`). On wasm with `@fitloop/wasm`, one
 * `FitloopLerpTensors` dispatch and one SIMD pass per pair, bit for bit
 * `tf.add(a, tf.mul(tf.sub(b, a), t))` (`tf.div` with `divide`: the tfjs ops used elsewhere and for
 * other dtypes). Pairs as for `axpyTensors` (`TENSOR_MISMATCH`).
 */
export function lerpTensors(as: readonly tf.Tensor[], bs: readonly tf.Tensor[], t: ScalarOperand, options: LerpOptions = {}): tf.Tensor[] {
  checkPairs("lerpTensors", ["as", "bs"], as, bs);
  checkScalar("lerpTensors", "t", t);
  if (as.length === 0) return [];
  const divide = options.divide === true;
  const out = fusedPairs(LERP_TENSORS_KERNEL, "t", as, bs, t, { ...(divide ? { divide } : {}), ...(options.donate === true ? { donate: true } : {}) });
  if (out) return out;
  return tf.tidy(() => {
    const s = typeof t === "number" ? tf.scalar(t) : t;
    return as.map((a, i) => tf.add(a, divide ? tf.div(tf.sub(bs[i]!, a), s) : tf.mul(tf.sub(bs[i]!, a), s)));
  });
}

/**
 * The global L2 norm of a set of gradients, `sqrt(sum over tensors of sum(g^2))` (PyTorch's
 * `clip_grad_norm_` norm), as a scalar on the device. Non-finite when any gradient is. For plugins
 * that clip or watch gradients: log it with `ctx.log("grad_norm", ...)` so it rides in the step's read.
 */
export function globalNorm(grads: Readonly<tf.NamedTensorMap>): tf.Scalar {
  return tf.tidy(() => tf.sqrt(sumOfSquares(Object.values(grads))) as tf.Scalar);
}

/**
 * The global norm of `grads` and the factor that clips them to `maxNorm`,
 * `maxNorm / max(norm, maxNorm)` (1 below the limit, NaN when the norm is), as scalars on the device:
 * gradient clipping's whole computation, one fused kernel where the backend has `FitloopNormScale`.
 */
export function globalNormScale(grads: Readonly<tf.NamedTensorMap>, maxNorm: number): { norm: tf.Scalar; scale: tf.Scalar } {
  const tensors = Object.values(grads);
  if (tensors.length > 0 && fused(NORM_SCALE_KERNEL, tensors)) {
    const [norm, scale] = tf.engine().runKernel(NORM_SCALE_KERNEL, tensors as unknown as tf.NamedTensorMap, { maxNorm } as unknown as tf.NamedAttrMap) as unknown as tf.Scalar[];
    return { norm: norm!, scale: scale! };
  }
  return tf.tidy(() => {
    const norm = globalNorm(grads);
    return { norm, scale: tf.div(maxNorm, tf.maximum(norm, maxNorm)) as tf.Scalar };
  });
}

/**
 * Applies `grads * scale` to the optimizer. A backend package may register a fused way (fitloop's
 * wasm Adam multiplies the scale in while it reads each gradient, so no scaled copy is made);
 * otherwise the gradients are scaled first (`scaleTensors`) and applied as usual.
 */
export type ScaledApply = (optimizer: tf.Optimizer, grads: tf.NamedTensorMap, scale: tf.Scalar) => boolean;

/**
 * Shared with backend packages without an import either way (`@fitloop/wasm` adds its fused Adam):
 * both reach the same `Set` through `Symbol.for("fitloop.scaledApply")` on `globalThis`.
 */
const SCALED_APPLY = Symbol.for("fitloop.scaledApply");
const scaledAppliers = ((globalThis as { [SCALED_APPLY]?: Set<ScaledApply> })[SCALED_APPLY] ??= new Set<ScaledApply>());

/** Registers a fused `grads * scale` update; it returns false where it does not apply. Returns the unregister function. */
export function registerScaledApply(apply: ScaledApply): () => void {
  scaledAppliers.add(apply);
  return () => scaledAppliers.delete(apply);
}

export function applyGradientsScaled(optimizer: tf.Optimizer, grads: tf.NamedTensorMap, scale: tf.Scalar): void {
  for (const apply of scaledAppliers) if (apply(optimizer, grads, scale)) return;
  const names = Object.keys(grads);
  const scaled = scaleTensors(Object.values(grads), scale);
  try {
    optimizer.applyGradients(Object.fromEntries(names.map((n, i) => [n, scaled[i]!])));
  } finally {
    tf.dispose(scaled);
  }
}
