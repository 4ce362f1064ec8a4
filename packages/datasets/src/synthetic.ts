import { OptionsError, Rng, mixSeed, parseOptions } from "@fitloop/core";
import { z } from "zod";
import type { ArrayDataset } from "./dataset.js";
import { normal } from "./random.js";
import { seedSchema } from "./options.js";

/**
 * Small seeded data sets for tests and demos. Classes alternate sample by sample (never sorted),
 * and the same options give the same values on every machine.
 */

/** The most values (samples x features) a synthetic set may hold: 2^28 float32, 1 GiB. */
export const SYNTHETIC_MAX_VALUES = 2 ** 28;

const count = z.number({ message: "must be an integer >= 1" }).int({ message: "must be an integer >= 1" }).min(1, { message: "must be an integer >= 1" });
const nonNegative = z.number({ message: "must be a finite number >= 0" }).min(0, { message: "must be a finite number >= 0" });
const positive = z.number({ message: "must be a finite number > 0" }).positive({ message: "must be a finite number > 0" });

/** samples x features fits in memory (a typo like 1e9 samples is an error naming the option, not a RangeError). */
function capValues(owner: string, samples: number, features: number): void {
  if (samples * features > SYNTHETIC_MAX_VALUES) {
    throw new OptionsError(owner, [{ path: "samples", message: `${samples} samples x ${features} features is more than ${SYNTHETIC_MAX_VALUES} values (1 GiB)` }]);
  }
}

const spiralsSchema = z.strictObject({ samples: count.optional(), noise: nonNegative.optional(), turns: positive.optional(), seed: seedSchema.optional() });

/** Two interleaved spirals in 2-D (labels 0/1): not linearly separable, a classic for small MLPs. */
export function twoSpirals(options: { samples?: number; noise?: number; turns?: number; seed?: number } = {}): ArrayDataset {
  const o = parseOptions("twoSpirals", spiralsSchema, options);
  const n = o.samples ?? 400;
  if (n < 2) throw new OptionsError("twoSpirals", [{ path: "samples", message: `must be >= 2 (one per spiral), got ${n}` }]);
  capValues("twoSpirals", n, 2);
  const noise = o.noise ?? 0.05;
  const turns = o.turns ?? 1.5;
  const rng = new Rng(mixSeed(o.seed ?? 0, 0x5b1a));
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const cls = i % 2;
    const r = Math.sqrt(rng.next()); // uniform density along the arm
    const t = r * turns * 2 * Math.PI + cls * Math.PI;
    x[2 * i] = r * Math.cos(t) + noise * normal(rng);
    x[2 * i + 1] = r * Math.sin(t) + noise * normal(rng);
    y[i] = cls;
  }
  return { x, y, size: n, sampleShape: [2], labelShape: [], numClasses: 2 };
}

const blobsSchema = z.strictObject({
  samples: count.optional(),
  classes: z.number({ message: "must be an integer >= 2" }).int({ message: "must be an integer >= 2" }).min(2, { message: "must be an integer >= 2" }).optional(),
  features: count.optional(),
  spread: nonNegative.optional(),
  box: positive.optional(),
  seed: seedSchema.optional(),
});

/** Gaussian blobs: one isotropic cluster per class, centres uniform in `[-box, box]^features`. */
export function gaussianBlobs(
  options: { samples?: number; classes?: number; features?: number; spread?: number; box?: number; seed?: number } = {},
): ArrayDataset & { readonly centers: Float32Array } {
  const o = parseOptions("gaussianBlobs", blobsSchema, options);
  const n = o.samples ?? 300;
  const k = o.classes ?? 3;
  const d = o.features ?? 2;
  if (k > n) throw new OptionsError("gaussianBlobs", [{ path: "classes", message: `${k} classes need at least ${k} samples (samples is ${n}): some classes would be empty` }]);
  capValues("gaussianBlobs", n, d);
  const spread = o.spread ?? 1;
  const box = o.box ?? 5;
  const rng = new Rng(mixSeed(o.seed ?? 0, 0xb10b));
  const centers = Float32Array.from({ length: k * d }, () => (2 * rng.next() - 1) * box);
  const x = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % k;
    for (let j = 0; j < d; j++) x[i * d + j] = centers[c * d + j]! + spread * normal(rng);
    y[i] = c;
  }
  return { x, y, size: n, sampleShape: [d], labelShape: [], numClasses: k, centers };
}

const xorSchema = z.strictObject({ samples: count.optional(), noise: nonNegative.optional(), seed: seedSchema.optional() });

/** XOR: four clusters at (±1, ±1); label 1 when the signs differ. */
export function xor(options: { samples?: number; noise?: number; seed?: number } = {}): ArrayDataset {
  const o = parseOptions("xor", xorSchema, options);
  const n = o.samples ?? 200;
  if (n < 4) throw new OptionsError("xor", [{ path: "samples", message: `must be >= 4 (one per cluster), got ${n}` }]);
  capValues("xor", n, 2);
  const noise = o.noise ?? 0.2;
  const rng = new Rng(mixSeed(o.seed ?? 0, 0x0a0b));
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const a = i & 1 ? 1 : -1;
    const b = i & 2 ? 1 : -1;
    x[2 * i] = a + noise * normal(rng);
    x[2 * i + 1] = b + noise * normal(rng);
    y[i] = a === b ? 0 : 1;
  }
  return { x, y, size: n, sampleShape: [2], labelShape: [], numClasses: 2 };
}

const regressionSchema = z.strictObject({
  samples: count.optional(),
  features: count.optional(),
  noise: nonNegative.optional(),
  kind: z.enum(["linear", "sine"], { message: 'must be "linear" or "sine"' }).optional(),
  seed: seedSchema.optional(),
});

/**
 * Noisy regression: `x` uniform in `[-1, 1]^features`, `y = w.x + b + noise` (`linear`) or
 * `sin(pi * w.x) + noise` (`sine`). Returns the true `weights` and `bias` to compare a fit against.
 */
export function noisyRegression(
  options: { samples?: number; features?: number; noise?: number; kind?: "linear" | "sine"; seed?: number } = {},
): ArrayDataset & { readonly weights: Float32Array; readonly bias: number } {
  const o = parseOptions("noisyRegression", regressionSchema, options);
  const n = o.samples ?? 200;
  const d = o.features ?? 1;
  capValues("noisyRegression", n, d);
  const noise = o.noise ?? 0.1;
  const rng = new Rng(mixSeed(o.seed ?? 0, 0x7e61));
  const weights = Float32Array.from({ length: d }, () => 2 * rng.next() - 1);
  const bias = o.kind === "sine" ? 0 : 2 * rng.next() - 1;
  const x = new Float32Array(n * d);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let dot = 0;
    for (let j = 0; j < d; j++) {
      const v = 2 * rng.next() - 1;
      x[i * d + j] = v;
      dot += weights[j]! * v;
    }
    y[i] = (o.kind === "sine" ? Math.sin(Math.PI * dot) : dot + bias) + noise * normal(rng);
  }
  return { x, y, size: n, sampleShape: [d], labelShape: [], numClasses: undefined, weights, bias };
}
