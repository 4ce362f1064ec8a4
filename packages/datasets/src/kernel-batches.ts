import * as tf from "@tensorflow/tfjs-core";
import type { Batch } from "@fitloop/core";
import { gatherLabels, labelTensor, toOneHot, withTransformErrors, type BatchTransform, type KernelStep, type TransformContext } from "./batch.js";
import type { ArrayDataset } from "./dataset.js";
import { regionTables } from "./simd/normal.js";
import { sizeOf } from "./validate.js";

/**
 * Batches made by a backend kernel in the background: @fitloop/wasm's `FitloopAugmentPost` /
 * `FitloopAugmentJoin` (asked for by name, as @fitloop/core asks for its fused kernels). Posting a
 * batch returns at once; a kernel thread gathers the rows, shifts the images and adds the noise in
 * the backend's memory while the training step runs, and the join (before the batch is handed out)
 * finds it made. The transforms (a shift, gaussian noise, a normaliser) draw the same numbers as on
 * the host (`BatchTransform.kernel`) and the noise is this package's own kernel, built into
 * @fitloop/wasm: the same bits either way.
 *
 * The kernel copies the data set into the backend's memory at the first batch (no tensor: the
 * engine's tensor count does not change) and keeps the copy until `dispose()` or until this object
 * is garbage-collected; the batches read the data set as it was then. Used for transforms that are
 * all kernel steps, in the order shift, noise (at least one of them), and data sets up to
 * `MAX_KERNEL_DATA_BYTES`. A posted batch's tensor is kept (`tf.keep`) until the join, so a `tf.tidy`
 * around the consumer's `next()` cannot free a batch that is still being made.
 */
export const AUGMENT_POST = "FitloopAugmentPost";
export const AUGMENT_JOIN = "FitloopAugmentJoin";
export const AUGMENT_RELEASE = "FitloopAugmentRelease";

/** Data sets larger than this are batched on the host (a second copy in the backend's memory would cost too much). */
export const MAX_KERNEL_DATA_BYTES = 512 * 1024 * 1024;

/**
 * Whether `transforms` can be made by the kernels: kernel steps only, in the order shift (it
 * gathers), noise, normalize, each at most once, at least one. Without transforms the host's
 * gather is as cheap, and needs no copy of the data set.
 */
export function kernelPlan(transforms: readonly BatchTransform[]): boolean {
  const kinds = transforms.map((t) => t.kernel?.kind ?? "host").join(",");
  return kinds !== "" && /^(shift)?(,?noise)?(,?normalize)?$/.test(kinds) && !kinds.startsWith(",");
}

/** A batch posted to the kernel: its features are being made until `join`; its labels become a tensor then. */
export interface PostedBatch {
  readonly xs: tf.Tensor;
  readonly labels: { y: Int32Array | Float32Array; labelShape: readonly number[] };
}

export class KernelBatches {
  constructor(
    private readonly dataset: ArrayDataset,
    private readonly transforms: readonly BatchTransform[],
    private readonly flatten: boolean,
    private readonly oneHot: boolean,
  ) {}

  /** Whether the current backend has the kernels (and the data set is small enough for them). */
  available(): boolean {
    const backend = tf.getBackend();
    return this.dataset.x.byteLength <= MAX_KERNEL_DATA_BYTES && tf.getKernel(AUGMENT_POST, backend) !== undefined && tf.getKernel(AUGMENT_JOIN, backend) !== undefined;
  }

  /** Posts the batch of rows `indices`, drawing its transforms from `ctx`; the caller joins or discards it. */
  post(indices: Int32Array, ctx: TransformContext): PostedBatch {
    const ds = this.dataset;
    const n = indices.length;
    const steps = this.transforms.map((t) => withTransformErrors(t.name, () => t.kernel!.step(ctx, n, ds.sampleShape), ctx));
    const shift = steps.find((s): s is Extract<KernelStep, { kind: "shift" }> => s.kind === "shift");
    const noise = steps.find((s): s is Extract<KernelStep, { kind: "noise" }> => s.kind === "noise");
    const norm = steps.find((s): s is Extract<KernelStep, { kind: "normalize" }> => s.kind === "normalize");
    const f = sizeOf(ds.sampleShape);
    const labels = gatherLabels(ds, indices);
    const host = this.oneHot ? toOneHot({ x: new Float32Array(0), ...labels, size: n, sampleShape: ds.sampleShape, indices }, ds.numClasses!) : labels;
    const attrs = {
        data: ds.x,
        owner: this,
        indices,
        outShape: this.flatten ? [n, f] : [n, ...ds.sampleShape],
        ...(shift ? { shifts: shift.shifts, h: shift.h, w: shift.w, c: shift.c, fill: shift.fill } : { h: 1, w: f, c: 1, fill: 0 }),
        ...(noise ? { noise: { std: noise.std, lo: noise.lo, hi: noise.hi, states: noise.states, tables: regionTables() } } : {}),
        ...(norm ? { normalize: { mean: norm.mean, invStd: norm.invStd } } : {}),
    };
    const xs = tf.engine().runKernel(AUGMENT_POST, {}, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    return { xs: tf.keep(xs), labels: { y: host.y, labelShape: host.labelShape } };
  }

  /** The made batch (waits for it; a kernel thread's error is thrown here, and nothing of the batch is left). */
  join(posted: PostedBatch): Batch {
    let xs: tf.Tensor;
    try {
      xs = tf.engine().runKernel(AUGMENT_JOIN, { x: posted.xs }, {}) as tf.Tensor;
    } finally {
      posted.xs.dispose();
    }
    // tensors of the caller's scope, as the host path's
    try {
      return { xs, ys: labelTensor(posted.labels.y, xs.shape[0]!, posted.labels.labelShape) };
    } catch (e) {
      xs.dispose();
      throw e;
    }
  }

  /** Joins a batch nobody will use and disposes it (a join error is of no use to anyone then). */
  discard(posted: PostedBatch): void {
    try {
      tf.dispose(Object.values(this.join(posted)));
    } catch {
      // its tensor is gone either way (`join`)
    }
  }

  /** Drops a posted batch without joining it (the kernels are gone: its kernel finishes it when it next runs). */
  drop(posted: PostedBatch): void {
    posted.xs.dispose();
  }

  /** Releases the data set's copy in the backend's memory (the next batch makes a new one). */
  dispose(): void {
    if (tf.getKernel(AUGMENT_RELEASE, tf.getBackend())) tf.engine().runKernel(AUGMENT_RELEASE, {}, { owner: this } as unknown as tf.NamedAttrMap);
  }
}
