import { parseOptions } from "@fitloop/core";
import { z } from "zod";
import type { BatchTransform, HostBatch } from "../batch.js";
import { beta, permutation } from "../random.js";
import { needClasses, needSoftLabels } from "./labels.js";
import { dimsResolver, imageDims, imageShapeSchema } from "./shape.js";

export interface MixUpOptions {
  /** Beta(alpha, alpha) draws each sample's mixing weight. Default 0.4. */
  alpha?: number;
}

const alphaMessage = "must be a number > 0 (the Beta(alpha, alpha) parameter; 0.2-1 is usual)";
const alphaSchema = z.number({ message: alphaMessage }).positive({ message: alphaMessage }).optional();
const mixUpSchema = z.strictObject({ alpha: alphaSchema });

/**
 * MixUp (Zhang et al. 2018): each sample is blended with a random partner from the same batch,
 * `x = l*x_i + (1-l)*x_j`, and its one-hot label likewise, with `l ~ Beta(alpha, alpha)` per sample.
 * Labels become soft rows of `numClasses`: train with `categoricalCrossentropy`.
 */
export function mixUp(options: MixUpOptions = {}): BatchTransform {
  const alpha = parseOptions("mixUp", mixUpSchema, options).alpha ?? 0.4;
  return {
    name: "mixUp",
    softLabels: true,
    check: (info) => needClasses("mixUp", info),
    apply(batch, { rng, numClasses }) {
      needSoftLabels("mixUp", batch, numClasses);
      const partner = permutation(rng, batch.size);
      const lambdas = Float32Array.from({ length: batch.size }, () => beta(rng, alpha, alpha));
      return blend(batch, partner, lambdas, (out, src, s, j, l, f) => {
        for (let k = 0; k < f; k++) out[s * f + k] = l * src[s * f + k]! + (1 - l) * src[j * f + k]!;
      });
    },
  };
}

export interface CutMixOptions {
  /** Beta(alpha, alpha) draws the kept area fraction. Default 1. */
  alpha?: number;
  imageShape?: number[];
}

const cutMixSchema = z.strictObject({ alpha: alphaSchema, imageShape: imageShapeSchema });

/**
 * CutMix (Yun et al. 2019): a random box of each image is replaced by the same box of a partner
 * image; the label is mixed by the exact pasted area (after clipping the box to the image).
 */
export function cutMix(options: CutMixOptions = {}): BatchTransform {
  const o = parseOptions("cutMix", cutMixSchema, options);
  const alpha = o.alpha ?? 1;
  const dimsOf = dimsResolver("cutMix", o.imageShape);
  return {
    name: "cutMix",
    softLabels: true,
    check(info) {
      needClasses("cutMix", info);
      imageDims("cutMix", info.sampleShape, o.imageShape);
    },
    apply(batch, { rng, numClasses }) {
      needSoftLabels("cutMix", batch, numClasses);
      const { h, w, c } = dimsOf(batch.sampleShape);
      const partner = permutation(rng, batch.size);
      const boxes = Array.from({ length: batch.size }, () => {
        const cut = Math.sqrt(1 - beta(rng, alpha, alpha));
        const bh = Math.floor(h * cut);
        const bw = Math.floor(w * cut);
        const cy = rng.int(h);
        const cx = rng.int(w);
        const y0 = Math.max(0, cy - (bh >> 1));
        const y1 = Math.min(h, cy + bh - (bh >> 1));
        const x0 = Math.max(0, cx - (bw >> 1));
        const x1 = Math.min(w, cx + bw - (bw >> 1));
        return { y0, y1, x0, x1 };
      });
      // The kept fraction of the own image is what the label weight must be.
      const lambdas = Float32Array.from(boxes, (b) => 1 - ((b.y1 - b.y0) * (b.x1 - b.x0)) / (h * w));
      return blend(batch, partner, lambdas, (out, src, s, j, _l, f) => {
        const { y0, y1, x0, x1 } = boxes[s]!;
        for (let r = y0; r < y1; r++) out.set(src.subarray(j * f + (r * w + x0) * c, j * f + (r * w + x1) * c), s * f + (r * w + x0) * c);
      });
    },
  };
}

type Mixer = (out: Float32Array, src: Float32Array, s: number, j: number, lambda: number, f: number) => void;

/** Mixes features with `mix` (reading the untouched originals) and labels with the weights `lambdas`. */
function blend(batch: HostBatch, partner: Int32Array, lambdas: Float32Array, mix: Mixer): HostBatch {
  const n = batch.size;
  const f = batch.x.length / n;
  const src = batch.x.slice();
  const out = batch.x;
  const y = batch.y as Float32Array; // one-hot: the loader converts before soft-label transforms
  const ySrc = y.slice();
  const k = y.length / n;
  for (let s = 0; s < n; s++) {
    const j = partner[s]!;
    const l = lambdas[s]!;
    mix(out, src, s, j, l, f);
    for (let q = 0; q < k; q++) y[s * k + q] = l * ySrc[s * k + q]! + (1 - l) * ySrc[j * k + q]!;
  }
  return batch;
}
