import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { createGunzip } from "node:zlib";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IdxError, parseIdxHeader, type IdxHeader } from "../idx.js";
import { MNIST_FILES, type MnistSplit } from "../mnist.js";
import type { Sample, StreamSource } from "../stream.js";
import { resolveIdxPath } from "./idx-files.js";

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
}

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
  const names = MNIST_FILES[options.split ?? "train"];
  const imagesPath = options.images ?? join(options.dir ?? ".", names.images);
  const labelsPath = options.labels ?? join(options.dir ?? ".", names.labels);
  const images = await fileInfo(imagesPath, IDX_IMAGES_MAGIC);
  const labels = await fileInfo(labelsPath, IDX_LABELS_MAGIC);
  const [n, h, w] = images.header.dims as [number, number, number];
  if (labels.header.dims[0] !== n) {
    throw new IdxError("IDX_MISMATCH", labels.path, `${basename(images.path)} has ${n} images but ${basename(labels.path)} has ${labels.header.dims[0]} labels`);
  }
  const chunk = options.chunkBytes ?? 1 << 16;
  const scale = options.scale ?? true ? 1 / 255 : 1;
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

async function fileInfo(path: string, magic: number): Promise<FileInfo> {
  const found = resolveIdxPath(path);
  if (!found) throw new IdxError("IDX_MISSING", path, `IDX file not found: ${path} (nor ${path}.gz)`);
  const fh = await open(found, "r");
  const head = new Uint8Array(2);
  await fh.read(head, 0, 2, 0);
  await fh.close();
  const gz = head[0] === 0x1f && head[1] === 0x8b;
  const first = await firstBytes(found, gz, 4 + 4 * 3);
  const header = parseIdxHeader(first, found, magic);
  if (!gz) {
    const count = header.dims.reduce((a, b) => a * b, 1);
    const expected = header.headerBytes + count * header.elementBytes;
    const { size } = await stat(found);
    if (size !== expected) throw new IdxError("IDX_MALFORMED", found, `${found}: dims [${header.dims.join(", ")}] need ${expected} bytes, the file has ${size}`);
  }
  return { path: found, gz, header };
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
  for await (const c of byteStream({ path, gz }, 0, 1 << 12)) {
    parts.push(c);
    got += c.length;
    if (got >= n) break;
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
    pending = all.slice(at);
  }
  if (emitted < count) throw new IdxError("IDX_MALFORMED", info.path, `${info.path}: truncated: ended after ${emitted} of ${count} records`);
}
