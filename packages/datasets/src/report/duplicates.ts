import type { ArrayDataset } from "../dataset.js";
import { hashRow, rowWords, sameRow } from "./stats.js";

/** A set of samples with bit-identical features. */
export interface DuplicateGroup {
  readonly indices: readonly number[];
  /** The copies carry different labels: at least one of them is mislabelled. */
  readonly conflictingLabels: boolean;
}

export interface Duplicates {
  readonly groups: number;
  /** Samples beyond the first of each group (what deduplication would remove). */
  readonly extraCopies: number;
  readonly conflicting: number;
  /** The first few groups. */
  readonly examples: readonly DuplicateGroup[];
}

/** The same features in two splits: the model is evaluated on samples it trained on. */
export interface CrossSplitDuplicates {
  readonly a: string;
  readonly b: string;
  /** Samples of `b` whose features also occur in `a`. */
  readonly count: number;
  /** `[index in a, index in b]` pairs, the first few. */
  readonly examples: readonly (readonly [number, number])[];
}

/** Buckets of sample indices by row hash (collisions are resolved by exact comparison later). */
function buckets(ds: ArrayDataset): Map<number, number[]> {
  const { words, f } = rowWords(ds);
  const map = new Map<number, number[]>();
  for (let i = 0; i < ds.size; i++) {
    const h = hashRow(words, f, i);
    const list = map.get(h);
    if (list) list.push(i);
    else map.set(h, [i]);
  }
  return map;
}

const labelOf = (ds: ArrayDataset, i: number, l: number) => Array.from(ds.y.subarray(i * l, (i + 1) * l)).join(",");

export function findDuplicates(ds: ArrayDataset, maxExamples: number): Duplicates {
  const { words, f } = rowWords(ds);
  const l = ds.y.length / Math.max(ds.size, 1);
  const groups: DuplicateGroup[] = [];
  for (const list of buckets(ds).values()) {
    if (list.length < 2) continue;
    const left = [...list];
    while (left.length > 1) {
      const head = left.shift()!;
      const same = [head, ...left.filter((j) => sameRow(words, head, words, j, f))];
      if (same.length > 1) {
        const labels = new Set(same.map((i) => labelOf(ds, i, l)));
        groups.push({ indices: same, conflictingLabels: labels.size > 1 });
      }
      for (const j of same) if (left.includes(j)) left.splice(left.indexOf(j), 1);
    }
  }
  groups.sort((a, b) => a.indices[0]! - b.indices[0]!);
  return {
    groups: groups.length,
    extraCopies: groups.reduce((n, g) => n + g.indices.length - 1, 0),
    conflicting: groups.filter((g) => g.conflictingLabels).length,
    examples: groups.slice(0, maxExamples),
  };
}

export function crossSplitDuplicates(aName: string, a: ArrayDataset, bName: string, b: ArrayDataset, maxExamples: number): CrossSplitDuplicates {
  const A = rowWords(a);
  const B = rowWords(b);
  const map = buckets(a);
  let count = 0;
  const examples: [number, number][] = [];
  if (A.f === B.f) {
    for (let j = 0; j < b.size; j++) {
      const hit = map.get(hashRow(B.words, B.f, j))?.find((i) => sameRow(A.words, i, B.words, j, A.f));
      if (hit === undefined) continue;
      count++;
      if (examples.length < maxExamples) examples.push([hit, j]);
    }
  }
  return { a: aName, b: bName, count, examples };
}
