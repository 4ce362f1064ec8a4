import { z } from "zod";
import { DataError, OptionsError, type DataCursor } from "@fitloop/core";
import type { BatchTransform } from "./batch.js";
import type { ArrayDataset } from "./dataset.js";
import { shapeIssue, sizeOf } from "./validate.js";

const isTransform = (v: unknown): v is BatchTransform =>
  typeof v === "object" && v !== null && typeof (v as BatchTransform).apply === "function" && typeof (v as BatchTransform).name === "string";

export const seedSchema = z
  .number({ message: "must be an integer" })
  .int({ message: "must be an integer" })
  .refine(Number.isSafeInteger, { message: "must be a safe integer" });

/** Options every batching source shares (loaders and streams). Unknown keys are errors: typos do not pass silently. */
export const batchingShape = {
  batchSize: z.number({ message: "must be an integer >= 1" }).int({ message: "must be an integer >= 1" }).min(1, { message: "must be an integer >= 1" }),
  seed: seedSchema.optional(),
  dropLast: z.boolean({ message: "must be a boolean" }).optional(),
  transforms: z.array(z.custom<BatchTransform>(isTransform, { message: "must be a batch transform ({ name, apply(batch, ctx) })" })).optional(),
  prefetch: z.number().int({ message: "must be an integer >= 0" }).min(0, { message: "must be an integer >= 0" }).optional(),
  flatten: z.boolean({ message: "must be a boolean" }).optional(),
  oneHot: z.boolean({ message: "must be a boolean" }).optional(),
};

export const loaderOptionsSchema = z.strictObject({
  ...batchingShape,
  shuffle: z.boolean({ message: "must be a boolean" }).optional(),
});

/** A cursor must name an existing epoch and a batch in `[0, batchesPerEpoch]` (the end means "nothing left"). */
export function checkCursor(owner: string, cursor: DataCursor, batchesPerEpoch: number | undefined): void {
  const issues: { path: string; message: string }[] = [];
  if (!Number.isSafeInteger(cursor.epoch) || cursor.epoch < 0) issues.push({ path: "cursor.epoch", message: `must be an integer >= 0, got ${String(cursor.epoch)}` });
  const max = batchesPerEpoch ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(cursor.batchIndex) || cursor.batchIndex < 0 || cursor.batchIndex > max) {
    issues.push({ path: "cursor.batchIndex", message: `must be an integer in [0, ${max}], got ${String(cursor.batchIndex)}` });
  }
  if (issues.length) throw new OptionsError(owner, issues);
}

/**
 * Structural check of a data set (built by hand or by this package), cheap enough for every
 * loader: typed arrays of the right lengths, valid shapes, and class indices in `[0, numClasses)`
 * (the value checks of the features happen in `fromArrays` and the loader's `peekAll`).
 */
export function checkStructure(owner: string, ds: ArrayDataset): void {
  if (typeof ds !== "object" || ds === null) throw new OptionsError(owner, [{ path: "dataset", message: `must be an ArrayDataset (fromArrays, loadMnist, ...), got ${ds === null ? "null" : typeof ds}` }]);
  const issues: { path: string; message: string }[] = [];
  if (!(ds.x instanceof Float32Array)) issues.push({ path: "dataset.x", message: "must be a Float32Array (build data sets with fromArrays)" });
  if (!(ds.y instanceof Int32Array || ds.y instanceof Float32Array)) issues.push({ path: "dataset.y", message: "must be an Int32Array (class indices) or a Float32Array (targets)" });
  if (!Number.isSafeInteger(ds.size) || ds.size < 0) issues.push({ path: "dataset.size", message: `must be an integer >= 0, got ${String(ds.size)}` });
  const sampleIssue = shapeIssue(ds.sampleShape, false);
  if (sampleIssue) issues.push({ path: "dataset.sampleShape", message: sampleIssue });
  const labelIssue = shapeIssue(ds.labelShape, true);
  if (labelIssue) issues.push({ path: "dataset.labelShape", message: labelIssue });
  if (ds.numClasses !== undefined && (!Number.isSafeInteger(ds.numClasses) || ds.numClasses < 1)) {
    issues.push({ path: "dataset.numClasses", message: `must be an integer >= 1 or undefined (regression), got ${String(ds.numClasses)}` });
  }
  if (issues.length) throw new OptionsError(owner, issues);
  const f = sizeOf(ds.sampleShape);
  const l = ds.numClasses === undefined ? sizeOf(ds.labelShape) : 1;
  if (ds.x.length !== ds.size * f) {
    throw new DataError("LENGTH_MISMATCH", `${owner}: x has ${ds.x.length} values but ${ds.size} samples of shape [${ds.sampleShape.join(", ")}] need ${ds.size * f}`);
  }
  if (ds.y.length !== ds.size * l) throw new DataError("LENGTH_MISMATCH", `${owner}: y has ${ds.y.length} values but ${ds.size} samples need ${ds.size * l}`);
  if (ds.numClasses !== undefined) {
    if (!(ds.y instanceof Int32Array)) throw new DataError("LABEL_WRONG_TYPE", `${owner}: a classification data set (numClasses ${ds.numClasses}) needs Int32Array class indices in y`);
    const k = ds.numClasses;
    const y = ds.y;
    for (let i = 0; i < y.length; i++) {
      const v = y[i]!;
      if (v < 0 || v >= k) throw new DataError("LABEL_OUT_OF_RANGE", `${owner}: label of sample ${i} is ${v}; with ${k} classes labels must be in [0, ${k - 1}]`, i);
    }
  }
}
