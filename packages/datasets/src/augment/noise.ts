import { parseOptions } from "@fitloop/core";
import { z } from "zod";
import type { BatchTransform } from "../batch.js";
import { addNormal, noiseWorkspace } from "../random.js";
import { seedLanes } from "../simd/normal.js";

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
      step(ctx) {
        // the draws `addNormal` makes first: the generators' state from sixteen words
        const state = new Int32Array(16);
        seedLanes({ state }, () => ctx.rng.nextUint32());
        return { kind: "noise", std: o.std, lo, hi, state };
      },
    },
  };
}
