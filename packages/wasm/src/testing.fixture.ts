/**
 * What the kernel tests need besides the kernels, without `@fitloop/core` (this package does not
 * depend on it): switching backends, a tensor-leak check, seeded randomness for test data.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
// tfjs-core alone has no gradients: tfjs-layers (and the @tensorflow/tfjs bundle) register them
import "@tensorflow/tfjs-layers";
import { useWasm } from "./use-wasm.js";

export interface TestBackendOptions {
  wasmKernels?: boolean;
  threads?: boolean | number;
  kernelThreads?: boolean;
}

/** `"wasm"` through `useWasm` (kernels on unless `wasmKernels: false`), or the cpu backend. */
export async function useTestBackend(name: "wasm" | "cpu", options: TestBackendOptions = {}): Promise<string> {
  if (name === "cpu") {
    await tf.setBackend("cpu");
    await tf.ready();
    return tf.getBackend();
  }
  return useWasm({
    ...(options.wasmKernels !== undefined ? { kernels: options.wasmKernels } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.kernelThreads !== undefined ? { kernelThreads: options.kernelThreads } : {}),
  });
}

/** Makes an already initialised backend the active one again (tests that compare cpu with wasm). */
export async function switchBackend(name: "cpu" | "wasm"): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`setBackend(${name}) failed`);
  await tf.ready();
}

/** Runs `fn` twice to warm up, then `iterations` times; throws if `tf.memory().numTensors` grew. */
export async function expectNoLeaks(fn: (iteration: number) => unknown, options: { warmup?: number; iterations?: number } = {}): Promise<{ before: number; after: number }> {
  const { warmup = 2, iterations = 5 } = options;
  for (let i = 0; i < warmup; i++) await fn(i);
  const before = tf.memory().numTensors;
  for (let i = 0; i < iterations; i++) await fn(warmup + i);
  const after = tf.memory().numTensors;
  if (after > before) throw new Error(`tensor leak: tf.memory().numTensors grew from ${before} to ${after} over ${iterations} iterations`);
  return { before, after };
}

/** Runs `fn` with `Math.random` drawn from a seeded generator (mulberry32), so tfjs's random ops repeat. */
export function seeded<T>(seed: number, fn: () => T): T {
  let s = seed >>> 0;
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const original = Math.random;
  Math.random = random;
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}

/**
 * Gradients of `loss` with respect to every trainable variable it reads (`tf.variableGrads`, copied
 * out) and the kernels that ran (name, first input's shape), under `tf.profile`.
 */
export async function profiledGrads(loss: () => tf.Scalar): Promise<{ g: Float32Array[]; kernels: string[]; shapes: number[][] }> {
  let g: Float32Array[] = [];
  const info = await tf.profile(() => {
    const { grads, value } = tf.variableGrads(loss);
    g = Object.values(grads).map((t) => t.dataSync().slice() as Float32Array);
    tf.dispose([value, ...Object.values(grads)]);
  });
  return { g, kernels: info.kernels.map((k) => k.name), shapes: info.kernels.map((k) => k.inputShapes[0] ?? []) };
}

/** A few SGD steps of `model` on `x` (loss: the sum of squared outputs, in training mode) under `expectNoLeaks`. */
export async function expectTrainingNoLeaks(model: { apply(x: tf.Tensor, kwargs: { training: boolean }): tf.Tensor | tf.Tensor[] | unknown }, x: tf.Tensor): Promise<void> {
  const opt = tf.train.sgd(0.01);
  const step = (): void => tf.tidy(() => void opt.minimize(() => tf.sum(tf.square(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar));
  step();
  try {
    await expectNoLeaks(() => {
      for (let i = 0; i < 3; i++) step();
    });
  } finally {
    opt.dispose();
  }
}

