import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import type { ArrayDataset } from "../dataset.js";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IdxError, encodeIdx, parseIdx, type IdxArray } from "../idx.js";
import { FASHION_MNIST_CLASS_NAMES, MNIST_CLASS_NAMES, MNIST_FILES, expectedMnistFiles, idxToDataset, type MnistKind, type MnistSplit } from "../mnist.js";

/** `path` if it exists, else `path.gz`, else undefined. */
export function resolveIdxPath(path: string): string | undefined {
  if (existsSync(path)) return path;
  if (!path.endsWith(".gz") && existsSync(`${path}.gz`)) return `${path}.gz`;
  return undefined;
}

const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/**
 * Reads an IDX file (gzipped or not: detected from the bytes, and `name.gz` is tried when `name`
 * is missing). `expectMagic` checks the header, e.g. `IDX_IMAGES_MAGIC`.
 */
export function readIdxFile(path: string, expectMagic?: number): IdxArray {
  const found = resolveIdxPath(path);
  if (!found) throw new IdxError("IDX_MISSING", path, `IDX file not found: ${path} (nor ${path}.gz)`);
  let bytes: Uint8Array = readFileSync(found);
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new IdxError("IDX_MALFORMED", found, `${found}: corrupt gzip data (${(e as Error).message}); download the file again`);
    }
  }
  return parseIdx(bytes, found, expectMagic);
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
}

/**
 * MNIST or Fashion-MNIST from the standard IDX files in `dir`: `[28, 28, 1]` images in [0, 1] and
 * class indices. Missing or malformed files fail with an `IdxError` that names the file and lists
 * the expected names.
 */
export function loadMnist(options: LoadMnistOptions): ArrayDataset {
  const split = options.split ?? "train";
  const kind = options.kind ?? "mnist";
  const names = MNIST_FILES[split];
  const paths = { images: join(options.dir, names.images), labels: join(options.dir, names.labels) };
  for (const p of [paths.images, paths.labels]) if (!resolveIdxPath(p)) throw missing(options.dir, p, kind);
  const images = readIdxFile(paths.images, IDX_IMAGES_MAGIC);
  const labels = readIdxFile(paths.labels, IDX_LABELS_MAGIC);
  return idxToDataset(images, labels, {
    ...(options.scale === undefined ? {} : { scale: options.scale }),
    classNames: kind === "fashion-mnist" ? FASHION_MNIST_CLASS_NAMES : MNIST_CLASS_NAMES,
    files: { images: basename(resolveIdxPath(paths.images)!), labels: basename(resolveIdxPath(paths.labels)!) },
  });
}

/** Fashion-MNIST (same files and format as MNIST). */
export function loadFashionMnist(options: Omit<LoadMnistOptions, "kind">): ArrayDataset {
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
