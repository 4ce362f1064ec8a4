import { OptionsError } from "@fitloop/core";
import { z } from "zod";
import { sizeOf } from "../validate.js";

/** Height, width and channels of one image (channels last). */
export interface ImageDims {
  readonly h: number;
  readonly w: number;
  readonly c: number;
}

export const imageShapeSchema = z
  .array(z.number().int().min(1))
  .min(2)
  .max(3, { message: "must be [height, width] or [height, width, channels]" })
  .optional();

/**
 * The image layout of a sample: `[H, W]`, `[H, W, C]`, or a flat sample read as `imageShape`
 * (e.g. `[784]` as `[28, 28, 1]`). Throws an `OptionsError` naming the transform otherwise.
 */
export function imageDims(owner: string, sampleShape: readonly number[], imageShape: readonly number[] | undefined): ImageDims {
  const shape = imageShape ?? sampleShape;
  if (imageShape && sizeOf(imageShape) !== sizeOf(sampleShape)) {
    throw new OptionsError(owner, [{ path: "imageShape", message: `[${imageShape.join(", ")}] has ${sizeOf(imageShape)} values but a sample [${sampleShape.join(", ")}] has ${sizeOf(sampleShape)}` }]);
  }
  if (shape.length === 2) return { h: shape[0]!, w: shape[1]!, c: 1 };
  if (shape.length === 3) return { h: shape[0]!, w: shape[1]!, c: shape[2]! };
  throw new OptionsError(owner, [
    { path: "imageShape", message: `samples of shape [${sampleShape.join(", ")}] are not images; give imageShape ([height, width] or [height, width, channels], channels last)` },
  ]);
}

/**
 * Caches the dims per sample shape; `validate` checks options against the image size the first time
 * a shape is seen (a transform used without a loader learns the size from its first batch).
 */
export function dimsResolver(owner: string, imageShape: readonly number[] | undefined, validate?: (dims: ImageDims) => void): (sampleShape: readonly number[]) => ImageDims {
  let last: { shape: readonly number[]; dims: ImageDims } | undefined;
  return (sampleShape) => {
    if (last?.shape !== sampleShape) {
      const dims = imageDims(owner, sampleShape, imageShape);
      validate?.(dims); // options that depend on the image size, checked when the size is first known
      last = { shape: sampleShape, dims };
    }
    return last.dims;
  };
}
