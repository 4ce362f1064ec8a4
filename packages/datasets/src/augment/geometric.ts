import { OptionsError, parseOptions } from "@fitloop/core";
import { z } from "zod";
import { gatherBatch, type BatchTransform, type HostBatch } from "../batch.js";
import { dimsResolver, imageDims, imageShapeSchema, type ImageDims } from "./shape.js";

export interface RandomCropOptions {
  /** Pad every side by this many pixels, then crop a random window of the original size. */
  padding: number;
  /** Value of the padding. Default 0 (background of MNIST-like images before normalisation). */
  fill?: number;
  /** Image layout when samples are flat, e.g. `[28, 28, 1]` for `[784]`. */
  imageShape?: number[];
}

const pixels = (what: string) => z.number({ message: `must be an integer >= 0 (${what})` }).int({ message: `must be an integer >= 0 (${what})` }).min(0, { message: `must be an integer >= 0 (${what})` });
const fillSchema = z.number({ message: "must be a finite number" }).optional();

const cropSchema = z.strictObject({ padding: pixels("pixels of padding per side"), fill: fillSchema, imageShape: imageShapeSchema });

/**
 * Random crop with padding (the CIFAR/MNIST recipe): equivalent to shifting each image by an
 * integer offset in `[-padding, padding]` on both axes and filling the uncovered border.
 */
export function randomCrop(options: RandomCropOptions): BatchTransform {
  const o = parseOptions("randomCrop", cropSchema, options);
  return shiftTransform("randomCrop", "padding", o.padding, o.fill ?? 0, o.imageShape);
}

export interface RandomShiftOptions {
  /** Largest shift in pixels, on each axis. */
  maxShift: number;
  fill?: number;
  imageShape?: number[];
}

const shiftSchema = z.strictObject({ maxShift: pixels("pixels per axis"), fill: fillSchema, imageShape: imageShapeSchema });

/** Shifts each image by a random integer offset in `[-maxShift, maxShift]` per axis (= `randomCrop({padding: maxShift})`). */
export function randomShift(options: RandomShiftOptions): BatchTransform {
  const o = parseOptions("randomShift", shiftSchema, options);
  return shiftTransform("randomShift", "maxShift", o.maxShift, o.fill ?? 0, o.imageShape);
}

/**
 * A shift of `min(h, w)` pixels or more moves the whole image out: a blank sample that keeps its
 * label. Refused when the image size is first known: when a loader is built (`check`), or at the
 * first batch when the transform is applied on its own.
 */
function shiftFits(name: string, option: string, max: number): (d: ImageDims) => void {
  return ({ h, w }) => {
    const side = Math.min(h, w);
    if (max < side) return;
    throw new OptionsError(name, [
      {
        path: option,
        message: `${max} is not smaller than the image (${h} x ${w} pixels): a shift of ${side} or more leaves none of the image, a blank sample that keeps its label; use ${option} <= ${side - 1} (2-4 for 28 x 28 digits)`,
      },
    ]);
  };
}

function shiftTransform(name: string, option: string, max: number, fill: number, imageShape: readonly number[] | undefined): BatchTransform {
  const fits = shiftFits(name, option, max);
  const dimsOf = dimsResolver(name, imageShape, fits);
  return {
    name,
    check: (info) => fits(imageDims(name, info.sampleShape, imageShape)),
    apply(batch, { rng }) {
      const d = dimsOf(batch.sampleShape);
      const f = d.h * d.w * d.c;
      for (let s = 0; s < batch.size; s++) {
        const dy = rng.int(2 * max + 1) - max;
        const dx = rng.int(2 * max + 1) - max;
        if (dy !== 0 || dx !== 0) shiftImage(batch.x, s * f, d, dy, dx, fill);
      }
      return batch;
    },
    // The draws of `gatherApply`, for a kernel that makes the batch (DataLoader on wasm).
    kernel: {
      kind: "shift",
      step({ rng }, size, sampleShape) {
        const { h, w, c } = dimsOf(sampleShape);
        const shifts = new Int32Array(2 * size);
        for (let s = 0; s < 2 * size; s++) shifts[s] = rng.int(2 * max + 1) - max;
        return { kind: "shift", h, w, c, fill, shifts };
      },
    },
    // Fused with the gather: each image is copied once, already moved (same draws, same values).
    gatherApply(ds, indices, { rng }, into) {
      const d = dimsOf(ds.sampleShape);
      const { h, w, c } = d;
      const f = h * w * c;
      return gatherBatch(ds, indices, into, (x, base, src, from) => {
        const dy = rng.int(2 * max + 1) - max;
        const dx = rng.int(2 * max + 1) - max;
        if (Math.abs(dy) >= h || Math.abs(dx) >= w) {
          x.fill(fill, base, base + f);
          return;
        }
        const offset = (dy * w + dx) * c;
        if (offset >= 0) x.set(src.subarray(from, from + f - offset), base + offset);
        else x.set(src.subarray(from - offset, from + f), base);
        fillUncovered(x, base, d, dy, dx, fill);
      });
    },
  };
}

/**
 * Moves the image at `x[base, base + h*w*c)` by (dy, dx) in place. In the flat layout that is one
 * move of the whole image by `(dy*w + dx)*c` values (`copyWithin` is a memmove), after which the
 * uncovered rows and columns (including the pixels that wrapped around from the neighbouring row)
 * get the fill value: a few builtin calls per image instead of a copy and a call per row.
 */
function shiftImage(x: Float32Array, base: number, { h, w, c }: ImageDims, dy: number, dx: number, fill: number): void {
  const f = h * w * c;
  if (Math.abs(dy) >= h || Math.abs(dx) >= w) {
    x.fill(fill, base, base + f);
    return;
  }
  const offset = (dy * w + dx) * c;
  if (offset > 0) x.copyWithin(base + offset, base, base + f - offset);
  else if (offset < 0) x.copyWithin(base, base - offset, base + f);
  fillUncovered(x, base, { h, w, c }, dy, dx, fill);
}

/**
 * After a move by `(dy*w + dx)*c` values, fills the rows and columns a shift by (dy, dx) uncovers:
 * every value the move did not write, and the ones that wrapped around from the neighbouring row.
 */
function fillUncovered(x: Float32Array, base: number, { h, w, c }: ImageDims, dy: number, dx: number, fill: number): void {
  const f = h * w * c;
  const row = w * c;
  if (dy > 0) x.fill(fill, base, base + dy * row);
  else if (dy < 0) x.fill(fill, base + (h + dy) * row, base + f);
  if (dx !== 0) {
    const n = Math.abs(dx) * c; // uncovered values at the start (dx > 0) or end (dx < 0) of each row
    const start = base + (dx > 0 ? 0 : row - n);
    for (let r = Math.max(0, dy), end = Math.min(h, h + dy); r < end; r++) {
      const o = start + r * row;
      for (let k = 0; k < n; k++) x[o + k] = fill;
    }
  }
}

export interface RandomRotationOptions {
  /** Largest rotation in degrees, both directions (small: 10-15 for digits). */
  maxDegrees: number;
  fill?: number;
  imageShape?: number[];
}

const degrees = "must be a number of degrees in [0, 180]";
const rotationSchema = z.strictObject({
  maxDegrees: z.number({ message: degrees }).min(0, { message: degrees }).max(180, { message: degrees }),
  fill: fillSchema,
  imageShape: imageShapeSchema,
});

/** Rotates each image about its centre by a random angle in `[-maxDegrees, maxDegrees]` (bilinear). */
export function randomRotation(options: RandomRotationOptions): BatchTransform {
  const o = parseOptions("randomRotation", rotationSchema, options);
  const dimsOf = dimsResolver("randomRotation", o.imageShape);
  const fill = o.fill ?? 0;
  let scratch = new Float32Array(0);
  return {
    name: "randomRotation",
    check: (info) => void imageDims("randomRotation", info.sampleShape, o.imageShape),
    apply(batch, { rng }) {
      const d = dimsOf(batch.sampleShape);
      const f = d.h * d.w * d.c;
      if (scratch.length !== f) scratch = new Float32Array(f);
      for (let s = 0; s < batch.size; s++) {
        const theta = ((2 * rng.next() - 1) * o.maxDegrees * Math.PI) / 180;
        const img = batch.x.subarray(s * f, (s + 1) * f);
        scratch.set(img);
        rotateInto(scratch, img, d, theta, fill);
      }
      return batch;
    },
  };
}

/** Inverse mapping: each output pixel samples the source at the point rotated by -theta. */
function rotateInto(src: Float32Array, out: Float32Array, { h, w, c }: ImageDims, theta: number, fill: number): void {
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  const at = (y: number, x: number, ch: number) => (y < 0 || y >= h || x < 0 || x >= w ? fill : src[(y * w + x) * c + ch]!);
  for (let r = 0; r < h; r++) {
    for (let col = 0; col < w; col++) {
      const y = cos * (r - cy) - sin * (col - cx) + cy;
      const x = sin * (r - cy) + cos * (col - cx) + cx;
      const y0 = Math.floor(y);
      const x0 = Math.floor(x);
      const fy = y - y0;
      const fx = x - x0;
      for (let ch = 0; ch < c; ch++) {
        const top = at(y0, x0, ch) * (1 - fx) + at(y0, x0 + 1, ch) * fx;
        const bottom = at(y0 + 1, x0, ch) * (1 - fx) + at(y0 + 1, x0 + 1, ch) * fx;
        out[(r * w + col) * c + ch] = top * (1 - fy) + bottom * fy;
      }
    }
  }
}

export interface HorizontalFlipOptions {
  /** Probability of flipping each image. Default 0.5. */
  p?: number;
  /** Say that a mirrored sample keeps its label (photos of cats): silences the warning. */
  labelsFlipInvariant?: boolean;
  /** Where the warning goes. Default `console.warn`. */
  warn?: (message: string) => void;
  imageShape?: number[];
}

const flipSchema = z.strictObject({
  p: z.number({ message: "must be a probability in [0, 1]" }).min(0, { message: "must be a probability in [0, 1]" }).max(1, { message: "must be a probability in [0, 1]" }).optional(),
  labelsFlipInvariant: z.boolean({ message: "must be a boolean" }).optional(),
  warn: z.custom<(message: string) => void>((v) => typeof v === "function", { message: "must be a function" }).optional(),
  imageShape: imageShapeSchema,
});

export const FLIP_WARNING =
  "horizontalFlip: mirroring can change what a sample is (b/d, p/q, 2/S, and a mirrored 6 or 9 is no longer a clean digit), so the label may become wrong. Use it for data whose classes are mirror-symmetric; pass { labelsFlipInvariant: true } to confirm and silence this warning.";

/** Mirrors images left-right with probability `p`. Opt-in: it warns unless told the labels survive a flip. */
export function horizontalFlip(options: HorizontalFlipOptions = {}): BatchTransform {
  const o = parseOptions("horizontalFlip", flipSchema, options);
  if (!o.labelsFlipInvariant) (o.warn ?? console.warn)(FLIP_WARNING);
  const p = o.p ?? 0.5;
  const dimsOf = dimsResolver("horizontalFlip", o.imageShape);
  return {
    name: "horizontalFlip",
    check: (info) => void imageDims("horizontalFlip", info.sampleShape, o.imageShape),
    apply(batch: HostBatch, { rng }) {
      const { h, w, c } = dimsOf(batch.sampleShape);
      const f = h * w * c;
      for (let s = 0; s < batch.size; s++) {
        if (rng.next() >= p) continue;
        const img = batch.x.subarray(s * f, (s + 1) * f);
        for (let r = 0; r < h; r++) {
          for (let a = 0, b = w - 1; a < b; a++, b--) {
            for (let ch = 0; ch < c; ch++) {
              const i = (r * w + a) * c + ch;
              const j = (r * w + b) * c + ch;
              const t = img[i]!;
              img[i] = img[j]!;
              img[j] = t;
            }
          }
        }
      }
      return batch;
    },
  };
}
