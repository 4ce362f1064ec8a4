import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { Trainer, seeded, silentLogger, tensorData, type Callback, type DataSource, type Logger } from "@fitloop/core";
import type { TinyFixture } from "@fitloop/core/testing";

/** Every model weight (trainable and not, BatchNorm statistics too) as plain arrays. */
export const weightsOf = (model: LayersModel): number[][] => model.weights.map((w) => Array.from(w.read().dataSync()));

/** Records every weight after each applied step and at the end of each epoch's training. */
export function recorder(): Callback & { steps: { step: number; weights: number[][] }[]; epochs: Map<number, number[][]> } {
  const steps: { step: number; weights: number[][] }[] = [];
  const epochs = new Map<number, number[][]>();
  return {
    name: "Recorder",
    steps,
    epochs,
    afterStep: (ctx) => void (!ctx.stepSkipped && steps.push({ step: ctx.state.step, weights: weightsOf(ctx.model) })),
    afterTrain: (ctx) => void epochs.set(ctx.state.epoch, weightsOf(ctx.model)),
  };
}

/** Skips the update of every micro-batch but each `k`-th, as gradient accumulation over `k` batches does. */
export function accumulate(k: number): Callback {
  return { name: "Accumulate", afterLoss: (ctx) => void ((ctx.state.globalBatch + 1) % k !== 0 && ctx.skipStep("accumulating")) };
}

export function trainer(fx: TinyFixture, callbacks: Callback[], extra: { optimizer?: tf.Optimizer; seed?: number; logger?: Logger } = {}): Trainer {
  return new Trainer({ model: fx.model, optimizer: extra.optimizer ?? tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks, logger: extra.logger ?? silentLogger, seed: extra.seed ?? 1 });
}

/** Float64 reference: `a + (w - a) * rate`, element by element. */
export const lerp = (a: number[][], w: number[][], rate: number): number[][] => a.map((t, i) => t.map((v, j) => v + (w[i]![j]! - v) * rate));

/** Every element of `got` within `tol * max(1, |want|)` of `want`. */
export function expectClose(got: ArrayLike<number>[], want: number[][], tol: number, what = ""): void {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} tensors, expected ${want.length}`);
  got.forEach((g, i) => {
    const w = want[i]!;
    if (g.length !== w.length) throw new Error(`${what} tensor ${i}: ${g.length} values, expected ${w.length}`);
    for (let j = 0; j < w.length; j++) {
      if (!(Math.abs(g[j]! - w[j]!) <= tol * Math.max(1, Math.abs(w[j]!)))) throw new Error(`${what} tensor ${i}[${j}]: ${g[j]}, expected ${w[j]} (tolerance ${tol})`);
    }
  });
}

/**
 * A regression with heavy label noise (noise sd `noise`, signal sd ~2.8), an MLP 8-32-1 and
 * noise-free validation targets: the validation loss is the distance to the true function.
 */
export function noisyRegression(seed: number, noise = 3): { train: DataSource; validation: DataSource; model: () => LayersModel; dispose(): void } {
  const f = 8;
  const t = seeded(seed, () =>
    tf.tidy(() => {
      const w = tf.randomNormal([f, 1]);
      const xs = tf.randomNormal([512, f]);
      const vx = tf.randomNormal([512, f]);
      return { xs, ys: tf.add(tf.matMul(xs, w), tf.mul(tf.randomNormal([512, 1]), noise)), vx, vy: tf.matMul(vx, w) };
    }),
  );
  return {
    train: tensorData(t.xs, t.ys, { batchSize: 16, seed: seed + 1 }),
    validation: tensorData(t.vx, t.vy, { batchSize: 512, shuffle: false }),
    model: () =>
      seeded(seed + 2, () => {
        const m = tfl.sequential();
        m.add(tfl.layers.dense({ inputShape: [f], units: 32, activation: "relu" }));
        m.add(tfl.layers.dense({ units: 1 }));
        return m;
      }),
    dispose: () => tf.dispose([t.xs, t.ys, t.vx, t.vy]),
  };
}
