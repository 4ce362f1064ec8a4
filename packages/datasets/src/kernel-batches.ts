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
 * finds it made. The transforms draw the same numbers as on the host (`BatchTransform.kernel`) and
 * the noise is this package's own kernel, built into @fitloop/wasm: the same bits either way.
 *
 * The data set goes into the backend's memory once (one tensor, kept until `dispose()`), so the
 * workers read it in place. Used only for transforms that are all kernel steps, in the order
 * [shift][noise] (each optional), and data sets up to `MAX_KERNEL_DATA_BYTES`.
 */
export const AUGMENT_POST = "FitloopAugmentPost";
export const AUGMENT_JOIN = "FitloopAugmentJoin";

/** Data sets larger than this are batched on the host (a second copy in the backend's memory would cost too much). */
export const MAX_KERNEL_DATA_BYTES = 512 * 1024 * 1024;

/** Whether `transforms` can be made by the kernels: kernel steps only, at most a shift (first) then a noise. */
export function kernelPlan(transforms: readonly BatchTransform[]): boolean {
  const kinds = transforms.map((t) => t.kernel?.kind ?? "host").join(",");
  return ["", "shift", "noise", "shift,noise"].includes(kinds);
}

/** A batch posted to the kernel: its features are being made until `join`. */
export interface PostedBatch {
  readonly xs: tf.Tensor;
  readonly ys: tf.Tensor;
}

export class KernelBatches {
  private data: { tensor: tf.Tensor; backend: tf.KernelBackend } | undefined;

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
    const f = sizeOf(ds.sampleShape);
    const labels = gatherLabels(ds, indices);
    const host = this.oneHot ? toOneHot({ x: new Float32Array(0), ...labels, size: n, sampleShape: ds.sampleShape, indices }, ds.numClasses!) : labels;
    const ys = labelTensor(host.y, n, host.labelShape);
    try {
      const attrs = {
        indices,
        outShape: this.flatten ? [n, f] : [n, ...ds.sampleShape],
        ...(shift ? { shifts: shift.shifts, h: shift.h, w: shift.w, c: shift.c, fill: shift.fill } : { h: 1, w: f, c: 1, fill: 0 }),
        ...(noise ? { noise: { std: noise.std, lo: noise.lo, hi: noise.hi, states: noise.states, tables: regionTables() } } : {}),
      };
      const xs = tf.engine().runKernel(AUGMENT_POST, { data: this.dataTensor() }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
      return { xs, ys };
    } catch (e) {
      ys.dispose();
      throw e;
    }
  }

  /** The made batch (waits for it; a kernel thread's error is thrown here, and nothing of the batch is left). */
  join(posted: PostedBatch): Batch {
    try {
      return { xs: tf.engine().runKernel(AUGMENT_JOIN, { x: posted.xs }, {}) as tf.Tensor, ys: posted.ys };
    } catch (e) {
      posted.ys.dispose();
      throw e;
    } finally {
      posted.xs.dispose();
    }
  }

  /** Joins a batch nobody will use and disposes it (a join error is of no use to anyone then). */
  discard(posted: PostedBatch): void {
    try {
      tf.dispose(Object.values(this.join(posted)));
    } catch {
      // its tensors are gone either way (`join`)
    }
  }

  /** The data set in the current backend's memory (made once per backend). */
  private dataTensor(): tf.Tensor {
    const backend = tf.backend();
    if (this.data?.backend !== backend) {
      this.dispose();
      const ds = this.dataset;
      this.data = { tensor: tf.keep(tf.tensor(ds.x, [ds.size, sizeOf(ds.sampleShape)], "float32")), backend };
    }
    return this.data.tensor;
  }

  /** Releases the data set's copy in the backend's memory. */
  dispose(): void {
    this.data?.tensor.dispose();
    this.data = undefined;
  }
}
