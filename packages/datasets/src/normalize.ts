import * as tf from "@tensorflow/tfjs-core";
import { BaseCallback, DataError, OptionsError, StateError, parseOptions, type StateDict } from "@fitloop/core";
import { z } from "zod";
import type { BatchTransform } from "./batch.js";
import type { ArrayDataset } from "./dataset.js";
import { checkStructure } from "./options.js";
import { parseNormalizerState } from "./normalize-state.js";
import { checkFinite, sizeOf } from "./validate.js";

/** `feature`: one mean/std per feature; `channel`: per last axis (RGB); `global`: one for all values. */
export type NormalizePer = "feature" | "channel" | "global";

export interface NormalizerOptions {
  per?: NormalizePer;
  /** A std below this is treated as 1 (constant features are centred, not blown up). Default 1e-6. */
  epsilon?: number;
  /** Key of the statistics in a checkpoint. Default "normalizer". */
  stateKey?: string;
}

const schema = z.strictObject({
  per: z.enum(["feature", "channel", "global"]).optional(),
  epsilon: z.number().min(0).optional(),
  stateKey: z
    .string({ message: "must be a non-empty string" })
    .min(1, { message: "must be a non-empty string" })
    .refine((k) => !["__proto__", "constructor", "prototype"].includes(k), { message: "must not be __proto__, constructor or prototype (reserved object keys)" })
    .optional(),
});

interface Stats {
  readonly sampleShape: readonly number[];
  readonly mean: Float32Array;
  readonly std: Float32Array;
  readonly count: number;
  /** Stats expanded to one value per feature, for the apply loops. */
  readonly meanFull: Float32Array;
  readonly invStdFull: Float32Array;
}

/**
 * Standardisation fitted on the training split only, then applied to every split (fitting on all
 * the data leaks validation statistics into training). It is a stateful fitloop plugin: put it in
 * the trainer's `callbacks` and its statistics are saved with every checkpoint and restored on resume.
 */
export class Normalizer extends BaseCallback {
  readonly stateKey: string;
  readonly per: NormalizePer;
  readonly epsilon: number;
  private stats: Stats | undefined;

  constructor(options: NormalizerOptions = {}) {
    super();
    const o = parseOptions("Normalizer", schema, options);
    this.per = o.per ?? "feature";
    this.epsilon = o.epsilon ?? 1e-6;
    this.stateKey = o.stateKey ?? "normalizer";
  }

  /** Unique per run, like the state key (two normalizers, e.g. inputs and targets, can coexist). */
  override get name(): string {
    return this.stateKey === "normalizer" ? "Normalizer" : `Normalizer(${this.stateKey})`;
  }

  get fitted(): boolean {
    return this.stats !== undefined;
  }
  /** Fitted means (per feature, channel or one global value). */
  get mean(): Float32Array {
    return this.needStats().mean;
  }
  get std(): Float32Array {
    return this.needStats().std;
  }
  /** Number of samples the statistics came from. */
  get count(): number {
    return this.needStats().count;
  }

  /** Computes mean and (population) std over `train` in float64. Pass the training split only. */
  fit(train: ArrayDataset): this {
    checkStructure("Normalizer.fit", train);
    if (train.size === 0) throw new DataError("EMPTY_DATA", "Normalizer.fit: the training split has 0 samples");
    const f = sizeOf(train.sampleShape);
    // NaN/Inf would make every statistic NaN and every normalised batch NaN: name the sample instead
    checkFinite(train.x, f, "input");
    const groups = this.groupsOf(train.sampleShape);
    const group = this.groupIndex(f, groups);
    const sum = new Float64Array(groups);
    const sq = new Float64Array(groups);
    const x = train.x;
    for (let base = 0; base < x.length; base += f) for (let k = 0; k < f; k++) sum[group[k]!]! += x[base + k]!;
    const per = (train.size * f) / groups;
    const mean = Float64Array.from(sum, (v) => v / per);
    // Second pass over deviations: one-pass sum of squares loses precision on large means (raw pixels).
    for (let base = 0; base < x.length; base += f) {
      for (let k = 0; k < f; k++) {
        const d = x[base + k]! - mean[group[k]!]!;
        sq[group[k]!]! += d * d;
      }
    }
    const std = Float64Array.from(sq, (s) => Math.sqrt(s / per));
    // finite float32 inputs give a finite float32 mean and std (std <= half the range <= float32 max)
    this.setStats(train.sampleShape, Float32Array.from(mean), Float32Array.from(std), train.size);
    return this;
  }

  /** A normalised copy of `ds` (any split). */
  apply(ds: ArrayDataset): ArrayDataset {
    checkStructure("Normalizer.apply", ds);
    const x = ds.x.slice();
    this.normalizeInPlace(x, ds.sampleShape);
    return { ...ds, x };
  }

  /** As a loader transform: place it after pixel-space augmentations (noise, crops). */
  transform(): BatchTransform {
    return {
      name: "normalize",
      // Checked against the loader's data when fitted; an unfitted one may be restored from a checkpoint before fit() starts.
      check: (info) => {
        if (this.stats && sizeOf(info.sampleShape) !== this.stats.meanFull.length) throw this.shapeMismatch(info.sampleShape);
      },
      apply: (batch) => (this.normalizeInPlace(batch.x, batch.sampleShape), batch),
      // the same arithmetic in a backend kernel (DataLoader on wasm): float64, rounded once to float32
      kernel: {
        kind: "normalize",
        step: (_ctx, _size, sampleShape) => {
          const s = this.needStats();
          if (sizeOf(sampleShape) !== s.meanFull.length) throw this.shapeMismatch(sampleShape);
          return { kind: "normalize", mean: s.meanFull, invStd: s.invStdFull };
        },
      },
    };
  }

  /** Normalises a tensor `[n, ...sampleShape]` or `[n, features]` (inference). The caller owns the result. */
  applyTensor(x: tf.Tensor): tf.Tensor {
    const s = this.needStats();
    const f = s.meanFull.length;
    if (!(x instanceof tf.Tensor) || x.isDisposed) throw new OptionsError(`Normalizer "${this.stateKey}".applyTensor`, [{ path: "x", message: "must be a live tf.Tensor" }]);
    // [2, 392] would reshape to one sample of 784 without complaint: the per-sample size must match
    if (x.rank < 2 || sizeOf(x.shape.slice(1)) !== f) throw this.shapeMismatch(x.shape.slice(1), ` (tensor [${x.shape.join(", ")}])`);
    return tf.tidy(() => {
      const flat = tf.reshape(x, [-1, f]);
      return tf.reshape(tf.mul(tf.sub(flat, tf.tensor1d(s.meanFull)), tf.tensor1d(s.invStdFull)), x.shape);
    });
  }

  stateDict(): StateDict {
    const s = this.needStats();
    return { per: this.per, sampleShape: [...s.sampleShape], mean: s.mean.slice(), std: s.std.slice(), count: s.count };
  }

  /**
   * Restores saved statistics. The whole state is checked first (`per`, `sampleShape`, `mean` and
   * `std` finite with one value per group, `std >= 0`, `count` an integer >= 1, no unknown keys) and a
   * `StateError` names every offending key; on any error the normaliser is left exactly as it was.
   */
  loadStateDict(state: StateDict): void {
    const owner = `Normalizer "${this.stateKey}"`;
    const s = parseNormalizerState(owner, this.per, state, (shape) => this.groupsOf(shape));
    if (this.stats && sizeOf(this.stats.sampleShape) !== sizeOf(s.sampleShape)) {
      throw new StateError(`${owner}: state.sampleShape is [${s.sampleShape.join(", ")}], but it was fitted here on [${this.stats.sampleShape.join(", ")}]; nothing was loaded`);
    }
    this.setStats(s.sampleShape, s.mean, s.std, s.count);
  }

  private groupsOf(sampleShape: readonly number[]): number {
    if (this.per === "global") return 1;
    if (this.per === "channel") return sampleShape.length === 0 ? 1 : sampleShape[sampleShape.length - 1]!;
    return sizeOf(sampleShape);
  }

  /** Which statistic each feature of a sample uses (channels last). */
  private groupIndex(f: number, groups: number): Int32Array {
    return Int32Array.from({ length: f }, (_, k) => (this.per === "global" ? 0 : this.per === "channel" ? k % groups : k));
  }

  private setStats(sampleShape: readonly number[], mean: Float32Array, std: Float32Array, count: number): void {
    const f = sizeOf(sampleShape);
    const group = this.groupIndex(f, mean.length);
    const meanFull = new Float32Array(f);
    const invStdFull = new Float32Array(f);
    for (let k = 0; k < f; k++) {
      const g = group[k]!;
      meanFull[k] = mean[g]!;
      invStdFull[k] = std[g]! < this.epsilon ? 1 : 1 / std[g]!;
    }
    this.stats = { sampleShape: [...sampleShape], mean, std, count, meanFull, invStdFull };
  }

  private normalizeInPlace(x: Float32Array, sampleShape: readonly number[]): void {
    const s = this.needStats();
    const f = s.meanFull.length;
    if (sizeOf(sampleShape) !== f) throw this.shapeMismatch(sampleShape);
    const { meanFull, invStdFull } = s;
    for (let base = 0; base < x.length; base += f) {
      for (let k = 0; k < f; k++) x[base + k] = (x[base + k]! - meanFull[k]!) * invStdFull[k]!;
    }
  }

  private shapeMismatch(sampleShape: readonly number[], detail = ""): DataError {
    const fitted = this.needStats().sampleShape;
    return new DataError("SHAPE_MISMATCH", `Normalizer "${this.stateKey}" was fitted on samples [${fitted.join(", ")}] but got samples [${sampleShape.join(", ")}]${detail}`);
  }

  private needStats(): Stats {
    if (!this.stats) throw new StateError(`Normalizer "${this.stateKey}" is not fitted: call fit(trainSplit) or load its state from a checkpoint`);
    return this.stats;
  }
}

/** `new Normalizer(options).fit(train)`: statistics of the training split only. */
export function fitNormalizer(train: ArrayDataset, options: NormalizerOptions = {}): Normalizer {
  return new Normalizer(options).fit(train);
}
