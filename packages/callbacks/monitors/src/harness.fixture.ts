import * as tf from "@tensorflow/tfjs-core";
import { ORDER, Trainer, silentLogger, type Callback, type DataSource, type Logger, type Logs } from "@fitloop/core";
import type { TinyFixture } from "@fitloop/core/testing";

/** A clock that moves only when told to: the timing plugins then log exact numbers. */
export function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/**
 * Simulated work on a manual clock: every training batch takes `batchMs` (split between the data
 * and the step), every validation pass `valMs`, and between epochs `gapMs` (a checkpoint, say).
 */
export function work(clock: { advance: (ms: number) => void }, o: { batchMs: number; valMs?: number; gapMs?: number }): Callback {
  return {
    name: "Work",
    order: ORDER.DEFAULT,
    beforeBatch: () => clock.advance(o.batchMs / 2),
    beforeStep: () => clock.advance(o.batchMs / 2),
    beforeValidate: () => clock.advance(o.valMs ?? 0),
    epochCheckpoint: () => clock.advance(o.gapMs ?? 0),
  };
}

/** Every training batch's logs as sinks see them (after every plugin's afterBatch), by epoch. */
export function batchLogs(): Callback & { seen: { epoch: number; batch: number; logs: Logs }[] } {
  const seen: { epoch: number; batch: number; logs: Logs }[] = [];
  return { name: "Seen", order: ORDER.LAST, seen, batchCheckpoint: (ctx) => void seen.push({ epoch: ctx.state.epoch, batch: ctx.state.batchIndex - 1, logs: { ...ctx.logs } }) };
}

/** The fixture's data as a streaming source: no batchesPerEpoch. */
export function streaming(source: DataSource): DataSource {
  return { batches: (cursor) => source.batches(cursor) };
}

export function trainer(fx: TinyFixture, callbacks: Callback[], extra: { logger?: Logger; optimizer?: tf.Optimizer } = {}): Trainer {
  return new Trainer({ model: fx.model, optimizer: extra.optimizer ?? tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks, logger: extra.logger ?? silentLogger, seed: 1 });
}

/** A logger that keeps warnings. */
export function warnings(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { ...silentLogger, lines, warn: (m: string) => void lines.push(m) };
}
