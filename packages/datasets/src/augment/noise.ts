import { parseOptions } from "@fitloop/core";
import { z } from "zod";
import type { BatchTransform } from "../batch.js";
import { addNormal, noiseSeed, noiseWorkspace } from "../random.js";
import { chunkStates } from "../simd/normal.js";

export interface GaussianNoiseOptions {
  /** Standard deviation of the noise, in the units of the features. */
  std: number;
  /** Clip the result to `[min, max]` (e.g. `[0, 1]` for pixel intensities). */
  clip?: [number, number];
}

const stdMessage = "must be a finite number >= 0 (the standard deviation, in feature units)";
const noiseSchema = z.strictObject({
  std: z.number({ message: stdMessage }).min(0, { message: stdMessage }),
  clip: z
    .tuple([z.number({ message: "must be [min, max] of finite numbers" }), z.number({ message: "must be [min, max] of finite numbers" })], { message: "must be [min, max]" })
    .refine(([lo, hi]) => lo <= hi, { message: "must be [min, max] with min <= max" })
    .optional(),
});

/** Adds independent N(0, std²) noise to every feature. */
export function gaussianNoise(options: GaussianNoiseOptions): BatchTransform {
  const o = parseOptions("gaussianNoise", noiseSchema, options);
  const [lo, hi] = o.clip ?? [-Infinity, Infinity];
  return {
    name: "gaussianNoise",
    apply(batch, { rng }) {
      addNormal(rng, batch.x, o.std, lo, hi);
      return batch;
    },
    workspace: noiseWorkspace,
    kernel: {
      kind: "noise",
      step(ctx, size, sampleShape) {
        // what `addNormal` draws: sixteen seed words, then each chunk's generators from them
        const states = chunkStates(noiseSeed(ctx.rng), size * sampleShape.reduce((a, b) => a * b, 1));
        return { kind: "noise", std: o.std, lo, hi, states };
      },
    },
  };
}
