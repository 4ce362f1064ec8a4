import * as tf from "@tensorflow/tfjs-core";
import { DataError, OptionsError, Rng, epochPermutation, mixSeed, parseOptions, type Batch, type DataCursor, type DataSource } from "@fitloop/core";
import { applyTransforms, gatherBatch, runTransform, tensorsCopyData, toOneHot, toTensors, type BatchTransform, type HostBatch, type TransformContext } from "./batch.js";
import type { ArrayDataset } from "./dataset.js";
import { KernelBatches, kernelPlan, type PostedBatch } from "./kernel-batches.js";
import { prefetch } from "./prefetch.js";
import { checkCursor, checkStructure, loaderOptionsSchema } from "./options.js";
import { checkFinite } from "./validate.js";

export interface LoaderOptions {
  batchSize: number;
  /** Shuffle every epoch with a permutation derived from `(seed, epoch)`. Default true. */
  shuffle?: boolean;
  /** Seed of the order and of the transforms. Default 0. */
  seed?: number;
  /** Drop the last, smaller batch. Default false. */
  dropLast?: boolean;
  /** Applied in order to every training batch, seeded by `(seed, epoch, batchIndex)`. */
  transforms?: readonly BatchTransform[];
  /**
   * Batches prepared ahead (see `prefetch`); 0 makes `batches()` a plain synchronous iterable. Default
   * 1. Where the backend makes the batches in the background (wasm with @fitloop/wasm, see `batches`),
   * any depth > 0 gives an asynchronous iterable without prefetch timers: batch b + 1 is being made
   * while b is used anyway.
   */
  prefetch?: number;
  /** Yield `xs` as `[n, prod(sampleShape)]` (for an MLP on image data). Default false. */
  flatten?: boolean;
  /** Yield labels as one-hot rows. Forced on when a transform makes soft labels (MixUp, CutMix, smoothing). */
  oneHot?: boolean;
}

const AUGMENT_SALT = 0xa06;

/**
 * Batches an in-memory data set for the fitloop `Trainer` (a core `DataSource`). The order of an
 * epoch is a permutation of `(seed, epoch)` and the transforms of batch b draw from
 * `(seed, epoch, b)`, so `batches({epoch, batchIndex})` resumes exactly where an uninterrupted run
 * would be, without replaying earlier batches. The loop disposes every yielded batch.
 */
export class DataLoader implements DataSource {
  readonly dataset: ArrayDataset;
  readonly size: number;
  readonly batchesPerEpoch: number;
  readonly batchSize: number;
  readonly seed: number;
  private readonly shuffle: boolean;
  private readonly transforms: readonly BatchTransform[];
  private readonly depth: number;
  private readonly flatten: boolean;
  private readonly oneHot: boolean;
  private cachedOrder: { epoch: number; order: Int32Array } | undefined;
  private peeked: Batch | undefined;
  /** The feature buffer of the last batch, free again once its tensor holds a copy (see `batch`). */
  private spare: Float32Array | undefined;
  /** The `workspace` of the first transform that has one. */
  private readonly workspace: ((length: number) => Float32Array | undefined) | undefined;
  private readonly features: number;
  /** Where the transforms can be kernel steps: batches made in the backend's memory, in the background (see `batches`). */
  private readonly kernel: KernelBatches | undefined;

  constructor(dataset: ArrayDataset, options: LoaderOptions) {
    checkStructure("DataLoader", dataset);
    const o = parseOptions("DataLoader", loaderOptionsSchema, options);
    this.dataset = dataset;
    this.size = dataset.size;
    this.batchSize = o.batchSize;
    this.seed = o.seed ?? 0;
    this.shuffle = o.shuffle ?? true;
    this.transforms = o.transforms ?? [];
    this.depth = o.prefetch ?? 1;
    this.flatten = o.flatten ?? false;
    const withWorkspace = this.transforms.find((t) => t.workspace);
    this.workspace = withWorkspace?.workspace?.bind(withWorkspace);
    this.features = dataset.sampleShape.reduce((a, b) => a * b, 1);
    this.oneHot = (o.oneHot ?? false) || this.transforms.some((t) => t.softLabels === true);
    if (this.oneHot && dataset.numClasses === undefined) {
      const why = o.oneHot ? "oneHot" : `transform ${this.transforms.find((t) => t.softLabels)!.name}`;
      throw new OptionsError("DataLoader", [{ path: o.oneHot ? "oneHot" : "transforms", message: `${why} needs class labels, but the data set has regression targets (numClasses is not set)` }]);
    }
    for (const t of this.transforms) t.check?.({ sampleShape: dataset.sampleShape, numClasses: dataset.numClasses });
    if (dataset.size === 0) throw new DataError("EMPTY_DATA", "DataLoader: the data set has 0 samples");
    if (o.batchSize > dataset.size && o.dropLast) {
      throw new DataError(
        "BATCH_LARGER_THAN_DATA",
        `DataLoader: batchSize ${o.batchSize} is larger than the data (${dataset.size} samples) and dropLast would drop every sample; use batchSize <= ${dataset.size} or keep the last batch`,
      );
    }
    this.batchesPerEpoch = o.dropLast ? Math.floor(dataset.size / o.batchSize) : Math.ceil(dataset.size / o.batchSize);
    this.kernel = kernelPlan(this.transforms) ? new KernelBatches(dataset, this.transforms, this.flatten, this.oneHot) : undefined;
  }

  /** The sample order of `epoch` (identity when `shuffle` is false). */
  order(epoch: number): Int32Array {
    if (this.cachedOrder?.epoch !== epoch) {
      const order = this.shuffle ? epochPermutation(this.size, this.seed, epoch) : Int32Array.from({ length: this.size }, (_, i) => i);
      this.cachedOrder = { epoch, order };
    }
    return this.cachedOrder.order;
  }

  /** Data set indices of batch `batchIndex` of `epoch`. */
  batchIndices(epoch: number, batchIndex: number): Int32Array {
    const start = batchIndex * this.batchSize;
    return this.order(epoch).slice(start, Math.min(start + this.batchSize, this.size));
  }

  /** Batch `batchIndex` of `epoch` as typed arrays, transforms applied: what the loop will see, with no tensors. */
  hostBatch(epoch: number, batchIndex: number): HostBatch {
    checkCursor("DataLoader", { epoch, batchIndex }, this.batchesPerEpoch - 1);
    return this.make(epoch, batchIndex).host;
  }

  /**
   * Batch `batchIndex` of `epoch` as tensors; the caller owns (disposes) them. When the backend
   * copies tensor data (wasm), the feature buffer is gathered into the previous batch's buffer:
   * allocating and first touching 200 kB per MNIST batch costs more than the shift augmentation.
   */
  batch(epoch: number, batchIndex: number): Batch {
    checkCursor("DataLoader", { epoch, batchIndex }, this.batchesPerEpoch - 1);
    if (this.kernel?.available()) return this.kernel.join(this.post(epoch, batchIndex));
    let into = this.spare;
    this.spare = undefined;
    if (this.workspace && tensorsCopyData()) {
      // a transform's own buffer (gaussian noise: its kernel's memory), valid until the tensors exist
      const rows = Math.min(this.batchSize, this.size - batchIndex * this.batchSize);
      into = this.workspace(rows * this.features) ?? into;
    }
    const { host, gathered } = this.make(epoch, batchIndex, into);
    const tensors = toTensors(host, this.flatten);
    // recycle the buffer the batch was gathered into, if it is still the batch's (no transform replaced it)
    if (host.x === gathered && tensorsCopyData()) this.spare = host.x;
    return tensors;
  }

  /**
   * Gathers batch `batchIndex` of `epoch` (into `into` when it fits) and applies the transforms;
   * `gathered` is the buffer it was gathered into (recycled once the tensors hold a copy).
   */
  private make(epoch: number, batchIndex: number, into?: Float32Array): { host: HostBatch; gathered: Float32Array } {
    const indices = this.batchIndices(epoch, batchIndex);
    const transforms = this.transforms;
    const first = transforms[0];
    let batch: HostBatch;
    let rest = transforms;
    let ctx: TransformContext | undefined;
    if (first?.gatherApply) {
      // the first transform gathers (fused), then the others continue on the same rng
      const c = (ctx = this.context(epoch, batchIndex));
      batch = runTransform(first.name, () => first.gatherApply!(this.dataset, indices, c, into), indices.length, c);
      rest = transforms.slice(1);
    } else {
      batch = gatherBatch(this.dataset, indices, into);
    }
    const gathered = batch.x;
    if (this.oneHot) batch = toOneHot(batch, this.dataset.numClasses!);
    if (rest.length === 0) return { host: batch, gathered };
    return { host: applyTransforms(batch, rest, ctx ?? this.context(epoch, batchIndex)), gathered };
  }

  /** Posts batch `batchIndex` of `epoch` to the backend's kernel (`kernel` is set and available). */
  private post(epoch: number, batchIndex: number): PostedBatch {
    // a view of the order, not a copy: the post copies the indices into the backend's memory at once
    const start = batchIndex * this.batchSize;
    const indices = this.order(epoch).subarray(start, Math.min(start + this.batchSize, this.size));
    return this.kernel!.post(indices, this.context(epoch, batchIndex));
  }

  private context(epoch: number, batchIndex: number): TransformContext {
    const rng = new Rng(mixSeed(this.seed, epoch, batchIndex, AUGMENT_SALT));
    return { rng, epoch, batchIndex, numClasses: this.dataset.numClasses };
  }

  batches(cursor: DataCursor): Iterable<Batch> | AsyncIterable<Batch> {
    checkCursor("DataLoader", cursor, this.batchesPerEpoch);
    this.releasePeek(); // the loop has moved on from its pre-flight scan
    const self = this;
    function* gen(): Generator<Batch> {
      if (self.kernel?.available() && cursor.batchIndex < self.batchesPerEpoch) return yield* self.kernelBatches(cursor);
      for (let b = cursor.batchIndex; b < self.batchesPerEpoch; b++) yield self.batch(cursor.epoch, b);
    }
    if (this.depth === 0) return { [Symbol.iterator]: gen };
    // batches made by the backend's kernel are made in the background already: no prefetch timers (depth 0)
    const depth = this.kernel?.available() ? 0 : this.depth;
    return { [Symbol.asyncIterator]: () => prefetch(gen(), depth, (b) => tf.dispose([b.xs, b.ys])) };
  }

  /**
   * The batches from `cursor`, each made by the backend's kernel in the background: batch b + 1 is
   * posted before batch b is joined and handed out, so a kernel thread finishes b while this thread
   * draws b + 1's transforms, and makes b + 1 while the step trains on b (see `KernelBatches`). A
   * batch posted but not handed out (the consumer stopped, a join failed) is joined and disposed
   * when the iteration ends.
   */
  private *kernelBatches(cursor: DataCursor): Generator<Batch> {
    let posted: PostedBatch | undefined = this.post(cursor.epoch, cursor.batchIndex);
    try {
      for (let b = cursor.batchIndex; b < this.batchesPerEpoch; b++) {
        const current = posted;
        posted = undefined;
        // the kernels can go away mid-epoch (another backend, unregistered): the host makes the rest,
        // and a batch posted before is dropped (its kernel finishes it when it next runs)
        const available = this.kernel!.available();
        // a failure to post the next batch is reported when it is asked for, as on the host
        let failed: { error: unknown } | undefined;
        try {
          if (b + 1 < this.batchesPerEpoch && available) posted = this.post(cursor.epoch, b + 1);
        } catch (error) {
          failed = { error };
        }
        let batch: Batch;
        if (current && available) batch = this.kernel!.join(current);
        else {
          if (current) this.kernel!.drop(current);
          batch = this.batch(cursor.epoch, b);
        }
        yield batch;
        if (failed) throw failed.error;
      }
    } finally {
      if (posted) this.kernel!.discard(posted);
    }
  }

  /**
   * Every sample in data set order, without transforms, labels in the format batches have: lets
   * the trainer's pre-flight check scan all of them. The features are checked on the host first
   * (NaN/Inf: a `DataError` naming the sample, before any tensor exists). The tensors stay owned by
   * the loader until `releasePeek()`, the next `batches()` call, or `dispose()`.
   */
  peekAll(): Batch {
    if (!this.peeked) {
      checkFinite(this.dataset.x, this.features, "input");
      let all = gatherBatch(this.dataset, Int32Array.from({ length: this.size }, (_, i) => i));
      if (this.oneHot) all = toOneHot(all, this.dataset.numClasses!);
      this.peeked = toTensors(all, this.flatten);
    }
    return this.peeked;
  }

  /**
   * Releases the tensors of `peekAll()`, if any; idempotent, and the loader stays usable. The
   * trainer's pre-flight check calls it when it is done, also when it failed, so a rejected `fit()`
   * leaves no tensors behind.
   */
  releasePeek(): void {
    const p = this.peeked;
    this.peeked = undefined;
    if (p) tf.dispose([p.xs, p.ys]);
  }

  /**
   * Batches are rows of `peekAll()` unchanged when there are no transforms: the trainer's pre-flight
   * scan then covers them and it skips its per-batch value checks. Transforms (augmentation) can
   * make values the scan never saw, so those batches are checked.
   */
  get peekCoversBatches(): boolean {
    return this.transforms.length === 0;
  }

  /** Releases the tensors of `peekAll()`, if any, and the data set's copy in the backend's memory (batches made by its kernel). */
  dispose(): void {
    this.releasePeek();
    this.kernel?.dispose();
  }
}

/** `new DataLoader(dataset, options)`. */
export function dataLoader(dataset: ArrayDataset, options: LoaderOptions): DataLoader {
  return new DataLoader(dataset, options);
}
