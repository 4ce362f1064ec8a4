import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel, LayerVariable } from "@tensorflow/tfjs-layers";
import { mixSeed, OptionsError, Rng, withRandom, type Batch, type DataSource } from "@fitloop/core";

/**
 * The fields of tfjs-layers 4.22's `BatchNormalization` this module uses (declared private there).
 * Its training-mode call updates `moving = moving - (moving - batchStat) * (1 - momentum)` with the
 * batch's mean and biased variance (`tf.moments`), imperatively, on every `apply(x, { training: true })`.
 */
/** A tfjs-layers layer (the class is not exported by name). */
type Layer = LayersModel["layers"][number];

interface BatchNormFields {
  momentum: number;
  readonly movingMean: LayerVariable;
  readonly movingVariance: LayerVariable;
}

/** The BatchNormalization layers of `model`, nested models included, in layer order. */
export function batchNormLayers(model: LayersModel): Layer[] {
  const out: Layer[] = [];
  const walk = (layers: readonly Layer[]) => {
    for (const l of layers) {
      const inner = (l as unknown as { layers?: unknown }).layers;
      if (Array.isArray(inner)) walk(inner as Layer[]);
      else if (l.getClassName() === "BatchNormalization" && l.built) out.push(l);
    }
  };
  walk(model.layers);
  return out;
}

export interface UpdateBatchNormOptions {
  /** Which epoch's order a `DataSource` yields (`source.batches({ epoch, batchIndex: 0 })`). Default 0. */
  readonly epoch?: number;
  /** Stop after this many batches (default: the whole pass). */
  readonly maxBatches?: number;
  /** Seeds the pass's randomness (dropout in training mode): the same seed gives the same statistics. */
  readonly seed?: number;
}

export interface UpdateBatchNormResult {
  /** BatchNormalization layers updated (0: the model has none, and no batch was read). */
  readonly layers: number;
  readonly batches: number;
  readonly samples: number;
}

/** What `updateBatchNorm` reads: a fitloop data source (its batches are disposed), or batches / input tensors you own. */
export type BatchNormData = DataSource | Iterable<Batch | tf.Tensor> | AsyncIterable<Batch | tf.Tensor>;

const isSource = (d: BatchNormData): d is DataSource => typeof (d as Partial<DataSource>).batches === "function";

/**
 * Recomputes every BatchNormalization layer's moving mean and variance over `data`, as PyTorch's
 * `torch.optim.swa_utils.update_bn` does: the statistics are reset, then each batch goes through the
 * model in training mode and the moving values become the plain average of the per-batch
 * statistics (momentum `(k - 1) / k` at the k-th batch: every batch counts the same, whatever its
 * size). Only the moving statistics change; dropout is active, as in PyTorch's `model.train()`.
 *
 * One difference from PyTorch: tfjs (like Keras) tracks the biased batch variance, PyTorch the
 * unbiased one (times n / (n - 1) for a batch of n); each keeps its own convention at inference.
 *
 * A `DataSource` is read from `options.epoch` (default 0) in a fresh `batches()` call, so a training
 * cursor or shuffle is not touched; its batches are disposed. Tensors or batches you pass directly
 * stay yours. If reading fails, the previous statistics are put back before the error propagates.
 */
export async function updateBatchNorm(model: LayersModel, data: BatchNormData, options: UpdateBatchNormOptions = {}): Promise<UpdateBatchNormResult> {
  checkOptions(options);
  const layers = batchNormLayers(model).map((l) => l as unknown as BatchNormFields);
  if (layers.length === 0) return { layers: 0, batches: 0, samples: 0 };
  const momenta = layers.map((l) => l.momentum);
  const previous = layers.map((l) => [l.movingMean.read().clone(), l.movingVariance.read().clone()] as const);
  const owned = isSource(data);
  const batches = owned ? data.batches({ epoch: options.epoch ?? 0, batchIndex: 0 }) : data;
  let count = 0;
  let samples = 0;
  let ok = false;
  try {
    // zeros, not PyTorch's ones for the variance: the first batch then replaces them exactly
    // (tfjs computes moving - (moving - stat) * 1, which is stat only when moving is 0)
    for (const l of layers) {
      for (const v of [l.movingMean, l.movingVariance]) {
        const zeros = tf.zerosLike(v.read());
        v.write(zeros); // the variable shares the data (tfjs counts references)
        zeros.dispose();
      }
    }
    for await (const item of batches as AsyncIterable<Batch | tf.Tensor>) {
      try {
        const xs = item instanceof tf.Tensor ? item : item.xs;
        const n = xs.shape[0] ?? 0;
        if (n === 0) continue;
        count++;
        samples += n;
        for (const l of layers) l.momentum = (count - 1) / count;
        const forward = () => tf.dispose(model.apply(xs, { training: true }) as tf.Tensor | tf.Tensor[]);
        if (options.seed === undefined) tf.tidy(forward);
        else withRandom(new Rng(mixSeed(options.seed, count)), () => tf.tidy(forward));
      } finally {
        if (owned) disposeItem(item);
      }
      if (options.maxBatches !== undefined && count >= options.maxBatches) break;
    }
    ok = true;
  } finally {
    layers.forEach((l, i) => {
      l.momentum = momenta[i]!;
      const [mean, variance] = previous[i]!;
      if (!ok) {
        l.movingMean.write(mean);
        l.movingVariance.write(variance);
      }
      tf.dispose([mean, variance]);
    });
  }
  return { layers: layers.length, batches: count, samples };
}

function disposeItem(item: unknown): void {
  if (item instanceof tf.Tensor) item.dispose();
  else if (typeof item === "object" && item !== null) for (const t of Object.values(item)) if (t instanceof tf.Tensor && !t.isDisposed) t.dispose();
}

function checkOptions(o: UpdateBatchNormOptions): void {
  const issues: { path: string; message: string }[] = [];
  if (o.epoch !== undefined && (!Number.isSafeInteger(o.epoch) || o.epoch < 0)) issues.push({ path: "epoch", message: `must be an integer >= 0, got ${String(o.epoch)}` });
  if (o.maxBatches !== undefined && (!Number.isSafeInteger(o.maxBatches) || o.maxBatches < 1)) issues.push({ path: "maxBatches", message: `must be an integer >= 1, got ${String(o.maxBatches)}` });
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) issues.push({ path: "seed", message: `must be an integer, got ${String(o.seed)}` });
  if (issues.length) throw new OptionsError("updateBatchNorm", issues);
}
