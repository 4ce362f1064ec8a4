import * as tf from "@tensorflow/tfjs-core";
import { DataError, OptionsError } from "./errors.js";
import { epochPermutation } from "./rng.js";

/** One training or validation batch. The loop owns and disposes these tensors after the batch. */
export interface Batch {
  readonly xs: tf.Tensor;
  readonly ys: tf.Tensor;
}

/** Where a data source should start: epoch and batch index in that epoch (the data cursor). */
export interface DataCursor {
  readonly epoch: number;
  readonly batchIndex: number;
}

/**
 * What the loop consumes. `batches(cursor)` yields the batches of `cursor.epoch` from
 * `cursor.batchIndex` on. The loop takes ownership of every yielded tensor and disposes it.
 * `@fitloop/datasets` builds richer sources on this interface.
 */
export interface DataSource {
  /** Number of samples, when known. */
  readonly size?: number;
  /** Batches per epoch, when known (progress bars, schedules, resume checks). */
  readonly batchesPerEpoch?: number;
  batches(cursor: DataCursor): Iterable<Batch> | AsyncIterable<Batch>;
  /**
   * All samples at once, for sources that hold them in memory: lets the pre-flight check scan every
   * sample (NaN, label range) instead of only the first batch. Returned tensors stay owned by the source.
   */
  peekAll?(): Batch;
  /**
   * Called when the pre-flight check is done with `peekAll()`'s tensors, also when it failed: a
   * source that made them for the check (a loader's copy of every sample) releases them here.
   */
  releasePeek?(): void;
  /**
   * True when every batch is made of `peekAll()`'s rows unchanged (no transforms): the pre-flight
   * scan then covers them, and the per-batch value checks (`dataChecks`) are skipped.
   */
  readonly peekCoversBatches?: boolean;
}

export interface TensorDataOptions {
  batchSize: number;
  /** Shuffle each epoch with a permutation derived from `(seed, epoch)`. Default true. */
  shuffle?: boolean;
  /** Seed of the per-epoch order. Default 0. */
  seed?: number;
  /** Drop the last, smaller batch. Default false (a batchSize larger than the data then gives one batch of all samples). */
  dropLast?: boolean;
}

function checkTensorDataOptions(n: number, options: TensorDataOptions): void {
  const issues: { path: string; message: string }[] = [];
  const { batchSize, seed = 0 } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) issues.push({ path: "batchSize", message: `must be an integer >= 1, got ${String(batchSize)}` });
  if (!Number.isSafeInteger(seed)) issues.push({ path: "seed", message: `must be an integer, got ${String(seed)}` });
  if (options.shuffle !== undefined && typeof options.shuffle !== "boolean") issues.push({ path: "shuffle", message: "must be a boolean" });
  if (options.dropLast !== undefined && typeof options.dropLast !== "boolean") issues.push({ path: "dropLast", message: "must be a boolean" });
  if (issues.length) throw new OptionsError("tensorData", issues);
  if (n === 0) throw new DataError("EMPTY_DATA", "tensorData: the data has 0 samples");
  // as Keras and PyTorch's DataLoader do, a batch larger than the data is one smaller batch, unless dropLast would drop it
  if (batchSize > n && options.dropLast === true) {
    throw new DataError("BATCH_LARGER_THAN_DATA", `tensorData: batchSize ${batchSize} is larger than the data (${n} samples) and dropLast would drop every sample; use batchSize <= ${n} or keep the last batch`);
  }
}

/**
 * An in-memory data source over `xs` and `ys` (first axis = samples). Keeps the given tensors
 * (the caller still owns them) and gathers one batch per step.
 */
export function tensorData(xs: tf.Tensor, ys: tf.Tensor, options: TensorDataOptions): DataSource {
  const n = xs.shape[0] ?? 0;
  if (ys.shape[0] !== n) {
    throw new DataError("LENGTH_MISMATCH", `tensorData: xs has ${n} samples but ys has ${String(ys.shape[0])}`);
  }
  checkTensorDataOptions(n, options);
  const { batchSize, shuffle = true, seed = 0, dropLast = false } = options;
  const batchesPerEpoch = dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
  // On wasm and cpu every batch is cut from one host copy of the data and uploaded (~0.1 ms for
  // 64x784 floats). tfjs-wasm's Slice kernel copies the whole source tensor to JS on every call
  // (quadratic in the data size) and its Gather takes ~1.3 ms for such a batch. Elsewhere, gather.
  let host: { x: HostArray; y: HostArray } | undefined;
  const hostCopy = (): { x: HostArray; y: HostArray } | undefined => {
    if (xs.dtype === "string" || ys.dtype === "string" || !HOST_BACKENDS.has(tf.getBackend())) return undefined;
    return (host ??= { x: xs.dataSync() as HostArray, y: ys.dataSync() as HostArray });
  };
  return {
    size: n,
    batchesPerEpoch,
    peekAll: () => ({ xs, ys }),
    peekCoversBatches: true,
    *batches(cursor: DataCursor): Iterable<Batch> {
      const order = shuffle ? epochPermutation(n, seed, cursor.epoch) : null;
      const h = hostCopy();
      // wasm copies a tensor's values into its heap: one batch buffer per array, reused (cpu keeps the array)
      const scratch: (HostArray | undefined)[] | undefined = tf.getBackend() === "wasm" ? [] : undefined;
      for (let b = cursor.batchIndex; b < batchesPerEpoch; b++) {
        const start = b * batchSize;
        const end = Math.min(start + batchSize, n);
        if (h) {
          yield { xs: hostRows(h.x, xs, order, start, end, scratch, 0), ys: hostRows(h.y, ys, order, start, end, scratch, 1) };
        } else {
          const idx = tf.tensor1d(order ? order.subarray(start, end) : range(start, end), "int32");
          const batch = { xs: tf.gather(xs, idx), ys: tf.gather(ys, idx) };
          idx.dispose();
          yield batch;
        }
      }
    },
  };
}

type HostArray = Float32Array | Int32Array | Uint8Array;
/** Backends whose tensors live in host memory: reading them once is a copy, not a device sync. */
const HOST_BACKENDS = new Set(["wasm", "cpu"]);

function range(start: number, end: number): Int32Array {
  const out = new Int32Array(end - start);
  for (let i = 0; i < out.length; i++) out[i] = start + i;
  return out;
}

/**
 * Samples `[start, end)` (of `order`, or in storage order when null) from the host copy, as a new
 * tensor. With `scratch` (a backend that copies values into its own memory: wasm) the rows are
 * passed as a view (storage order) or gathered into `scratch[slot]`, reused from batch to batch:
 * no 200 kB allocation per MNIST batch; elsewhere the tensor gets an array of its own.
 */
function hostRows(values: HostArray, like: tf.Tensor, order: Int32Array | null, start: number, end: number, scratch?: (HostArray | undefined)[], slot = 0): tf.Tensor {
  const row = like.size / like.shape[0]!;
  const shape = [end - start, ...like.shape.slice(1)];
  if (order === null) return tf.tensor(scratch ? values.subarray(start * row, end * row) : values.slice(start * row, end * row), shape, like.dtype);
  const length = (end - start) * row;
  const kept = scratch?.[slot];
  const out = kept?.length === length ? kept : new (values.constructor as new (length: number) => HostArray)(length);
  if (scratch) scratch[slot] = out;
  for (let i = start; i < end; i++) {
    const r = order[i]!;
    out.set(values.subarray(r * row, r * row + row), (i - start) * row);
  }
  return tf.tensor(out, shape, like.dtype);
}

/** Wraps an array of batches (each yielded as a fresh clone, so the loop may dispose it). */
export function arrayData(batches: readonly Batch[]): DataSource {
  return {
    batchesPerEpoch: batches.length,
    *batches(cursor: DataCursor) {
      for (let b = cursor.batchIndex; b < batches.length; b++) {
        const { xs, ys } = batches[b]!;
        yield { xs: xs.clone(), ys: ys.clone() };
      }
    },
  };
}
