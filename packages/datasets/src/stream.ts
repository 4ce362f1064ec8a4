import * as tf from "@tensorflow/tfjs-core";
import { DataError, OptionsError, Rng, mixSeed, parseOptions, type Batch, type DataCursor, type DataSource } from "@fitloop/core";
import { z } from "zod";
import { applyTransforms, toOneHot, toTensors, type HostBatch } from "./batch.js";
import type { LoaderOptions } from "./loader.js";
import { batchingShape, checkCursor } from "./options.js";
import { prefetch } from "./prefetch.js";
import { checkFinite, checkLabels, shapeIssue, sizeOf } from "./validate.js";

/** One sample of a stream: features (`prod(sampleShape)` values) and a class index or target. */
export interface Sample {
  readonly x: ArrayLike<number>;
  readonly y: number | ArrayLike<number>;
}

/**
 * Where a stream's samples come from: a generator, a file read in chunks, a network feed.
 * `open(epoch, start)` returns the samples of `epoch` from sample `start` on. A source that can
 * seek (fixed-size records in an uncompressed file) sets `seekable` and honours `start`; for the
 * others `start` is always 0 and the stream skips by reading, so resuming costs O(start) reads.
 */
export interface StreamSource {
  open(epoch: number, start: number): AsyncIterable<Sample> | Iterable<Sample>;
  readonly seekable?: boolean;
  /** Number of samples per epoch, when known (gives `batchesPerEpoch` for progress and schedules). */
  readonly size?: number;
}

export interface StreamOptions extends Omit<LoaderOptions, "shuffle"> {
  /** Shape of one sample's features. */
  sampleShape: readonly number[];
  /** Set for class labels (checked to be integers in range). */
  numClasses?: number;
  /** Shape of a regression target; default `[]`. */
  labelShape?: readonly number[];
  /**
   * Shuffle within a sliding buffer of this many samples (seeded by `(seed, epoch)`), as `tf.data`
   * does. 0 (default) keeps the stream's order. A buffered stream always resumes by reading.
   */
  shuffleBuffer?: number;
}

const schema = z.strictObject({
  ...batchingShape,
  sampleShape: z.custom<readonly number[]>((v) => shapeIssue(v, false) === undefined, { message: "must be a non-empty array of integers >= 1, e.g. [784] or [28, 28, 1]" }),
  numClasses: z.number().int({ message: "must be an integer >= 1" }).min(1, { message: "must be an integer >= 1" }).optional(),
  labelShape: z.custom<readonly number[]>((v) => shapeIssue(v, true) === undefined, { message: "must be an array of integers >= 1 ([] for a scalar target)" }).optional(),
  shuffleBuffer: z.number().int({ message: "must be an integer >= 0" }).min(0, { message: "must be an integer >= 0" }).max(2 ** 24, { message: "must be at most 2^24 samples" }).optional(),
});

const AUGMENT_SALT = 0xa06;

/**
 * A data source over samples that need not fit in memory. Samples are checked as they arrive
 * (shape, NaN/Inf, label range: a `DataError` names the sample's index in the epoch), batched into
 * typed arrays, transformed with the same seeded transforms as `DataLoader`, and prefetched.
 */
export function streamData(source: StreamSource, options: StreamOptions): DataSource {
  checkSource(source);
  const o = parseOptions("streamData", schema, options);
  if (o.numClasses !== undefined && o.labelShape !== undefined) {
    throw new OptionsError("streamData", [{ path: "labelShape", message: "is for regression targets; with numClasses labels are class indices (leave labelShape out)" }]);
  }
  const seed = o.seed ?? 0;
  const transforms = o.transforms ?? [];
  const oneHot = (o.oneHot ?? false) || transforms.some((t) => t.softLabels === true);
  if (oneHot && o.numClasses === undefined) throw new OptionsError("streamData", [{ path: "numClasses", message: "one-hot or soft labels need numClasses" }]);
  for (const t of transforms) t.check?.({ sampleShape: o.sampleShape, numClasses: o.numClasses });
  const size = source.size;
  const batchesPerEpoch = size === undefined ? undefined : o.dropLast ? Math.floor(size / o.batchSize) : Math.ceil(size / o.batchSize);
  const shuffleBuffer = o.shuffleBuffer ?? 0;
  const f = sizeOf(o.sampleShape);
  const labelShape = o.numClasses === undefined ? (o.labelShape ?? []) : [];
  const l = sizeOf(labelShape);

  async function* hostBatches(cursor: DataCursor): AsyncGenerator<HostBatch> {
    const start = cursor.batchIndex * o.batchSize;
    const seek = source.seekable === true && shuffleBuffer === 0;
    let stream: AsyncIterable<Sample> = toAsync(source.open(cursor.epoch, seek ? start : 0));
    if (shuffleBuffer > 0) stream = shuffled(stream, shuffleBuffer, new Rng(mixSeed(seed, cursor.epoch, 0x5f1e)));
    let index = seek ? start : 0;
    let b = cursor.batchIndex;
    let rows: Sample[] = [];
    for await (const sample of stream) {
      if (index++ < start) continue; // not seekable: skip by reading
      rows.push(sample);
      if (rows.length === o.batchSize) {
        yield finish(rows, index - rows.length, cursor.epoch, b++);
        rows = [];
      }
    }
    if (rows.length > 0 && !o.dropLast) yield finish(rows, index - rows.length, cursor.epoch, b);
  }

  function finish(rows: Sample[], first: number, epoch: number, batchIndex: number): HostBatch {
    const n = rows.length;
    const x = new Float32Array(n * f);
    const yRaw: number[] = [];
    const yVec = o.numClasses === undefined ? new Float32Array(n * l) : undefined;
    rows.forEach((s, r) => {
      if (s.x.length !== f) throw new DataError("RAGGED_SAMPLE", `stream sample ${first + r} has ${s.x.length} features, expected ${f} (shape [${o.sampleShape.join(", ")}])`, first + r);
      x.set(s.x, r * f);
      if (yVec) {
        const y = typeof s.y === "number" ? [s.y] : s.y;
        if (y.length !== l) throw new DataError("RAGGED_SAMPLE", `stream sample ${first + r} has a target of ${y.length} values, expected ${l}`, first + r);
        yVec.set(y, r * l);
      } else yRaw.push(s.y as number);
    });
    checkFinite(x, f, "input", first);
    if (yVec) checkFinite(yVec, l, "label", first);
    const y = yVec ?? checkLabels(yRaw, o.numClasses!, first);
    let batch: HostBatch = { x, y, size: n, sampleShape: o.sampleShape, labelShape, indices: Int32Array.from({ length: n }, (_, r) => first + r) };
    if (oneHot) batch = toOneHot(batch, o.numClasses!);
    if (transforms.length === 0) return batch;
    const rng = new Rng(mixSeed(seed, epoch, batchIndex, AUGMENT_SALT));
    return applyTransforms(batch, transforms, { rng, epoch, batchIndex, numClasses: o.numClasses });
  }

  async function* tensors(cursor: DataCursor): AsyncGenerator<Batch> {
    for await (const hb of hostBatches(cursor)) yield toTensors(hb, o.flatten ?? false);
  }

  return {
    ...(size === undefined ? {} : { size }),
    ...(batchesPerEpoch === undefined ? {} : { batchesPerEpoch }),
    batches(cursor: DataCursor): AsyncIterable<Batch> {
      checkCursor("streamData", cursor, batchesPerEpoch);
      return { [Symbol.asyncIterator]: () => prefetch(tensors(cursor), o.prefetch ?? 1, (b) => tf.dispose([b.xs, b.ys])) };
    },
  };
}

function checkSource(source: StreamSource): void {
  if (typeof source !== "object" || source === null || typeof source.open !== "function") {
    throw new OptionsError("streamData", [{ path: "source", message: "must be a StreamSource: an object with open(epoch, start) returning an (async) iterable of { x, y }" }]);
  }
  const issues: { path: string; message: string }[] = [];
  if (source.size !== undefined && (!Number.isSafeInteger(source.size) || source.size < 1)) issues.push({ path: "source.size", message: `must be an integer >= 1 or undefined, got ${String(source.size)}` });
  if (source.seekable !== undefined && typeof source.seekable !== "boolean") issues.push({ path: "source.seekable", message: "must be a boolean" });
  if (issues.length) throw new OptionsError("streamData", issues);
}

async function* toAsync(it: AsyncIterable<Sample> | Iterable<Sample>): AsyncIterable<Sample> {
  yield* it;
}

/** A seeded sliding-buffer shuffle: fill `size` samples, then emit a random one per incoming sample. */
async function* shuffled(stream: AsyncIterable<Sample>, size: number, rng: Rng): AsyncIterable<Sample> {
  const buf: Sample[] = [];
  for await (const s of stream) {
    if (buf.length < size) {
      buf.push(s);
      continue;
    }
    const j = rng.int(size);
    yield buf[j]!;
    buf[j] = s;
  }
  while (buf.length) {
    const j = rng.int(buf.length);
    yield buf[j]!;
    buf[j] = buf[buf.length - 1]!;
    buf.pop();
  }
}
