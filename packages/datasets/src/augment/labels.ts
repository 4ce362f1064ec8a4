import { OptionsError, parseOptions } from "@fitloop/core";
import { z } from "zod";
import type { BatchTransform, TransformInfo } from "../batch.js";

/** Soft-label transforms need class data; the loader turns class indices into one-hot rows first. */
export function needClasses(owner: string, info: TransformInfo): void {
  if (info.numClasses === undefined || info.numClasses < 2) {
    throw new OptionsError(owner, [{ path: "(data)", message: "needs class labels with at least 2 classes (the data set has no numClasses)" }]);
  }
}

export interface LabelSmoothingOptions {
  /** Mass moved from the target class to all classes uniformly. Default 0.1. */
  epsilon?: number;
}

const smoothingSchema = z.strictObject({ epsilon: z.number().min(0).max(1).optional() });

/** `y = (1 - epsilon) * y + epsilon / K` on one-hot (or MixUp/CutMix soft) labels; use a categorical loss. */
export function labelSmoothing(options: LabelSmoothingOptions = {}): BatchTransform {
  const eps = parseOptions("labelSmoothing", smoothingSchema, options).epsilon ?? 0.1;
  return {
    name: "labelSmoothing",
    softLabels: true,
    check: (info) => needClasses("labelSmoothing", info),
    apply(batch, { numClasses }) {
      const y = batch.y;
      const add = eps / numClasses!;
      for (let k = 0; k < y.length; k++) y[k] = y[k]! * (1 - eps) + add;
      return batch;
    },
  };
}
