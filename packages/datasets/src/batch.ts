import * as tf from "@tensorflow/tfjs-core";
import { DataError, FitloopError, type Batch, type Rng } from "@fitloop/core";
import type { ArrayDataset } from "./dataset.js";
import { sizeOf } from "./validate.js";

/**
 * A batch on the host, before it becomes tensors. Transforms work here on typed arrays: cheaper
 * than tensor ops for per-sample randomness, and exactly reproducible on every backend.
 */
export interface HostBatch {
  /**
   * `size * prod(sampleShape)` features, a buffer of this batch's own that transforms may modify in
   * place (or replace). It is only valid until the batch has become tensors: on a backend that
   * copies tensor data (wasm) the loader reuses the buffer for its next batch, so a transform must
   * not keep a reference to it. `DataLoader.hostBatch()` always returns a fresh one.
   */
  x: Float32Array;
  /** Class indices (`Int32Array`), or `Float32Array` one-hot / soft labels / targets. */
  y: Int32Array | Float32Array;
  readonly size: number;
  sampleShape: readonly number[];
  /** `[]` for class indices or scalar targets, `[numClasses]` for one-hot / soft labels. */
  labelShape: readonly number[];
  /** Dataset indices of the samples, in batch order (for debugging and reports). */
  readonly indices: Int32Array;
}

/** What a transform knows besides the batch. */
export interface TransformContext {
  /** Seeded from `(seed, epoch, batchIndex)`: a resumed batch draws exactly the same numbers. */
  readonly rng: Rng;
  readonly epoch: number;
  readonly batchIndex: number;
  readonly numClasses: number | undefined;
}

/** What a transform can check once, when a loader is built (shapes, number of classes). */
export interface TransformInfo {
  readonly sampleShape: readonly number[];
  readonly numClasses: number | undefined;
}

/** A seeded batch transform (augmentation, normalisation, label smoothing, ...). */
export interface BatchTransform {
  readonly name: string;
  /** True when the transform needs one-hot labels and outputs soft labels (MixUp, CutMix, smoothing). */
  readonly softLabels?: boolean;
  /** Throws an `OptionsError` when the transform cannot work on this data. */
  check?(info: TransformInfo): void;
  apply(batch: HostBatch, ctx: TransformContext): HostBatch;
  /**
   * Optional fused form of `gatherBatch` then `apply`, used when the transform comes first: the
   * same batch, drawing from `ctx.rng` in the same order (a shift copies each image once, already
   * moved, instead of copying it and then moving it in place). `into` as for `gatherBatch`.
   */
  gatherApply?(ds: ArrayDataset, indices: Int32Array, ctx: TransformContext, into?: Float32Array): HostBatch;
  /**
   * Optional: a buffer of `length` features on which this transform runs faster (gaussian noise:
   * in its kernel's memory, no copies), or undefined. Its contents need only last until the next
   * call: the loader gathers a batch into it only where tensors copy their data, and turns the batch
   * into tensors before it asks again.
   */
  workspace?(length: number): Float32Array | undefined;
  /**
   * Optional: the transform as a step a backend kernel can run instead (see `DataLoader`: on wasm
   * with @fitloop/wasm a batch is then made in the background). `step` draws from `ctx.rng` exactly
   * what `gatherApply` / `apply` would and returns the numbers, so the kernel makes the same bits.
   */
  kernel?: KernelTransform;
}

/** A transform a backend kernel can run: `shift` gathers (first only), then `noise`, then `normalize`. */
export interface KernelTransform {
  readonly kind: "shift" | "noise" | "normalize";
  step(ctx: TransformContext, size: number, sampleShape: readonly number[]): KernelStep;
}

/** One batch's draws of a kernel transform. */
export type KernelStep =
  | {
      kind: "shift";
      /** A sample's image layout. */
      h: number;
      w: number;
      c: number;
      fill: number;
      /** (dy, dx) per sample. */
      shifts: Int32Array;
    }
  | {
      kind: "noise";
      std: number;
      /** Clip bounds (+-Infinity for none). */
      lo: number;
      hi: number;
      /** The noise kernel's generators for each chunk of 4096 features of the batch (16 words each, seeded from `ctx.rng`). */
      states: Int32Array;
    }
  | {
      kind: "normalize";
      /** Per feature: x = (x - mean) * invStd. */
      mean: Float32Array;
      invStd: Float32Array;
    };

/** Copies one sample's `f` features from `src[srcBase, srcBase + f)` into `x[dstBase, dstBase + f)`, transformed. */
export type SampleCopy = (x: Float32Array, dstBase: number, src: Float32Array, srcBase: number) => void;

/**
 * Gathers the rows `indices` of `ds` into a host batch (one `set` per sample, or `copy` of each
 * sample in batch order): into `into` when it has exactly the right length (a buffer recycled by
 * the loader), else into a fresh buffer.
 */
export function gatherBatch(ds: ArrayDataset, indices: Int32Array, into?: Float32Array, copy?: SampleCopy): HostBatch {
  const f = sizeOf(ds.sampleShape);
  const n = indices.length;
  const x = into?.length === n * f ? into : new Float32Array(n * f);
  for (let r = 0; r < n; r++) {
    const i = indices[r]!;
    if (copy) copy(x, r * f, ds.x, i * f);
    else x.set(ds.x.subarray(i * f, i * f + f), r * f);
  }
  return { x, ...gatherLabels(ds, indices), size: n, sampleShape: ds.sampleShape, indices };
}

/** The labels of rows `indices` (class indices, or label rows), and their per-sample shape. */
export function gatherLabels(ds: ArrayDataset, indices: Int32Array): { y: Int32Array | Float32Array; labelShape: readonly number[] } {
  const l = ds.numClasses === undefined ? sizeOf(ds.labelShape) : 1;
  const n = indices.length;
  const y = ds.y instanceof Int32Array ? new Int32Array(n * l) : new Float32Array(n * l);
  for (let r = 0; r < n; r++) {
    const i = indices[r]!;
    if (l === 1) y[r] = ds.y[i]!;
    else y.set(ds.y.subarray(i * l, i * l + l), r * l);
  }
  return { y, labelShape: ds.numClasses === undefined ? ds.labelShape : [] };
}

/** Class indices to one-hot rows (no-op when the labels are already vectors). */
export function toOneHot(batch: HostBatch, numClasses: number): HostBatch {
  if (!(batch.y instanceof Int32Array)) return batch;
  const y = new Float32Array(batch.size * numClasses);
  for (let r = 0; r < batch.size; r++) y[r * numClasses + batch.y[r]!] = 1;
  batch.y = y;
  batch.labelShape = [numClasses];
  return batch;
}

/**
 * One `tf.tensor` call per side. Class indices become a float32 `[n]` tensor: tfjs losses and
 * metrics (and fitloop's sparse cross-entropy, which floors them) expect float labels.
 */
export function toTensors(batch: HostBatch, flatten: boolean): Batch {
  const problem = batchProblem(batch, batch?.size);
  if (problem) throw new DataError("BAD_BATCH", `toTensors: ${problem}`);
  const xShape = flatten ? [batch.size, sizeOf(batch.sampleShape)] : [batch.size, ...batch.sampleShape];
  const xs = tf.tensor(batch.x, xShape, "float32");
  try {
    return { xs, ys: labelTensor(batch.y, batch.size, batch.labelShape) };
  } catch (e) {
    xs.dispose(); // the labels failed: nothing of this batch may outlive the throw
    throw e;
  }
}

/** The labels of `size` samples as a float32 tensor (class indices too: see `toTensors`). */
export function labelTensor(y: Int32Array | Float32Array, size: number, labelShape: readonly number[]): tf.Tensor {
  return tf.tensor(y instanceof Int32Array ? Float32Array.from(y) : y, [size, ...labelShape], "float32");
}

const copyingBackends = new WeakMap<object, boolean>();

/**
 * Whether `tf.tensor(values)` on the current backend copies `values` (wasm copies into its heap)
 * rather than keeping the array (cpu does; webgl keeps it until the upload). Probed once per
 * backend instance: a later write to the source array must not show in the tensor. Only then may
 * the loader recycle a batch's feature buffer once its tensor exists.
 */
export function tensorsCopyData(): boolean {
  const backend = tf.backend();
  let copies = copyingBackends.get(backend);
  if (copies === undefined) {
    const probe = new Float32Array([1]);
    const t = tf.tensor(probe, [1], "float32");
    probe[0] = 2;
    copies = t.dataSync()[0] === 1;
    t.dispose();
    copyingBackends.set(backend, copies);
  }
  return copies;
}

/**
 * Runs the transforms in order (option checks happen once, when a loader is built). A transform that
 * throws something other than a `FitloopError` is reported as `DataError` `TRANSFORM_FAILED` naming it,
 * the epoch and the batch (the original is the `cause`); one that returns a malformed batch is
 * `TRANSFORM_OUTPUT`. Either way no tensor exists yet: nothing leaks.
 */
export function applyTransforms(batch: HostBatch, transforms: readonly BatchTransform[], ctx: TransformContext): HostBatch {
  let b = batch;
  for (const t of transforms) b = runTransform(t.name, () => t.apply(b, ctx), b.size, ctx);
  return b;
}

/** Runs one transform step (`apply`, or a fused `gatherApply`), wrapping foreign errors and checking its output. */
export function runTransform(name: string, run: () => HostBatch, size: number, ctx: TransformContext): HostBatch {
  const out = withTransformErrors(name, run, ctx);
  const problem = batchProblem(out, size);
  if (problem) throw new DataError("TRANSFORM_OUTPUT", `transform "${name}" returned a bad batch on batch ${ctx.batchIndex} of epoch ${ctx.epoch}: ${problem}`);
  return out;
}

/** Runs one transform's code, reporting a foreign error as `DataError` `TRANSFORM_FAILED` (see `applyTransforms`). */
export function withTransformErrors<T>(name: string, run: () => T, ctx: TransformContext): T {
  try {
    return run();
  } catch (e) {
    if (e instanceof FitloopError) throw e;
    const err = new DataError("TRANSFORM_FAILED", `transform "${name}" threw on batch ${ctx.batchIndex} of epoch ${ctx.epoch}: ${(e as Error)?.message ?? String(e)}`);
    Object.defineProperty(err, "cause", { value: e, configurable: true, writable: true });
    throw err;
  }
}

/** What is wrong with a host batch of `size` samples, or undefined. */
function batchProblem(b: HostBatch, size: number): string | undefined {
  if (typeof b !== "object" || b === null) return `expected a HostBatch, got ${b === null ? "null" : typeof b}`;
  if (!Number.isSafeInteger(b.size) || b.size < 0) return `size ${String(b.size)} is not a count of samples`;
  if (b.size !== size) return `size ${String(b.size)}, expected ${size} (transforms must keep every sample)`;
  if (!(b.x instanceof Float32Array)) return "x must be a Float32Array";
  if (!(b.y instanceof Int32Array || b.y instanceof Float32Array)) return "y must be an Int32Array or a Float32Array";
  if (!Array.isArray(b.sampleShape) || !Array.isArray(b.labelShape)) return "sampleShape and labelShape must be arrays";
  if (b.x.length !== size * sizeOf(b.sampleShape)) return `x has ${b.x.length} values, ${size} samples of [${b.sampleShape.join(", ")}] need ${size * sizeOf(b.sampleShape)}`;
  if (b.y.length !== size * sizeOf(b.labelShape)) return `y has ${b.y.length} values, ${size} labels of [${b.labelShape.join(", ")}] need ${size * sizeOf(b.labelShape)}`;
  return undefined;
}
