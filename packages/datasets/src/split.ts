import { DataError, OptionsError, Rng, mixSeed, parseOptions } from "@fitloop/core";
import { z } from "zod";
import { checkStructure } from "./options.js";
import { subset, type ArrayDataset } from "./dataset.js";
import { permutation } from "./random.js";
import { checkSeed } from "./validate.js";

export interface SplitOptions<K extends string> {
  /** Fraction of the data per split, e.g. `{ train: 0.8, validation: 0.1, test: 0.1 }`; must sum to 1. */
  fractions: Record<K, number>;
  /** Seed of the assignment. Default 0. */
  seed?: number;
  /** Keep each class's share in every split (default true for class data; ignored for regression). */
  stratify?: boolean;
}

export type Splits<K extends string> = Record<K, ArrayDataset> & {
  /** Data set indices of each split, sorted (for reports and reproducibility checks). */
  readonly indices: Record<K, Int32Array>;
};

/**
 * Seeded train / validation / test split. Split sizes are the fractions of the whole data set
 * (largest-remainder rounding, so they sum to its size). Stratified by class (default for class
 * data): every split holds each class in proportion, within one sample. A split that ends up
 * empty is a `DataError` (`EMPTY_SPLIT`) naming it.
 */
export function splitDataset<K extends string>(ds: ArrayDataset, options: SplitOptions<K>): Splits<K> {
  checkStructure("splitDataset", ds);
  parseOptions("splitDataset", splitSchema, options);
  const names = Object.keys(options.fractions) as K[];
  const fractions = names.map((k) => options.fractions[k]);
  const issues: { path: string; message: string }[] = [];
  if (names.length === 0) issues.push({ path: "fractions", message: "must name at least one split" });
  fractions.forEach((f, i) => {
    if (typeof f !== "number" || !(f >= 0 && f <= 1)) issues.push({ path: `fractions.${names[i]}`, message: `must be a number in [0, 1], got ${String(f)}` });
  });
  const total = fractions.reduce((a, b) => a + b, 0);
  if (issues.length === 0 && Math.abs(total - 1) > 1e-6) issues.push({ path: "fractions", message: `must sum to 1, got ${total}` });
  if (issues.length) throw new OptionsError("splitDataset", issues);
  const seed = checkSeed("splitDataset", options.seed ?? 0);

  const stratify = (options.stratify ?? true) && ds.numClasses !== undefined;
  const order = stratify ? stratifiedOrder(ds, seed) : permutation(new Rng(mixSeed(seed, 0x5b17)), ds.size);
  // Cut the global order by the fractions: sizes are exact, and each class is spread evenly over it.
  const counts = apportion(ds.size, fractions);
  const parts: Int32Array[] = [];
  let start = 0;
  for (const c of counts) {
    parts.push(order.slice(start, start + c));
    start += c;
  }

  const out = { indices: {} } as { indices: Record<K, Int32Array> } & Record<K, ArrayDataset>;
  names.forEach((name, s) => {
    const idx = parts[s]!.sort();
    if (idx.length === 0) {
      throw new DataError("EMPTY_SPLIT", `split "${name}" is empty: ${(fractions[s]! * 100).toFixed(1)}% of ${ds.size} samples rounds to 0; use a larger fraction or more data`);
    }
    out.indices[name] = idx;
    (out as Record<K, ArrayDataset>)[name] = subset(ds, idx);
  });
  return out as Splits<K>;
}

const splitSchema = z.strictObject({
  fractions: z.custom<Record<string, number>>((v) => typeof v === "object" && v !== null && !Array.isArray(v), {
    message: "must be an object of split names and fractions, e.g. { train: 0.8, validation: 0.2 }",
  }),
  seed: z.unknown().optional(),
  stratify: z.boolean({ message: "must be a boolean" }).optional(),
});

/**
 * All indices ordered so that every class is spread evenly: each class is shuffled, its member of
 * rank r gets the key (r + 0.5) / classSize, and samples are sorted by key (ties broken at random).
 * Any prefix of this order then holds each class in proportion, within one sample.
 */
function stratifiedOrder(ds: ArrayDataset, seed: number): Int32Array {
  const rng = new Rng(mixSeed(seed, 0x5b17));
  const members: number[][] = Array.from({ length: ds.numClasses! }, () => []);
  for (let i = 0; i < ds.size; i++) members[ds.y[i]!]!.push(i);
  const key = new Float64Array(ds.size);
  const tie = new Uint32Array(ds.size);
  for (const list of members) {
    const perm = permutation(rng, list.length);
    perm.forEach((p, r) => {
      const i = list[p]!;
      key[i] = (r + 0.5) / list.length;
      tie[i] = rng.nextUint32();
    });
  }
  return Int32Array.from({ length: ds.size }, (_, i) => i).sort((a, b) => key[a]! - key[b]! || tie[a]! - tie[b]! || a - b);
}

/** Splits `n` items by `fractions` into integers that sum to `n` (largest remainder method). */
export function apportion(n: number, fractions: readonly number[]): number[] {
  const exact = fractions.map((f) => f * n);
  const counts = exact.map(Math.floor);
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let j = 0; left > 0; j = (j + 1) % order.length, left--) counts[order[j]!.i]!++;
  return counts;
}
