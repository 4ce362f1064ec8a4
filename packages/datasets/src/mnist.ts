import { DataError } from "@fitloop/core";
import type { ArrayDataset } from "./dataset.js";
import { IdxError, type IdxArray } from "./idx.js";

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
  const files = options.files ?? { images: "images", labels: "labels" };
  const numClasses = options.numClasses ?? 10;
  if (images.dims.length !== 3) throw new IdxError("IDX_MALFORMED", files.images, `${files.images}: images need 3 dims [n, rows, cols], got [${images.dims.join(", ")}]`);
  if (labels.dims.length !== 1) throw new IdxError("IDX_MALFORMED", files.labels, `${files.labels}: labels need 1 dim [n], got [${labels.dims.join(", ")}]`);
  const [n, h, w] = images.dims as [number, number, number];
  if (labels.dims[0] !== n) {
    throw new IdxError("IDX_MISMATCH", files.labels, `${files.images} has ${n} images but ${files.labels} has ${labels.dims[0]} labels; are they from the same split?`);
  }
  const scale = options.scale ?? true ? 1 / 255 : 1;
  const x = new Float32Array(images.data.length);
  for (let k = 0; k < x.length; k++) x[k] = images.data[k]! * scale;
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = labels.data[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
      throw new DataError("LABEL_OUT_OF_RANGE", `${files.labels}: label of sample ${i} is ${v}; expected a class in [0, ${numClasses - 1}]`, i);
    }
    y[i] = v;
  }
  return { x, y, size: n, sampleShape: [h, w, 1], labelShape: [], numClasses, classNames: options.classNames ?? MNIST_CLASS_NAMES };
}
