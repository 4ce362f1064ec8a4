import type * as tf from "@tensorflow/tfjs-core";

/** Padding as the conv kernels take it. */
export type Pad = "same" | "valid" | number | tf.backend_util.ExplicitPadding;

/** One convolution geometry of the kernel grids: x [b, h, w, ci], filter [fh, fw, ci, co]. */
export interface ConvCase {
  b: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  fh: number;
  fw: number;
  s: number | [number, number];
  d?: number;
  pad: Pad;
  rounding?: "floor" | "round" | "ceil";
}
