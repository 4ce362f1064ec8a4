/** Test fixtures: real digits, a healthy MLP, and models and labels with one planted bug each. */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { permutation, Rng, seeded } from "@fitloop/core";
import { subset, type ArrayDataset } from "@fitloop/datasets";
import { loadEmbeddedMnist } from "@fitloop/datasets/node";

let digits: ArrayDataset | undefined;
/** The 10,000 embedded MNIST digits (loaded once per test file). */
export function mnist(): ArrayDataset {
  return (digits ??= loadEmbeddedMnist());
}

/** `n` digits drawn at random (seeded), flattened to `[n, 784]`, labels float32 `[n]`. */
export function mnistBatch(n: number, seed = 1): { xs: tf.Tensor2D; ys: tf.Tensor1D; dispose(): void } {
  const ds = subset(mnist(), Array.from(permutation(new Rng(seed), mnist().size).subarray(0, n)));
  const xs = tf.tensor2d(ds.x, [n, 784]);
  const ys = tf.tensor1d(Float32Array.from(ds.y));
  return { xs, ys, dispose: () => tf.dispose([xs, ys]) };
}

/** What goes in front of the MLP's dense layers: a planted bug, or nothing. */
export type Planted = "none" | "ignoresInputs" | "mixesBatch" | "wrongGradient";

/** Multiplies its input by 0: the model cannot see the data. */
class TimesZero extends tfl.layers.Layer {
  static readonly className = "TimesZero";
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.mul(one(inputs), 0));
  }
}

/** Subtracts the batch mean, in inference too: every output depends on the whole batch. */
class BatchCentering extends tfl.layers.Layer {
  static readonly className = "BatchCentering";
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs);
      return tf.sub(x, tf.mean(x, 0, true));
    });
  }
}

/** tanh with a hand-written gradient that forgets the square: d/dx tanh = 1 - tanh^2, here 1 - tanh. */
class BadTanh extends tfl.layers.Layer {
  static readonly className = "BadTanh";
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const f = tf.customGrad((x, save) => {
      const y = tf.tanh(x as tf.Tensor);
      (save as (t: tf.Tensor[]) => void)([y]);
      return { value: y, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.sub(1, saved[0]!)) };
    });
    return f(one(inputs));
  }
}

const one = (inputs: tf.Tensor | tf.Tensor[]): tf.Tensor => (Array.isArray(inputs) ? inputs[0]! : inputs);

export interface MlpOptions {
  readonly hidden?: number;
  readonly seed?: number;
  readonly planted?: Planted;
  readonly dropout?: number;
  readonly batchNorm?: boolean;
  /** L2 penalty on every kernel (a regulariser the checks must ignore). */
  readonly l2?: number;
  /** Build with tf.model (functional) instead of tf.sequential. */
  readonly functional?: boolean;
}

/** A 784-h-10 softmax MLP, seeded; `planted` puts one bug in. */
export function mlp(options: MlpOptions = {}): tfl.LayersModel {
  const { hidden = 32, seed = 1, planted = "none", dropout = 0, batchNorm = false, functional = false, l2 } = options;
  const kernelRegularizer = l2 !== undefined ? tfl.regularizers.l2({ l2 }) : undefined;
  return seeded(seed, () => {
    const layers: tfl.layers.Layer[] = [];
    if (planted === "ignoresInputs") layers.push(new TimesZero({}));
    if (planted === "mixesBatch") layers.push(new BatchCentering({}));
    layers.push(tfl.layers.dense({ units: hidden, activation: planted === "wrongGradient" ? "linear" : "relu", kernelRegularizer }));
    if (planted === "wrongGradient") layers.push(new BadTanh({}));
    if (batchNorm) layers.push(tfl.layers.batchNormalization({}));
    if (dropout > 0) layers.push(tfl.layers.dropout({ rate: dropout }));
    layers.push(tfl.layers.dense({ units: 10, activation: "softmax", kernelRegularizer }));
    if (functional) {
      const input = tfl.input({ shape: [784] });
      let x = input as tfl.SymbolicTensor;
      for (const l of layers) x = l.apply(x) as tfl.SymbolicTensor;
      return tfl.model({ inputs: input, outputs: x });
    }
    const m = tfl.sequential();
    m.add(tfl.layers.inputLayer({ inputShape: [784] }));
    for (const l of layers) m.add(l);
    return m;
  });
}

/** Sets the output layer's bias of one class (the planted "wrong output bias"). */
export function setOutputBias(model: tfl.LayersModel, cls: number, value: number): void {
  const out = model.layers.at(-1)!;
  const [kernel, bias] = out.getWeights();
  const b = bias!.dataSync().slice();
  b[cls] = value;
  const t = tf.tensor1d(b);
  out.setWeights([kernel!, t]);
  t.dispose();
}

/** The labels in a random order: inputs and labels no longer belong together. */
export function shuffled(ys: tf.Tensor1D, seed = 3): tf.Tensor1D {
  const y = ys.dataSync();
  const p = permutation(new Rng(seed), y.length);
  return tf.tensor1d(Float32Array.from(p, (i) => y[i]!));
}

/** A broken label mapping: a lookup that misses and falls back to class 0 for every sample. */
export function collapsed(ys: tf.Tensor1D): tf.Tensor1D {
  return tf.zerosLike(ys);
}

/** A compiled Adam that has taken one step (so it has slots), to show the checks leave it alone. */
export function compiledWithSteppedAdam(model: tfl.LayersModel, xs: tf.Tensor, ys: tf.Tensor): tf.Optimizer {
  const optimizer = tf.train.adam(1e-3);
  model.compile({ optimizer, loss: "sparseCategoricalCrossentropy" });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  tf.tidy(() => void optimizer.minimize(() => tf.mean(tfl.metrics.categoricalCrossentropy(tf.oneHot(tf.cast(ys, "int32"), 10), model.apply(xs) as tf.Tensor)) as tf.Scalar, false, vars));
  return optimizer;
}

/** Every bit of an optimizer's state (slots, step counters). */
export async function optimizerBits(optimizer: tf.Optimizer): Promise<string[]> {
  const named = await optimizer.getWeights();
  const bits = named.map(({ name, tensor }) => `${name}:${Buffer.from(tensor.dataSync().buffer).toString("base64")}`);
  tf.dispose(named.filter((w) => w.name === "iter").map((w) => w.tensor)); // made fresh by getWeights; the rest are the optimizer's
  return bits;
}

/** Every weight's bits, to show a check left the model exactly as it was. */
export function weightBits(model: tfl.LayersModel): string[] {
  return model.weights.map((w) => Buffer.from((w.read().dataSync() as Float32Array).buffer).toString("base64"));
}
