import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, Rng, mixSeed } from "@fitloop/core";

/**
 * The initialisation schemes as pure functions of (shape, fans, seed): each returns a new float32
 * tensor (the caller's to dispose) drawn from core's seeded generator on the host, so the same
 * arguments give the same values on every backend and machine.
 */

export type Distribution = "normal" | "uniform";
export type SchemeName = "he" | "glorot" | "lecun" | "orthogonal";

export interface Fans {
  readonly fanIn: number;
  readonly fanOut: number;
}

/**
 * Fan-in and fan-out of a weight of `shape` as Keras' `_compute_fans` and PyTorch's
 * `_calculate_fan_in_and_fan_out` compute them (tfjs kernels are channels-last): rank 2 `[in, out]`;
 * rank >= 3 (conv kernels `[...kernel, in, out]`) the receptive field times the channels. With
 * `depthwise` (`[...kernel, channels, multiplier]`) each output sees one channel's receptive field:
 * fan-in is the receptive field (PyTorch's, whose depthwise weight is `[C*m, 1, k, k]`; Keras counts
 * the channels too, which makes He too small by sqrt(C)) and fan-out the receptive field times the
 * multiplier.
 */
export function computeFans(shape: readonly number[], depthwise = false): Fans {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0]!, fanOut: shape[0]! };
  if (shape.length === 2) return { fanIn: shape[0]!, fanOut: shape[1]! };
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  if (depthwise) return { fanIn: receptive, fanOut: receptive * shape[shape.length - 1]! };
  return { fanIn: receptive * shape[shape.length - 2]!, fanOut: receptive * shape[shape.length - 1]! };
}

/** PyTorch's `calculate_gain`: He's sqrt(2 / (1 + a^2)) for (leaky) ReLU with negative slope `a`. */
export function reluGain(negativeSlope = 0): number {
  return Math.sqrt(2 / (1 + negativeSlope * negativeSlope));
}

/** The standard deviation a scheme gives (orthogonal: its gain over sqrt(fan-in), the per-entry scale). */
export function schemeStd(scheme: SchemeName, fans: Fans, gain?: number): number {
  switch (scheme) {
    case "he":
      return (gain ?? Math.SQRT2) / Math.sqrt(fans.fanIn);
    case "glorot":
      return (gain ?? 1) * Math.sqrt(2 / (fans.fanIn + fans.fanOut));
    case "lecun":
      return (gain ?? 1) / Math.sqrt(fans.fanIn);
    case "orthogonal":
      return (gain ?? 1) / Math.sqrt(Math.max(fans.fanIn, fans.fanOut));
  }
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function checkShape(owner: string, shape: readonly number[]): void {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new OptionsError(owner, [{ path: "shape", message: `must be an array of integers >= 1, got ${JSON.stringify(shape)}` }]);
  }
}

function checkPositive(owner: string, path: string, v: number): void {
  if (!(Number.isFinite(v) && v > 0)) throw new OptionsError(owner, [{ path, message: `must be a finite number > 0, got ${String(v)}` }]);
}

function checkSeed(owner: string, seed: number): void {
  if (!Number.isSafeInteger(seed)) throw new OptionsError(owner, [{ path: "seed", message: `must be an integer, got ${String(seed)}` }]);
}

/** A standard normal draw (Box-Muller; `1 - u` keeps the log finite). */
function gaussian(rng: Rng): number {
  const u = 1 - rng.next();
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** `n` values with mean 0 and standard deviation `std`: gaussian, or uniform on `[-sqrt(3) std, sqrt(3) std]`. */
export function sampleValues(n: number, std: number, distribution: Distribution, seed: number): Float32Array {
  const rng = new Rng(mixSeed(seed, 0x1417));
  const out = new Float32Array(n);
  if (distribution === "normal") for (let i = 0; i < n; i++) out[i] = std * gaussian(rng);
  else {
    const limit = Math.sqrt(3) * std;
    for (let i = 0; i < n; i++) out[i] = (2 * rng.next() - 1) * limit;
  }
  return out;
}

function draw(owner: string, shape: readonly number[], std: number, distribution: Distribution, seed: number): tf.Tensor {
  checkShape(owner, shape);
  checkSeed(owner, seed);
  return tf.tensor(sampleValues(size(shape), std, distribution, seed), [...shape], "float32");
}

/** He/Kaiming normal: std `gain / sqrt(fanIn)`, gain sqrt(2 / (1 + a^2)) for a (leaky) ReLU of negative slope `a` (He et al. 2015). */
export function heNormal(shape: readonly number[], fanIn: number, seed: number, negativeSlope = 0): tf.Tensor {
  checkPositive("heNormal", "fanIn", fanIn);
  return draw("heNormal", shape, reluGain(negativeSlope) / Math.sqrt(fanIn), "normal", seed);
}

/** He/Kaiming uniform: `U(-limit, limit)`, limit `gain * sqrt(3 / fanIn)` (the same variance as `heNormal`). */
export function heUniform(shape: readonly number[], fanIn: number, seed: number, negativeSlope = 0): tf.Tensor {
  checkPositive("heUniform", "fanIn", fanIn);
  return draw("heUniform", shape, reluGain(negativeSlope) / Math.sqrt(fanIn), "uniform", seed);
}

/** Glorot/Xavier normal: std `sqrt(2 / (fanIn + fanOut))` (Glorot & Bengio 2010). */
export function glorotNormal(shape: readonly number[], fanIn: number, fanOut: number, seed: number): tf.Tensor {
  checkPositive("glorotNormal", "fanIn", fanIn);
  checkPositive("glorotNormal", "fanOut", fanOut);
  return draw("glorotNormal", shape, Math.sqrt(2 / (fanIn + fanOut)), "normal", seed);
}

/** Glorot/Xavier uniform: limit `sqrt(6 / (fanIn + fanOut))`. */
export function glorotUniform(shape: readonly number[], fanIn: number, fanOut: number, seed: number): tf.Tensor {
  checkPositive("glorotUniform", "fanIn", fanIn);
  checkPositive("glorotUniform", "fanOut", fanOut);
  return draw("glorotUniform", shape, Math.sqrt(2 / (fanIn + fanOut)), "uniform", seed);
}

/** LeCun normal: std `1 / sqrt(fanIn)` (LeCun et al. 1998; what SELU's self-normalisation assumes). */
export function lecunNormal(shape: readonly number[], fanIn: number, seed: number): tf.Tensor {
  checkPositive("lecunNormal", "fanIn", fanIn);
  return draw("lecunNormal", shape, 1 / Math.sqrt(fanIn), "normal", seed);
}

/** LeCun uniform: limit `sqrt(3 / fanIn)`. */
export function lecunUniform(shape: readonly number[], fanIn: number, seed: number): tf.Tensor {
  checkPositive("lecunUniform", "fanIn", fanIn);
  return draw("lecunUniform", shape, 1 / Math.sqrt(fanIn), "uniform", seed);
}

/**
 * `n x k` (n >= k, column-major) with orthonormal columns: the Q of a Householder QR of a gaussian
 * matrix, each column times the sign of R's diagonal so the result is uniform over such matrices
 * (Mezzadri 2007; what Keras and PyTorch do).
 */
function orthonormalColumns(n: number, k: number, rng: Rng): Float64Array {
  const a = new Float64Array(n * k);
  for (let i = 0; i < a.length; i++) a[i] = gaussian(rng);
  const vs: Float64Array[] = [];
  const signs = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const v = new Float64Array(n - j);
    let norm = 0;
    for (let i = j; i < n; i++) norm += a[j * n + i]! ** 2;
    norm = Math.sqrt(norm);
    const x0 = a[j * n + j]!;
    const alpha = x0 >= 0 ? -norm : norm; // R_jj; the sign that avoids cancellation
    signs[j] = Math.sign(alpha) || 1;
    for (let i = j; i < n; i++) v[i - j] = a[j * n + i]!;
    v[0] = x0 - alpha;
    const vnorm = Math.sqrt(v.reduce((s, t) => s + t * t, 0));
    if (vnorm > 0) for (let i = 0; i < v.length; i++) v[i] = v[i]! / vnorm;
    vs.push(v);
    // apply H = I - 2 v v^T to the remaining columns
    for (let c = j; c < k; c++) {
      let dot = 0;
      for (let i = j; i < n; i++) dot += v[i - j]! * a[c * n + i]!;
      for (let i = j; i < n; i++) a[c * n + i] = a[c * n + i]! - 2 * dot * v[i - j]!;
    }
  }
  // Q's first k columns: H_0 H_1 ... H_{k-1} applied to the first k columns of the identity
  const q = new Float64Array(n * k);
  for (let c = 0; c < k; c++) q[c * n + c] = 1;
  for (let j = k - 1; j >= 0; j--) {
    const v = vs[j]!;
    for (let c = 0; c < k; c++) {
      let dot = 0;
      for (let i = j; i < n; i++) dot += v[i - j]! * q[c * n + i]!;
      for (let i = j; i < n; i++) q[c * n + i] = q[c * n + i]! - 2 * dot * v[i - j]!;
    }
  }
  for (let c = 0; c < k; c++) for (let i = 0; i < n; i++) q[c * n + i] = q[c * n + i]! * signs[c]!;
  return q;
}

/**
 * The values of a random orthogonal `rows x cols` matrix times `gain`, row-major: orthonormal
 * columns when rows >= cols (W^T W = gain^2 I), orthonormal rows otherwise (Saxe et al. 2014).
 */
export function orthogonalValues(rows: number, cols: number, seed: number, gain = 1): Float32Array {
  const rng = new Rng(mixSeed(seed, 0x0e7));
  const tall = rows >= cols;
  const n = tall ? rows : cols;
  const k = tall ? cols : rows;
  const q = orthonormalColumns(n, k, rng); // column-major n x k
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * cols + c] = gain * (tall ? q[c * n + r]! : q[r * n + c]!);
  }
  return out;
}

/**
 * Orthogonal: the weight flattened to `[prod(shape[:-1]), shape[-1]]` (Keras' flattening: for a conv
 * kernel, rows are the receptive field times the input channels) is a random orthogonal matrix times
 * `gain` (PyTorch's `calculate_gain`: 1 for linear and recurrent weights, sqrt(2) for ReLU, 5/3 for tanh).
 */
export function orthogonal(shape: readonly number[], seed: number, gain = 1): tf.Tensor {
  checkShape("orthogonal", shape);
  checkSeed("orthogonal", seed);
  checkPositive("orthogonal", "gain", gain);
  if (shape.length < 2) throw new OptionsError("orthogonal", [{ path: "shape", message: `needs rank >= 2, got ${JSON.stringify(shape)}` }]);
  const cols = shape[shape.length - 1]!;
  return tf.tensor(orthogonalValues(size(shape) / cols, cols, seed, gain), [...shape], "float32");
}
