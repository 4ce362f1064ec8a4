import { DataError, OptionsError, parseOptions } from "@fitloop/core";
import { z } from "zod";
import type { BatchTransform, HostBatch } from "../batch.js";

/** Soft-label transforms need class data; the loader turns class indices into one-hot rows first. */
export function needClasses(owner: string, info: { readonly numClasses: number | undefined }): void {
  if (info.numClasses === undefined || info.numClasses < 2) {
    const got = info.numClasses === undefined ? "the data set has no numClasses" : `the data set has ${info.numClasses} class`;
    throw new OptionsError(owner, [{ path: "(data)", message: `needs class labels with at least 2 classes (${got})` }]);
  }
}

/**
 * At `apply`: the labels must be one-hot or soft rows `[n, K]` (float). A `DataLoader` or `streamData`
 * converts class indices first; a transform applied by hand to class indices would silently write
 * fractions into an `Int32Array`.
 */
export function needSoftLabels(owner: string, batch: HostBatch, numClasses: number | undefined): void {
  needClasses(owner, { numClasses });
  if (!(batch.y instanceof Float32Array) || batch.labelShape.length !== 1 || batch.labelShape[0] !== numClasses) {
    throw new DataError(
      "LABELS_NOT_ONE_HOT",
      `${owner}: needs one-hot labels [n, ${numClasses}] (float32), got ${batch.y instanceof Int32Array ? "class indices (Int32Array)" : `labels of shape [${batch.labelShape.join(", ")}]`}; use it in a DataLoader or streamData (they convert), or call toOneHot first`,
    );
  }
}

export interface LabelSmoothingOptions {
  /** Mass moved from the target class to all classes uniformly. Default 0.1. */
  epsilon?: number;
}

const epsilonMessage = "must be in [0, 1): the share of the target moved to all classes (1 would erase the labels)";
const smoothingSchema = z.strictObject({ epsilon: z.number({ message: epsilonMessage }).min(0, { message: epsilonMessage }).lt(1, { message: epsilonMessage }).optional() });

/** `y = (1 - epsilon) * y + epsilon / K` on one-hot (or MixUp/CutMix soft) labels; use a categorical loss. */
export function labelSmoothing(options: LabelSmoothingOptions = {}): BatchTransform {
  const eps = parseOptions("labelSmoothing", smoothingSchema, options).epsilon ?? 0.1;
  return {
    name: "labelSmoothing",
    softLabels: true,
    check: (info) => needClasses("labelSmoothing", info),
    apply(batch, { numClasses }) {
      needSoftLabels("labelSmoothing", batch, numClasses);
      const y = batch.y;
      const add = eps / numClasses!;
      for (let k = 0; k < y.length; k++) y[k] = y[k]! * (1 - eps) + add;
      return batch;
    },
  };
}
