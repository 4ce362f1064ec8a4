import { createReadStream } from "node:fs";
import { basename, join } from "node:path";
import { createGunzip } from "node:zlib";
import { parseOptions } from "@fitloop/core";
import { z } from "zod";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IDX_MAX_HEADER_BYTES, IdxError, idxMaxBytes, parseIdxHeader, type IdxHeader } from "../idx.js";
import { isGzip, readHead } from "./gunzip.js";
import { MNIST_FILES, type MnistSplit } from "../mnist.js";
import type { Sample, StreamSource } from "../stream.js";
import { regularFileSize, resolveIdxPath } from "./idx-files.js";

export interface IdxStreamOptions {
  /** Image file (`[n, h, w]` uint8) and label file (`[n]` uint8); or `dir` + `split`. */
  images?: string;
  labels?: string;
  dir?: string;
  split?: MnistSplit;
  /** Pixels divided by 255. Default true. */
  scale?: boolean;
  /** Bytes read per chunk. Default 64 KiB. */
  chunkBytes?: number;
  /** Refuse files whose header declares more bytes. Default: no limit (values are streamed, not held). */
  maxBytes?: number;
}

const path = z.string({ message: "must be a file path (string)" }).min(1, { message: "must be a file path (string)" });
const streamSchema = z.strictObject({
  images: path.optional(),
  labels: path.optional(),
  dir: path.optional(),
  split: z.enum(["train", "test"], { message: 'must be "train" or "test"' }).optional(),
  scale: z.boolean({ message: "must be a boolean" }).optional(),
  chunkBytes: z.number().int({ message: "must be an integer in [1, 2^26]" }).min(1, { message: "must be an integer in [1, 2^26]" }).max(2 ** 26, { message: "must be an integer in [1, 2^26]" }).optional(),
  maxBytes: z.number().optional(),
});

/** A stream source over IDX files that also says what it holds (pass these to `streamData`). */
export interface IdxStreamSource extends StreamSource {
  readonly size: number;
  readonly sampleShape: readonly number[];
  readonly numClasses: number;
}

interface FileInfo {
  readonly path: string;
  readonly gz: boolean;
  readonly header: IdxHeader;
}

/**
 * Streams samples from IDX image and label files, reading them in chunks (for data that should
 * not be loaded at once). Uncompressed files are seekable: resuming at a batch starts reading at
 * its byte offset. Gzipped files are decompressed as they stream and resume by skipping bytes.
 */
export async function openIdxStream(options: IdxStreamOptions): Promise<IdxStreamSource> {
  const o = parseOptions("openIdxStream", streamSchema, options);
  const maxBytes = idxMaxBytes("openIdxStream", { maxBytes: o.maxBytes ?? Number.MAX_SAFE_INTEGER }, Number.MAX_SAFE_INTEGER);
  const names = MNIST_FILES[o.split ?? "train"];
  const imagesPath = o.images ?? join(o.dir ?? ".", names.images);
  const labelsPath = o.labels ?? join(o.dir ?? ".", names.labels);
  const images = await fileInfo(imagesPath, IDX_IMAGES_MAGIC, maxBytes);
  const labels = await fileInfo(labelsPath, IDX_LABELS_MAGIC, maxBytes);
  const [n, h, w] = images.header.dims as [number, number, number];
  if (labels.header.dims[0] !== n) {
    throw new IdxError("IDX_MISMATCH", labels.path, `${basename(images.path)} has ${n} images but ${basename(labels.path)} has ${labels.header.dims[0]} labels`);
  }
  const chunk = o.chunkBytes ?? 1 << 16;
  const scale = o.scale ?? true ? 1 / 255 : 1;
  const pixels = h * w;
  return {
    size: n,
    sampleShape: [h, w, 1],
    numClasses: 10,
    seekable: !images.gz && !labels.gz,
    async *open(_epoch: number, start: number): AsyncGenerator<Sample> {
      const img = records(images, pixels, start, chunk, n)[Symbol.asyncIterator]();
      const lab = records(labels, 1, start, chunk, n)[Symbol.asyncIterator]();
      try {
        for (;;) {
          const [a, b] = await Promise.all([img.next(), lab.next()]);
          if (a.done || b.done) return;
          const x = new Float32Array(pixels);
          for (let k = 0; k < pixels; k++) x[k] = a.value[k]! * scale;
          yield { x, y: b.value[0]! };
        }
      } finally {
        await Promise.all([img.return?.(undefined), lab.return?.(undefined)]);
      }
    },
  };
}

async function fileInfo(path: string, magic: number, maxBytes: number): Promise<FileInfo> {
  const found = resolveIdxPath(path);
  if (!found) throw new IdxError("IDX_MISSING", path, `IDX file not found: ${path} (nor ${path}.gz)`);
  const size = regularFileSize(found);
  if (size === 0) throw new IdxError("IDX_EMPTY", found, `${found}: the file is empty (0 bytes); expected an IDX file`);
  const gz = isGzip(readHead(found, 2));
  const first = await firstBytes(found, gz, IDX_MAX_HEADER_BYTES);
  const header = parseIdxHeader(first, found, magic, { maxBytes });
  const actual = gz ? await gunzippedSize(found, header.totalBytes) : size;
  if (actual !== header.totalBytes) {
    const why = actual < header.totalBytes ? "truncated" : "has trailing bytes";
    const have = gz && actual > header.totalBytes ? "more" : String(actual);
    throw new IdxError("IDX_MALFORMED", found, `${found}: ${why}: dims [${header.dims.join(", ")}] need ${header.totalBytes} bytes, the file has ${have}${gz ? " (decompressed)" : ""}`);
  }
  return { path: found, gz, header };
}

/**
 * Decompressed size of a gzip file, counted as it streams (nothing is kept), stopping once it passes
 * `limit`: a stream whose size differs from its header is refused at open, not after an epoch.
 */
async function gunzippedSize(path: string, limit: number): Promise<number> {
  let total = 0;
  try {
    for await (const c of byteStream({ path, gz: true }, 0, 1 << 16)) {
      total += (c as Uint8Array).length;
      if (total > limit) break;
    }
  } catch (e) {
    throw new IdxError("IDX_MALFORMED", path, `${path}: corrupt gzip data (${(e as Error).message}); download the file again`, { cause: e });
  }
  return total;
}

function byteStream(info: { path: string; gz: boolean }, start: number, chunk: number): AsyncIterable<Uint8Array> {
  if (!info.gz) return createReadStream(info.path, { start, highWaterMark: chunk });
  const file = createReadStream(info.path, { highWaterMark: chunk });
  const gunzip = file.pipe(createGunzip({ chunkSize: chunk }));
  // Stopping early destroys the gunzip stream only; close the file with it.
  gunzip.once("close", () => file.destroy());
  return gunzip;
}

async function firstBytes(path: string, gz: boolean, n: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let got = 0;
  try {
    for await (const c of byteStream({ path, gz }, 0, 1 << 12)) {
      parts.push(c);
      got += c.length;
      if (got >= n) break;
    }
  } catch (e) {
    throw new IdxError("IDX_MALFORMED", path, `${path}: corrupt gzip data (${(e as Error).message}); download the file again`, { cause: e });
  }
  return Buffer.concat(parts).subarray(0, n);
}

/** Fixed-size records from sample `start` on, assembled across chunk boundaries. */
async function* records(info: FileInfo, recordBytes: number, start: number, chunk: number, count: number): AsyncGenerator<Uint8Array> {
  const offset = info.header.headerBytes + start * recordBytes;
  let skip = info.gz ? offset : 0; // gzip cannot seek: decompress and drop
  let pending = new Uint8Array(0);
  let emitted = start;
  for await (const raw of byteStream(info, offset, chunk)) {
    let buf: Uint8Array = raw;
    if (skip > 0) {
      if (buf.length <= skip) {
        skip -= buf.length;
        continue;
      }
      buf = buf.subarray(skip);
      skip = 0;
    }
    const all = pending.length ? Buffer.concat([pending, buf]) : buf;
    let at = 0;
    for (; at + recordBytes <= all.length && emitted < count; at += recordBytes, emitted++) yield all.subarray(at, at + recordBytes);
    if (emitted >= count) return; // sizes were checked at open: nothing more to read (stops the stream)
    pending = all.slice(at);
  }
  if (emitted < count) throw new IdxError("IDX_MALFORMED", info.path, `${info.path}: truncated: ended after ${emitted} of ${count} records`);
}
