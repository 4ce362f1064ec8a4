import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { Trainer, silentLogger, type Callback, type Logger } from "@fitloop/core";
import type { TinyFixture } from "@fitloop/core/testing";

export { scriptedLog as scripted } from "@fitloop/core/testing";

/** Every model weight (trainable and not) as plain arrays. */
export const weightsOf = (model: LayersModel): number[][] => model.weights.map((w) => Array.from((w.read() as tf.Tensor).dataSync()));

/** Records the model's weights at the end of every epoch (what a Keras callback would see in on_epoch_end). */
export function probe(): Callback & { at: Map<number, number[][]> } {
  const at = new Map<number, number[][]>();
  return { name: "Probe", at, afterEpoch: (ctx) => void at.set(ctx.state.epoch, weightsOf(ctx.model)) };
}

/** A plugin that asks the run to stop at the end of `epoch`. */
export function stopAt(epoch: number): Callback {
  return { name: "Stopper", afterEpoch: (ctx) => void (ctx.state.epoch === epoch && ctx.requestStop(`stopper at epoch ${epoch}`)) };
}

/** A logger that keeps info lines. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { ...silentLogger, lines, info: (m: string) => void lines.push(m) };
}

export function trainer(fx: TinyFixture, callbacks: Callback[], extra: { logger?: Logger; seed?: number } = {}): Trainer {
  return new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks, logger: extra.logger ?? silentLogger, seed: extra.seed ?? 1 });
}
