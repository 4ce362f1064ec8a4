import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { OptionsError, parseOptions } from "@fitloop/core";
import { z } from "zod";
import type { ArrayDataset } from "../dataset.js";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IDX_MAX_HEADER_BYTES, IdxError, encodeIdx, idxMaxBytes, parseIdx, parseIdxHeader, type IdxArray, type IdxReadOptions } from "../idx.js";
import { gunzipBounded, gunzipHead, isGzip, readHead } from "./gunzip.js";
import { FASHION_MNIST_CLASS_NAMES, MNIST_CLASS_NAMES, MNIST_FILES, expectedMnistFiles, idxToDataset, type MnistKind, type MnistSplit } from "../mnist.js";

/** `path` if it exists (as anything: a directory is reported by the reader), else `path.gz`, else undefined. */
export function resolveIdxPath(path: string): string | undefined {
  if (existsSync(path)) return path;
  if (!path.endsWith(".gz") && existsSync(`${path}.gz`)) return `${path}.gz`;
  return undefined;
}

/**
 * The size of `path` in bytes, if it is a regular file; otherwise a typed `IdxError` naming it:
 * `IDX_NOT_A_FILE` (a directory, a FIFO, a device) or `IDX_UNREADABLE` (permissions, I/O).
 */
export function regularFileSize(path: string): number {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT") throw new IdxError("IDX_MISSING", path, `IDX file not found: ${path}`, { cause: e });
    throw new IdxError("IDX_UNREADABLE", path, `${path}: cannot be read (${code ?? (e as Error).message})`, { cause: e });
  }
  if (st.isDirectory()) throw new IdxError("IDX_NOT_A_FILE", path, `${path} is a directory; expected an IDX file (plain or .gz)`);
  if (!st.isFile()) throw new IdxError("IDX_NOT_A_FILE", path, `${path} is not a regular file (a FIFO, socket or device); expected an IDX file (plain or .gz)`);
  return st.size;
}

function readOrThrow<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof IdxError) throw e;
    const code = (e as { code?: string }).code;
    throw new IdxError("IDX_UNREADABLE", path, `${path}: cannot be read (${code ?? (e as Error).message})`, { cause: e });
  }
}

/**
 * Reads an IDX file (gzipped or not: detected from the bytes, and `name.gz` is tried when `name`
 * is missing). `expectMagic` checks the header, e.g. `IDX_IMAGES_MAGIC`.
 *
 * The header is read first, and nothing larger than it declares is ever read or decompressed: a
 * plain file must have exactly the declared size before its body is read; a gzipped one is inflated
 * with zlib's `maxOutputLength` set to the declared size, so a file that expands to more (or less)
 * is refused. A header that declares more than `maxBytes` (default `IDX_MAX_BYTES`, 1 GiB) is
 * refused before anything is allocated. Every problem is an `IdxError` naming the file.
 */
export function readIdxFile(path: string, expectMagic?: number, options: IdxReadOptions = {}): IdxArray {
  const maxBytes = idxMaxBytes("readIdxFile", options);
  if (typeof path !== "string" || path.length === 0) throw new OptionsError("readIdxFile", [{ path: "path", message: `must be a non-empty string, got ${JSON.stringify(path) ?? String(path)}` }]);
  const found = resolveIdxPath(path);
  if (!found) throw new IdxError("IDX_MISSING", path, `IDX file not found: ${path} (nor ${path}.gz)`);
  const size = regularFileSize(found);
  if (size === 0) throw new IdxError("IDX_EMPTY", found, `${found}: the file is empty (0 bytes); expected an IDX file`);
  const head = readOrThrow(found, () => readHead(found, IDX_MAX_HEADER_BYTES));
  if (!isGzip(head)) {
    const header = parseIdxHeader(head, found, expectMagic, { maxBytes });
    if (size !== header.totalBytes) {
      const why = size < header.totalBytes ? "truncated" : "has trailing bytes";
      throw new IdxError("IDX_MALFORMED", found, `${found}: ${why}: dims [${header.dims.join(", ")}] of ${header.dtype} need ${header.totalBytes} bytes, the file has ${size}`);
    }
    return parseIdx(readOrThrow(found, () => readFileSync(found)), found, expectMagic, { maxBytes });
  }
  if (size > maxBytes) throw new IdxError("IDX_TOO_LARGE", found, `${found}: the gzip file is ${size} bytes, more than the limit of ${maxBytes} bytes (maxBytes)`);
  const gz: Uint8Array = readOrThrow(found, () => readFileSync(found));
  const header = parseIdxHeader(gunzipHead(gz, found, IDX_MAX_HEADER_BYTES), found, expectMagic, { maxBytes });
  const bytes = gunzipBounded(gz, found, header.totalBytes, `dims [${header.dims.join(", ")}] of ${header.dtype}`);
  return parseIdx(bytes, found, expectMagic, { maxBytes });
}

/** Writes an IDX file, gzipped when `gzip` is true (then add `.gz` to the name yourself). */
export function writeIdxFile(path: string, array: IdxArray, options: { gzip?: boolean } = {}): void {
  const bytes = encodeIdx(array);
  writeFileSync(path, options.gzip ? gzipSync(bytes) : bytes);
}

export interface LoadMnistOptions {
  /** Directory with the four IDX files (`train-images-idx3-ubyte[.gz]`, ...). */
  dir: string;
  /** Default "train". */
  split?: MnistSplit;
  /** Sets the class names. Default "mnist". */
  kind?: MnistKind;
  /** Pixels divided by 255. Default true. */
  scale?: boolean;
  /** Largest file (uncompressed) read. Default `IDX_MAX_BYTES` (1 GiB). */
  maxBytes?: number;
}

const loadSchema = z.strictObject({
  dir: z.string({ message: "must be the path of a directory (string)" }).min(1, { message: "must be the path of a directory (string)" }),
  split: z.enum(["train", "test"], { message: 'must be "train" or "test"' }).optional(),
  kind: z.enum(["mnist", "fashion-mnist"], { message: 'must be "mnist" or "fashion-mnist"' }).optional(),
  scale: z.boolean({ message: "must be a boolean" }).optional(),
  maxBytes: z.number().optional(),
});

/**
 * MNIST or Fashion-MNIST from the standard IDX files in `dir`: `[28, 28, 1]` images in [0, 1] and
 * class indices. Missing or malformed files fail with an `IdxError` that names the file and lists
 * the expected names.
 */
export function loadMnist(options: LoadMnistOptions): ArrayDataset {
  const o = parseOptions("loadMnist", loadSchema, options);
  const maxBytes = idxMaxBytes("loadMnist", o);
  const split = o.split ?? "train";
  const kind = o.kind ?? "mnist";
  const names = MNIST_FILES[split];
  if (existsSync(o.dir) && !statSync(o.dir).isDirectory()) {
    throw new IdxError("IDX_NOT_A_DIRECTORY", o.dir, `${o.dir} is a file; loadMnist's dir must be the directory that holds ${expectedMnistFiles().join(", ")}`);
  }
  const paths = { images: join(o.dir, names.images), labels: join(o.dir, names.labels) };
  for (const p of [paths.images, paths.labels]) if (!resolveIdxPath(p)) throw missing(o.dir, p, kind);
  const images = readIdxFile(paths.images, IDX_IMAGES_MAGIC, { maxBytes });
  const labels = readIdxFile(paths.labels, IDX_LABELS_MAGIC, { maxBytes });
  return idxToDataset(images, labels, {
    ...(o.scale === undefined ? {} : { scale: o.scale }),
    classNames: kind === "fashion-mnist" ? FASHION_MNIST_CLASS_NAMES : MNIST_CLASS_NAMES,
    files: { images: basename(resolveIdxPath(paths.images)!), labels: basename(resolveIdxPath(paths.labels)!) },
  });
}

/** Fashion-MNIST (same files and format as MNIST). */
export function loadFashionMnist(options: Omit<LoadMnistOptions, "kind">): ArrayDataset {
  if (typeof options === "object" && options !== null && "kind" in options) {
    throw new OptionsError("loadFashionMnist", [{ path: "kind", message: "is set by loadFashionMnist; use loadMnist to choose it" }]);
  }
  return loadMnist({ ...options, kind: "fashion-mnist" });
}

function missing(dir: string, path: string, kind: MnistKind): IdxError {
  const there = existsSync(dir) ? readdirSync(dir).sort() : undefined;
  const found = there === undefined ? `the directory ${dir} does not exist` : there.length ? `it contains: ${there.slice(0, 12).join(", ")}${there.length > 12 ? ", ..." : ""}` : "it is empty";
  const source = kind === "fashion-mnist" ? "https://github.com/zalandoresearch/fashion-mnist" : "the MNIST database (yann.lecun.com/exdb/mnist, or a mirror)";
  return new IdxError(
    "IDX_MISSING",
    path,
    `${kind} file missing: ${basename(path)}[.gz] in ${dirname(path)} (${found}).\nExpected the four IDX files: ${expectedMnistFiles().join(", ")}; download them from ${source}.`,
  );
}
