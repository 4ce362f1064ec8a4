import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { ORDER, Trainer, silentLogger, tensorData, type Callback, type Logger } from "@fitloop/core";

/** Weights recorded from PyTorch by scripts/torch-reference.py (see `source`). */
export interface TorchCase {
  readonly id: string;
  readonly optimizer: "adam" | "momentum";
  readonly settings: { readonly betas?: readonly [number, number]; readonly eps?: number; readonly momentum?: number };
  /** The learning rate and weight decay of each step. */
  readonly lr: readonly number[];
  readonly weightDecay: readonly number[];
  /** After each step: the Dense kernel [in][out] and bias. */
  readonly kernel: readonly (readonly (readonly number[])[])[];
  readonly bias: readonly (readonly number[])[];
}
export interface TorchFixture {
  readonly source: string;
  readonly batchSize: number;
  readonly epochs: number;
  readonly x: number[][];
  readonly y: number[][];
  readonly kernel: number[][];
  readonly bias: number[];
  readonly cases: readonly TorchCase[];
}
export const torch = JSON.parse(readFileSync(new URL("./torch-reference.fixture.json", import.meta.url), "utf8")) as TorchFixture;

/** The fixture's problem: a Dense 4->3 with bias, torch's initial weights, its inputs and targets in order. */
export function denseProblem(options: { l2?: number } = {}) {
  const model = tfl.sequential();
  const kernelRegularizer = options.l2 === undefined ? undefined : tfl.regularizers.l2({ l2: options.l2 });
  model.add(tfl.layers.dense({ inputShape: [torch.x[0]!.length], units: torch.bias.length, kernelRegularizer }));
  const init = [tf.tensor2d(torch.kernel), tf.tensor1d(torch.bias)];
  model.setWeights(init);
  tf.dispose(init);
  const xs = tf.tensor2d(torch.x);
  const ys = tf.tensor2d(torch.y);
  return {
    model,
    data: () => tensorData(xs, ys, { batchSize: torch.batchSize, shuffle: false }),
    dispose: () => (model.dispose(), tf.dispose([xs, ys])),
  };
}

/** Sets the learning rate of each step from a list, as a schedule does (in beforeBatch). */
export const lrList = (lrs: readonly number[]): Callback => ({
  name: "LrList",
  order: ORDER.SCHEDULE,
  beforeBatch: (ctx) => void (ctx.hyper.learningRate = lrs[ctx.state.step]!),
});

/** Records [kernel, bias] as plain numbers after every applied step. */
export function recorder(): Callback & { readonly steps: number[][][] } {
  const steps: number[][][] = [];
  return { name: "Recorder", steps, afterStep: (ctx) => void (!ctx.stepSkipped && steps.push(ctx.model.getWeights().map((w) => Array.from(w.dataSync())))) };
}

/** Trains the fixture's problem; returns the weights after every step and the run's result. */
export async function trainDense(optimizer: tf.Optimizer, callbacks: Callback[], options: { epochs?: number; l2?: number; logger?: Logger } = {}) {
  const p = denseProblem({ l2: options.l2 });
  const rec = recorder();
  try {
    const trainer = new Trainer({ model: p.model, optimizer, loss: "meanSquaredError", callbacks: [...callbacks, rec], logger: options.logger ?? silentLogger });
    const result = await trainer.fit({ epochs: options.epochs ?? torch.epochs, train: p.data() });
    return { steps: rec.steps, result };
  } finally {
    p.dispose();
    optimizer.dispose();
  }
}

/** A case's optimizer with its first learning rate and torch's settings (epsilon set explicitly). */
export function optimizerFor(c: TorchCase): tf.Optimizer {
  if (c.optimizer === "adam") return tf.train.adam(c.lr[0]!, c.settings.betas![0], c.settings.betas![1], c.settings.eps);
  return tf.train.momentum(c.lr[0]!, c.settings.momentum!);
}

/** Torch's weights after step s as [kernel flat, bias flat], the shape `recorder` gives. */
export const torchSteps = (c: TorchCase): number[][][] => c.kernel.map((k, s) => [k.flat(), [...c.bias[s]!]]);

/**
 * Largest error relative to the scale of its tensor: over every step and tensor, max |a - b| over
 * max |b| (a weight passing near 0 has no meaningful elementwise relative error).
 */
export function maxRelError(ours: number[][][], ref: number[][][]): number {
  if (ours.length !== ref.length) throw new Error(`${ours.length} steps, reference has ${ref.length}`);
  let worst = 0;
  ours.forEach((step, s) =>
    step.forEach((t, i) => {
      const r = ref[s]![i]!;
      if (t.length !== r.length) throw new Error(`step ${s} tensor ${i}: ${t.length} values, reference has ${r.length}`);
      const scale = Math.max(...r.map(Math.abs));
      t.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - r[j]!) / scale)));
    }),
  );
  return worst;
}

/** Largest elementwise |a - b| over all steps. */
export function maxAbsDiff(a: number[][][], b: number[][][]): number {
  let worst = 0;
  a.forEach((step, s) => step.forEach((t, i) => t.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[s]![i]![j]!))))));
  return worst;
}
