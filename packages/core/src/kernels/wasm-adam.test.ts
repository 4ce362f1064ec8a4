import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { ADAM, disableFusedAdam, enableFusedAdam, isFusedAdamEnabled, registerWasmKernels, restoreWasmKernels } from "./index.js";
import { adamSimd, setSimdKernelsEnabled, type EmscriptenWasm } from "./simd/index.js";
import { useBackend } from "../backend.js";
import { setLearningRate, setMomentum } from "../hyperparams.js";
import { loadOptimizerStateDict, optimizerStateDict } from "../optimizer-state.js";
import { expectNoLeaks } from "../testing/index.js";
import { values } from "./values.fixture.js";

/** What `applyGradients` takes (tfjs types its map as Variables; gradients are plain tensors). */
type Grads = Parameters<tf.AdamOptimizer["applyGradients"]>[0];


async function use(name: "cpu" | "wasm"): Promise<void> {
  if (name === "wasm") await useBackend("wasm");
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
 * beta1 through fitloop's hyperparameter adapter after step 2, with a null gradient for one variable
 * at step 3 (tfjs skips it) and gradients passed as a list at step 4 (as a map otherwise).
 */
function trainAdam(): Run {
  const vars = SHAPES.map((s, i) => tf.variable(tf.tensor(values(Math.max(1, s.reduce((p, q) => p * q, 1)), 10 + i), s), true, `adam_test_${i}_${Math.random()}`));
  const opt = tf.train.adam(0.05, 0.8, 0.95, 1e-6);
  for (let step = 0; step < 5; step++) {
    if (step === 2) {
      setLearningRate(opt, 0.02);
      setMomentum(opt, 0.9);
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

  it("keeps fitloop's optimizer state export and restore working (slot names, order, accBeta scalars)", async () => {
    await use("wasm");
    const a = tf.variable(tf.tensor(values(6, 7), [2, 3]), true, `adam_state_a_${Math.random()}`);
    const b = tf.variable(tf.tensor(values(5, 8)), true, `adam_state_b_${Math.random()}`);
    const opt = tf.train.adam(0.01);
    const step = (o: tf.Optimizer) => tf.tidy(() => o.applyGradients({ [a.name]: tf.mul(a, 2), [b.name]: tf.sub(b, 1) } as unknown as Grads));
    step(opt);
    step(opt);
    const state = await optimizerStateDict(opt, [a, b]);
    expect(state.kind).toBe("adam");
    expect(state.iterations).toBe(2);
    expect(Object.values(state.slots).map((s) => s.length)).toEqual([2, 2]);
    const weights = await opt.getWeights();
    expect(weights.slice(1).map((w) => w.name)).toEqual([`${a.name}/m`, `${b.name}/m`, `${a.name}/v`, `${b.name}/v`]);
    weights[0]!.tensor.dispose();
    const restored = tf.train.adam(0.01);
    loadOptimizerStateDict(restored, state, [a, b]);
    const snapshot = [a.dataSync().slice(), b.dataSync().slice()];
    step(opt);
    const expected = [a.dataSync().slice(), b.dataSync().slice()];
    a.assign(tf.tensor(snapshot[0]!, [2, 3]));
    b.assign(tf.tensor(snapshot[1]!));
    step(restored);
    expect([...a.dataSync()]).toEqual([...expected[0]!]);
    expect([...b.dataSync()]).toEqual([...expected[1]!]);
    opt.dispose();
    restored.dispose();
    tf.dispose([a, b]);
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
