import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { ADAM, disableFusedAdam, enableFusedAdam, isFusedAdamEnabled, registerWasmKernels, restoreWasmKernels } from "./index.js";
import { adamSimd, setSimdKernelsEnabled, type EmscriptenWasm } from "./simd/index.js";
import { expectNoLeaks, useTestBackend } from "../testing.fixture.js";
import { values } from "./values.fixture.js";

/** What `applyGradients` takes (tfjs types its map as Variables; gradients are plain tensors). */
type Grads = Parameters<tf.AdamOptimizer["applyGradients"]>[0];


async function use(name: "cpu" | "wasm"): Promise<void> {
  if (name === "wasm") await useTestBackend("wasm");
  else if (!(await tf.setBackend(name))) throw new Error(`setBackend(${name}) failed`);
  await tf.ready();
}

/** Shapes with element counts around the 4-wide SIMD loop (tails), a scalar and a larger matrix. */
const SHAPES: number[][] = [[1], [3], [4], [5], [17], [2, 3], [33, 31], []];

interface Run {
  weights: Float32Array[];
  slots: Float32Array[];
}

/**
 * Adam on `SHAPES` for 5 steps from fixed weights and gradients, changing the learning rate and
 * beta1 after step 2, with a null gradient for one variable
 * at step 3 (tfjs skips it) and gradients passed as a list at step 4 (as a map otherwise).
 */
function trainAdam(): Run {
  const vars = SHAPES.map((s, i) => tf.variable(tf.tensor(values(Math.max(1, s.reduce((p, q) => p * q, 1)), 10 + i), s), true, `adam_test_${i}_${Math.random()}`));
  const opt = tf.train.adam(0.05, 0.8, 0.95, 1e-6);
  for (let step = 0; step < 5; step++) {
    if (step === 2) {
      // what a schedule does mid-run (tfjs's Adam reads both fields at every step)
      (opt as unknown as { learningRate: number; beta1: number }).learningRate = 0.02;
      (opt as unknown as { learningRate: number; beta1: number }).beta1 = 0.9;
    }
    const grads = vars.map((v, i) => tf.tensor(values(v.size, 100 * step + i, 2), v.shape));
    // a null gradient is skipped (tfjs indexes slots by position, so the name stays in the map)
    const map = Object.fromEntries(vars.map((v, i) => [v.name, step === 3 && i === 2 ? null : grads[i]!])) as unknown as Grads;
    if (step === 4) opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: grads[i]! })));
    else opt.applyGradients(map);
    tf.dispose(grads);
  }
  const o = opt as unknown as { accumulatedFirstMoment: { variable: tf.Variable }[]; accumulatedSecondMoment: { variable: tf.Variable }[] };
  const run: Run = {
    weights: vars.map((v) => v.dataSync().slice() as Float32Array),
    slots: [...o.accumulatedFirstMoment, ...o.accumulatedSecondMoment].map((s) => s.variable.dataSync().slice() as Float32Array),
  };
  opt.dispose();
  tf.dispose(vars);
  return run;
}

const wasmOf = () => (tf.engine().backend as unknown as { wasm: EmscriptenWasm & { HEAPU8: Uint8Array } }).wasm;
const numDataIds = () => (tf.engine().backend as unknown as { numDataIds(): number }).numDataIds();

describe("fused Adam on wasm (FitloopAdam)", () => {
  beforeAll(async () => {
    await use("wasm");
  });
  afterAll(async () => {
    registerWasmKernels();
    await use("cpu");
  });

  it("is what useBackend('wasm') enables, and the opt-out restores tfjs's own applyGradients", async () => {
    expect(isFusedAdamEnabled()).toBe(true);
    restoreWasmKernels();
    expect(isFusedAdamEnabled()).toBe(false);
    registerWasmKernels();
    expect(isFusedAdamEnabled()).toBe(true);
    expect(adamSimd(wasmOf())).toBeDefined();
  });

  it("gives bit for bit the weights and moments of tfjs's own Adam on wasm (hyperparameter changes, a missing gradient, list and map forms), within float tolerance of cpu", async () => {
    await use("wasm");
    disableFusedAdam();
    const stock = trainAdam();
    enableFusedAdam();
    const fused = trainAdam();
    const profiled = await tf.profile(() => {
      const v = tf.variable(tf.ones([10]));
      const opt = tf.train.adam(0.1);
      opt.applyGradients({ [v.name]: tf.ones([10]) } as unknown as Grads);
      opt.dispose();
      v.dispose();
    });
    const names = profiled.kernels.map((k) => k.name);
    expect(names).toContain(ADAM);
    expect(names).not.toContain("Sqrt");
    expect(fused.weights.length).toBe(stock.weights.length);
    fused.weights.forEach((w, i) => expect([...w], `weight ${i}`).toEqual([...stock.weights[i]!]));
    fused.slots.forEach((s, i) => expect([...s], `slot ${i}`).toEqual([...stock.slots[i]!]));
    await use("cpu");
    const cpu = trainAdam();
    await use("wasm");
    fused.weights.forEach((w, i) => w.forEach((x, j) => expect(Math.abs(x - cpu.weights[i]![j]!), `cpu weight ${i}[${j}]`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(x)))));
  });

  it("without WebAssembly SIMD runs tfjs's own Adam; the kernel's JS loop (direct call) equals its SIMD pass", async () => {
    await use("wasm");
    const inputs = () => ({ x: tf.tensor(values(23, 1)), m: tf.tensor(values(23, 2, 0.1)), v: tf.abs(tf.tensor(values(23, 3, 0.1))), g: tf.tensor(values(23, 4)) });
    const attrs = { beta1: 0.9, beta2: 0.999, oneMinusAccBeta1: Math.fround(1 - Math.fround(0.9 ** 3)), oneMinusAccBeta2: Math.fround(1 - Math.fround(0.999 ** 3)), epsilon: 1e-7, learningRate: 0.001 };
    const runDirect = () => tf.tidy(() => (tf.engine().runKernel(ADAM, inputs(), attrs as never) as unknown as tf.Tensor[]).map((t) => [...t.dataSync()]));
    const simd = runDirect();
    setSimdKernelsEnabled(false);
    try {
      expect(runDirect()).toEqual(simd);
      const profiled = await tf.profile(() => {
        const v = tf.variable(tf.ones([10]));
        const opt = tf.train.adam(0.1);
        opt.applyGradients({ [v.name]: tf.ones([10]) } as unknown as Grads);
        opt.dispose();
        v.dispose();
      });
      expect(profiled.kernels.map((k) => k.name)).not.toContain(ADAM);
    } finally {
      setSimdKernelsEnabled(true);
    }
  });

  it("updates every variable in one kernel (one engine op per step), each bit for bit its own call; a bad count or input is a clear error", async () => {
    await use("wasm");
    const sizes = [23, 1, 4099];
    const vars = sizes.map((n, i) => ({ x: tf.tensor(values(n, 10 + i)), m: tf.tensor(values(n, 20 + i, 0.1)), v: tf.abs(tf.tensor(values(n, 30 + i, 0.1))), g: tf.tensor(values(n, 40 + i)) }));
    const attrs = { beta1: 0.9, beta2: 0.999, oneMinusAccBeta1: Math.fround(1 - Math.fround(0.9 ** 2)), oneMinusAccBeta2: Math.fround(1 - Math.fround(0.999 ** 2)), epsilon: 1e-7, learningRate: 0.01, gradScale: 0.5 };
    const one = vars.map((t) => tf.tidy(() => (tf.engine().runKernel(ADAM, t, attrs as never) as unknown as tf.Tensor[]).map((o) => [...o.dataSync()])));
    const inputs = Object.fromEntries(vars.flatMap((t, k) => Object.entries(t).map(([name, x]) => [`${name}${k}`, x])));
    const all = tf.tidy(() => (tf.engine().runKernel(ADAM, inputs, { ...attrs, count: 3 } as never) as unknown as tf.Tensor[]).map((o) => [...o.dataSync()]));
    expect(all).toEqual(one.flat());
    const before = tf.memory().numTensors;
    expect(() => tf.engine().runKernel(ADAM, inputs, { ...attrs, count: 0 } as never)).toThrow(/count must be a positive integer/);
    expect(() => tf.engine().runKernel(ADAM, inputs, { ...attrs, count: 4 } as never)).toThrow(/inputs x3, m3, v3, g3 are required/);
    expect(tf.memory().numTensors).toBe(before);
    // through the optimizer: two variables, one kernel
    const w = [tf.variable(tf.ones([5, 3])), tf.variable(tf.ones([3]))];
    const opt = tf.train.adam(0.1);
    const profiled = await tf.profile(() => opt.applyGradients(Object.fromEntries(w.map((v) => [v.name, tf.onesLike(v)])) as unknown as Grads));
    expect(profiled.kernels.filter((k) => k.name === ADAM)).toHaveLength(1);
    opt.dispose();
    tf.dispose([...w, ...vars.flatMap((t) => Object.values(t))]);
  });

  it("leaks neither tensors, wasm buffers nor heap", async () => {
    await use("wasm");
    const vars = [tf.variable(tf.tensor(values(300, 1), [30, 10])), tf.variable(tf.tensor(values(7, 2)))];
    const opt = tf.train.adam(0.01);
    const step = () => tf.tidy(() => opt.applyGradients(Object.fromEntries(vars.map((v) => [v.name, tf.mul(v, 0.5)])) as unknown as Grads));
    step();
    const [ids, heap] = [numDataIds(), wasmOf().HEAPU8.length];
    await expectNoLeaks(step, { warmup: 1, iterations: 20 });
    expect(numDataIds()).toBe(ids);
    expect(wasmOf().HEAPU8.length).toBe(heap);
    opt.dispose();
    tf.dispose(vars);
  });
});
