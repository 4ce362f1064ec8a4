import { DataError, OptionsError, parseOptions } from "@fitloop/core";
import { z } from "zod";
import type { ArrayDataset } from "./dataset.js";
import { IdxError, type IdxArray } from "./idx.js";
import { checkFinite } from "./validate.js";

export type MnistSplit = "train" | "test";
export type MnistKind = "mnist" | "fashion-mnist";

/** The standard file names (MNIST and Fashion-MNIST use the same ones), each optionally `.gz`. */
export const MNIST_FILES: Record<MnistSplit, { readonly images: string; readonly labels: string }> = {
  train: { images: "train-images-idx3-ubyte", labels: "train-labels-idx1-ubyte" },
  test: { images: "t10k-images-idx3-ubyte", labels: "t10k-labels-idx1-ubyte" },
};

export const MNIST_CLASS_NAMES: readonly string[] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
export const FASHION_MNIST_CLASS_NAMES: readonly string[] = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/** All four expected names, for error messages. */
export function expectedMnistFiles(): string[] {
  return Object.values(MNIST_FILES).flatMap((f) => [`${f.images}[.gz]`, `${f.labels}[.gz]`]);
}

export interface IdxDatasetOptions {
  /** Divide pixels by 255 (to [0, 1]). Default true. */
  scale?: boolean;
  numClasses?: number;
  classNames?: readonly string[];
  /** File names for messages. */
  files?: { images: string; labels: string };
}

/**
 * An image IDX array `[n, h, w]` (uint8) and a label IDX array `[n]` as a data set of
 * `[h, w, 1]` images and class indices. Counts and label range are checked.
 */
export function idxToDataset(images: IdxArray, labels: IdxArray, options: IdxDatasetOptions = {}): ArrayDataset {
  const o = parseOptions("idxToDataset", optionsSchema, options);
  const files = o.files ?? { images: "images", labels: "labels" };
  const numClasses = o.numClasses ?? 10;
  checkArray(images, files.images, 3, "images need 3 dims [n, rows, cols]");
  checkArray(labels, files.labels, 1, "labels need 1 dim [n]");
  const [n, h, w] = images.dims as [number, number, number];
  if (labels.dims[0] !== n) {
    throw new IdxError("IDX_MISMATCH", files.labels, `${files.images} has ${n} images but ${files.labels} has ${labels.dims[0]} labels; are they from the same split?`);
  }
  const classNames = o.classNames ?? (numClasses === 10 ? MNIST_CLASS_NAMES : undefined);
  if (classNames && classNames.length !== numClasses) {
    throw new OptionsError("idxToDataset", [{ path: "classNames", message: `has ${classNames.length} names but numClasses is ${numClasses}` }]);
  }
  const scale = o.scale ?? true ? 1 / 255 : 1;
  const x = new Float32Array(images.data.length);
  for (let k = 0; k < x.length; k++) x[k] = images.data[k]! * scale;
  checkFinite(x, h * w, "input");
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = labels.data[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
      throw new DataError("LABEL_OUT_OF_RANGE", `${files.labels}: label of sample ${i} is ${v}; expected a class in [0, ${numClasses - 1}]`, i);
    }
    y[i] = v;
  }
  return { x, y, size: n, sampleShape: [h, w, 1], labelShape: [], numClasses, ...(classNames ? { classNames } : {}) };
}

const optionsSchema = z.strictObject({
  scale: z.boolean({ message: "must be a boolean" }).optional(),
  numClasses: z.number().int({ message: "must be an integer >= 1" }).min(1, { message: "must be an integer >= 1" }).optional(),
  classNames: z.array(z.string()).optional(),
  files: z.strictObject({ images: z.string(), labels: z.string() }).optional(),
});

/** An `IdxArray` built by hand or parsed: `ndims` positive integer dims and exactly `prod(dims)` values. */
function checkArray(a: IdxArray, file: string, ndims: number, what: string): void {
  const dims = a?.dims;
  if (!Array.isArray(dims) || dims.length !== ndims) {
    throw new IdxError("IDX_MALFORMED", file, `${file}: ${what}, got [${Array.isArray(dims) ? dims.join(", ") : String(dims)}]`);
  }
  const bad = dims.findIndex((d) => !Number.isInteger(d) || d < 1);
  if (bad >= 0) throw new IdxError(dims[bad] === 0 ? "IDX_EMPTY" : "IDX_MALFORMED", file, `${file}: dimension ${bad} is ${String(dims[bad])} (dims [${dims.join(", ")}]); dimensions must be integers >= 1`);
  const count = dims.reduce((p, d) => p * d, 1);
  if (!ArrayBuffer.isView(a.data) || (a.data as { length: number }).length !== count) {
    const len = ArrayBuffer.isView(a.data) ? (a.data as { length: number }).length : "no typed array of";
    throw new IdxError("IDX_MALFORMED", file, `${file}: dims [${dims.join(", ")}] need ${count} values, got ${len} values`);
  }
}
