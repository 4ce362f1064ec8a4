import * as tf from "@tensorflow/tfjs-core";
import { silentLogger, tensorData, Trainer, type Callback, type DataSource, type FitResult, type Logger, type RunSnapshot } from "@fitloop/core";
import { tinyFixture, weightsOf, type TinyFixture } from "@fitloop/core/testing";
import { GradAccumulation, type GradAccumulationOptions } from "./index.js";

/** An MLP without BatchNorm or dropout (4-16-3), on gaussian blobs: the accumulated step can equal the big batch's. */
export const mlp = (samples: number): TinyFixture => tinyFixture({ samples, hidden: 16 });

export type OptimizerName = "sgd" | "adam";
export const optimizer = (name: OptimizerName): tf.Optimizer => (name === "sgd" ? tf.train.sgd(0.5) : tf.train.adam(0.02));

export interface RunSpec {
  readonly samples: number;
  readonly batch: number;
  /** GradAccumulation options; none: plain training. */
  readonly accumulate?: GradAccumulationOptions;
  readonly optimizer?: OptimizerName;
  readonly epochs?: number;
  readonly callbacks?: readonly Callback[];
  /** The training data (default: the fixture's, shuffled with seed 1 whatever the batch size). */
  readonly data?: (fx: TinyFixture) => DataSource;
  readonly logger?: Logger;
  readonly resumeFrom?: RunSnapshot;
  /** Read the weights after every update (device reads of the test's own). Default true. */
  readonly record?: boolean;
  /** Take `trainer.snapshot()` after fit (deep-copied, as if saved to disk), before the model is disposed. */
  readonly snapshotAfter?: boolean;
}

export interface RunResult {
  /** Every weight after each applied update. */
  readonly steps: number[][][];
  readonly final: number[][];
  /** Each training batch's logs, in order. */
  readonly batchLogs: Record<string, number>[];
  readonly result: FitResult;
  readonly plugin: GradAccumulation | undefined;
  readonly trainer: Trainer;
  readonly snapshot: RunSnapshot | undefined;
}

/** One training run on a fresh fixture (same data and initial weights every time), disposed afterwards. */
export async function run(spec: RunSpec): Promise<RunResult> {
  const fx = mlp(spec.samples);
  const opt = optimizer(spec.optimizer ?? "sgd");
  try {
    const steps: number[][][] = [];
    const batchLogs: Record<string, number>[] = [];
    const recorder: Callback = {
      name: "Recorder",
      afterStep: (ctx) => void (ctx.stepSkipped || spec.record === false || steps.push(weightsOf(ctx.model))),
      afterBatch: (ctx) => void batchLogs.push({ ...ctx.logs }),
    };
    const plugin = spec.accumulate ? new GradAccumulation(spec.accumulate) : undefined;
    const trainer = new Trainer({
      model: fx.model,
      optimizer: opt,
      loss: "sparseCategoricalCrossentropy",
      seed: 3,
      logger: spec.logger ?? silentLogger,
      callbacks: [...(plugin ? [plugin] : []), recorder, ...(spec.callbacks ?? [])],
    });
    const result = await trainer.fit({ epochs: spec.epochs ?? 2, train: spec.data ? spec.data(fx) : fx.data(spec.batch), ...(spec.resumeFrom ? { resumeFrom: spec.resumeFrom } : {}) });
    const snapshot = spec.snapshotAfter ? structuredClone(await trainer.snapshot()) : undefined;
    return { steps, final: weightsOf(fx.model), batchLogs, result, plugin, trainer, snapshot };
  } finally {
    fx.dispose();
    opt.dispose();
  }
}

/** Largest absolute difference between two weight trajectories of the same length. */
export function maxDiff(a: readonly (readonly number[][])[], b: readonly (readonly number[][])[]): number {
  if (a.length !== b.length) throw new Error(`trajectories of ${a.length} and ${b.length} steps`);
  let m = 0;
  a.forEach((step, i) => step.forEach((w, j) => w.forEach((v, k) => (m = Math.max(m, Math.abs(v - b[i]![j]![k]!))))));
  return m;
}

/** The fixture's data without its length: a stream (no batchesPerEpoch, no peekAll). */
export const stream = (batch: number) => (fx: TinyFixture): DataSource => {
  const inner = tensorData(fx.xs, fx.ys, { batchSize: batch, seed: 1 });
  return { batches: (cursor) => inner.batches(cursor) };
};

/** The fixture's data in batches of `batch`, the last smaller batch dropped. */
export const dropLast = (batch: number) => (fx: TinyFixture): DataSource => tensorData(fx.xs, fx.ys, { batchSize: batch, seed: 1, dropLast: true });
