import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import type { Callback, HookContext } from "../callback.js";
import { CancelFit } from "../cancel.js";
import { tensorData, type DataSource } from "../data.js";
import { EVENTS, type EventName } from "../events.js";
import { seeded } from "../rng.js";
import type { StateDict } from "../state.js";
import { decodeState, encodeState } from "../state-codec.js";
import type { RunSnapshot } from "../snapshot.js";
import type { Trainer, TrainerStateDict } from "../trainer.js";

/** Thrown by `expectNoLeaks` when the tensor count grows. */
export class TensorLeakError extends Error {
  constructor(
    readonly before: number,
    readonly after: number,
    readonly iterations: number,
  ) {
    super(`tensor leak: tf.memory().numTensors grew from ${before} to ${after} over ${iterations} iterations (${((after - before) / iterations).toFixed(2)} per iteration)`);
    this.name = "TensorLeakError";
  }
}

export interface LeakCheckOptions {
  /** Runs before counting, so caches and lazily created variables settle. Default 2. */
  warmup?: number;
  /** Runs that must not grow the count. Default 5. */
  iterations?: number;
}

/**
 * Runs `fn` `warmup` times, then `iterations` times, and throws `TensorLeakError` if
 * `tf.memory().numTensors` grew over the measured runs. Every fitloop package tests its hooks with it.
 */
export async function expectNoLeaks(fn: (iteration: number) => unknown, options: LeakCheckOptions = {}): Promise<{ before: number; after: number }> {
  const { warmup = 2, iterations = 5 } = options;
  for (let i = 0; i < warmup; i++) await fn(i);
  const before = tf.memory().numTensors;
  for (let i = 0; i < iterations; i++) await fn(warmup + i);
  const after = tf.memory().numTensors;
  if (after > before) throw new TensorLeakError(before, after, iterations);
  return { before, after };
}

export interface TinyFixtureOptions {
  /** Samples. Default 64. */
  samples?: number;
  /** Input features. Default 4. */
  features?: number;
  /** Classes. Default 3. */
  classes?: number;
  /** Hidden units. Default 8. */
  hidden?: number;
  /** Seed for data and initial weights. Default 1. */
  seed?: number;
  /** Add BatchNormalization and Dropout after the hidden layer. Default false. */
  withBatchNormAndDropout?: boolean;
}

export interface TinyFixture {
  readonly model: tfl.LayersModel;
  readonly xs: tf.Tensor2D;
  /** Class indices as float32, shape [samples]. */
  readonly ys: tf.Tensor1D;
  /** A seeded in-memory source over xs/ys. */
  data(batchSize: number, seed?: number): DataSource;
  dispose(): void;
}

/**
 * A tiny, learnable classification problem (gaussian blobs, one per class) and a small MLP, both
 * seeded. For plugin tests: fast on cpu, and loss visibly falls within a few epochs.
 */
export function tinyFixture(options: TinyFixtureOptions = {}): TinyFixture {
  const { samples = 64, features = 4, classes = 3, hidden = 8, seed = 1, withBatchNormAndDropout = false } = options;
  const { xs, ys } = seeded(seed, () =>
    tf.tidy(() => {
      const labels = tf.tensor1d(Array.from({ length: samples }, (_, i) => i % classes), "int32");
      const centers = tf.mul(tf.randomNormal([classes, features]), 3);
      const x = tf.add(tf.gather(centers, labels), tf.randomNormal([samples, features])) as tf.Tensor2D;
      return { xs: x, ys: tf.cast(labels, "float32") as tf.Tensor1D };
    }),
  );
  const model = seeded(seed + 1, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [features], units: hidden, activation: "relu" }));
    if (withBatchNormAndDropout) {
      m.add(tfl.layers.batchNormalization({ momentum: 0.9 }));
      m.add(tfl.layers.dropout({ rate: 0.3 }));
    }
    m.add(tfl.layers.dense({ units: classes, activation: "softmax" }));
    return m;
  });
  return {
    model,
    xs,
    ys,
    data: (batchSize, dataSeed = seed) => tensorData(xs, ys, { batchSize, seed: dataSeed }),
    dispose() {
      model.dispose();
      tf.dispose([xs, ys]);
    },
  };
}

/** A running count of device reads; see `countDeviceReads`. */
export interface DeviceReadCounter {
  readonly count: number;
  /** Puts the backend's method back. */
  stop(): void;
}

/**
 * Counts reads from the device (the active backend's `readSync`, which `data()` also goes through on
 * the cpu and wasm backends) until `stop()`: to show that a plugin adds no device read per step.
 */
export function countDeviceReads(): DeviceReadCounter {
  const backend = tf.backend() as unknown as { readSync: (...a: unknown[]) => unknown };
  const original = backend.readSync;
  const counter = {
    count: 0,
    stop: () => void (backend.readSync = original),
  };
  backend.readSync = function (this: unknown, ...a: unknown[]) {
    counter.count++;
    return original.apply(this, a);
  };
  return counter;
}

/**
 * `trainer.snapshot()` deep-copied, as if written to disk and read back in a new process (a plugin
 * that hands out live references in its state dict would be caught).
 */
export async function snapshotRun(trainer: Trainer): Promise<RunSnapshot> {
  return structuredClone(await trainer.snapshot());
}

/** Loads a deep copy of `snapshot` into `trainer` (a new model and optimizer of the same architecture) for its next `fit()`. */
export function restoreRun(trainer: Trainer, snapshot: RunSnapshot): void {
  trainer.loadSnapshot(structuredClone(snapshot));
}

/** Where a `failingPlugins()` plugin fails: an event it throws an Error in, or `cancel` (CancelFit in afterBatch). */
export type FailurePoint = EventName | "cancel";

/**
 * One plugin per failure path, for leak and robustness tests of a plugin: each throws an Error in one
 * event (every event), and one cancels the run (`CancelFit` from `afterBatch`).
 * `when` limits the failure to some calls (e.g. the second epoch, once a plugin holds state).
 */
export function failingPlugins(options: { when?: (ctx: HookContext) => boolean } = {}): { where: FailurePoint; plugin: Callback }[] {
  const points: FailurePoint[] = [...EVENTS, "cancel"];
  return points.map((where) => ({
    where,
    plugin: {
      name: `FailIn-${where}`,
      [where === "cancel" ? "afterBatch" : where]: (ctx: HookContext) => {
        if (options.when && !options.when(ctx)) return;
        throw where === "cancel" ? new CancelFit("test cancel") : new Error(`test failure in ${where}`);
      },
    },
  }));
}

/** A monitor with a known sequence: logs `name` = `values[epoch]` as an epoch value at the end of each epoch's training. */
export function scriptedLog(values: readonly number[], name = "score"): Callback {
  return { name: `Script(${name})`, afterTrain: (ctx) => ctx.log(name, values[ctx.state.epoch]!) };
}

/** A trainer state at the very start of a run carrying the given plugin states (e.g. corrupt ones, to test `loadStateDict`). */
export function stateWithPlugins(plugins: Readonly<Record<string, StateDict>>): TrainerStateDict {
  return { train: { epoch: 0, step: 0, globalBatch: 0, batchIndex: 0, cursor: { epoch: 0, batchIndex: 0 }, history: [] }, rng: null, plugins };
}

/** A snapshot taken at every epoch's safe point (`epochCheckpoint`), by epoch: for resume tests. */
export function epochSnapshots(): Callback & { readonly at: Map<number, RunSnapshot> } {
  const at = new Map<number, RunSnapshot>();
  return { name: "EpochSnapshots", at, epochCheckpoint: async (ctx) => void at.set(ctx.state.epoch, structuredClone(await ctx.snapshot())) };
}

/**
 * What a checkpoint does to a plugin's state: `encodeState`, `JSON.stringify` / `JSON.parse`, a copy
 * of every typed array (as if read from a file), `decodeState`. A plugin test checks that
 * `loadStateDict(roundTripState(p.stateDict()))` restores it; a value a checkpoint cannot store
 * (a Map, a Float64Array, a class instance, ...) is a `StateError` naming its path.
 */
export function roundTripState(dict: StateDict): StateDict {
  const { json, arrays } = encodeState(dict);
  const copies = new Map([...arrays].map(([name, a]) => [name, a.slice()] as const));
  return decodeState(JSON.parse(JSON.stringify(json)) as unknown, copies) as StateDict;
}

export { expectRefused, expectRejected, weightsOf, RefusalCheckError, type Culprit, type ErrorClass, type RefusalGuard } from "./refusals.js";
