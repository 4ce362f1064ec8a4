import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-wasm";
import { DENSE, DENSE_GRAD, disableFusedDense, enableFusedDense, isFusedDenseEnabled, registerWasmKernels, restoreWasmKernels } from "./index.js";
import { values, size } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { expectNoLeaks, useTestBackend } from "../testing.fixture.js";

/**
 * tfjs-layers' Dense on wasm through `FitloopDense` / `FitloopDenseGrad` against the same models with
 * `disableFusedDense()` (tfjs-layers' own ops on wasm) and on the cpu backend. Tolerance: float32,
 * max abs error relative to the largest expected magnitude, 1e-5 (the GEMMs sum in another order).
 */
const RTOL = 1e-5;

async function use(name: "cpu" | "wasm"): Promise<void> {
  if (name === "wasm") await useTestBackend("wasm", { threads: false, kernelThreads: false });
  else await useTestBackend("cpu");
}

type Act = "linear" | "relu" | "softmax" | "tanh" | "sigmoid" | "elu";
interface Layer {
  units: number;
  activation: Act;
  useBias?: boolean;
}
interface Spec {
  name: string;
  batch: number;
  input: number[]; // without the batch
  layers: Layer[];
}

/** Sequential Dense stack with deterministic weights (identical on every backend). */
function build(spec: Spec): tfl.Sequential {
  const m = tfl.sequential();
  spec.layers.forEach((l, i) => m.add(tfl.layers.dense({ ...(i === 0 ? { inputShape: spec.input } : {}), units: l.units, activation: l.activation, useBias: l.useBias ?? true })));
  m.setWeights(m.getWeights().map((w, i) => tf.tensor(values(w.size, 300 + i, w.rank === 2 ? 1.7 / Math.sqrt(w.shape[0]!) : 0.2), w.shape)));
  return m;
}

const inputOf = (spec: Spec): tf.Tensor => tf.tensor(values(spec.batch * size(spec.input), 11), [spec.batch, ...spec.input]);
const outShape = (spec: Spec): number[] => [spec.batch, ...spec.input.slice(0, -1), spec.layers[spec.layers.length - 1]!.units];
/** The fixed random weights r of the scalar sum(output * r). */
const weightsOf = (spec: Spec): tf.Tensor => tf.tensor(values(size(outShape(spec)), 12), outShape(spec));

interface Result {
  loss: Float32Array;
  grads: Float32Array[];
  predict: Float32Array;
  kernels: string[];
}

const lossOf = (model: tfl.Sequential, x: tf.Tensor, r: tf.Tensor) => (): tf.Scalar => tf.sum(tf.mul(model.apply(x, { training: true }) as tf.Tensor, r));

/** Loss, the gradient of every trainable weight, predict, and the kernels of the training step, on the current backend. */
async function compute(spec: Spec): Promise<Result> {
  const model = build(spec);
  const [x, r] = [inputOf(spec), weightsOf(spec)];
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const info = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(lossOf(model, x, r), vars);
    return [value, ...vars.map((v) => grads[v.name]!)];
  });
  const [value, ...grads] = info.result as tf.Tensor[];
  const predict = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync().slice() as Float32Array);
  const out: Result = { loss: value!.dataSync().slice() as Float32Array, grads: grads.map((g) => g.dataSync().slice() as Float32Array), predict, kernels: info.kernels.map((k) => k.name) };
  tf.dispose([x, r, value!, ...grads]);
  model.dispose();
  return out;
}

function expectSame(got: Result, want: Result, label: string): void {
  expectClose(got.loss, want.loss, `${label}: loss`, RTOL, 1);
  expectClose(got.predict, want.predict, `${label}: predict`, RTOL);
  expect(got.grads.length, `${label}: number of gradients`).toBe(want.grads.length);
  got.grads.forEach((g, i) => expectClose(g, want.grads[i]!, `${label}: gradient ${i}`, RTOL));
}

/** Reference on cpu, then wasm with tfjs-layers' own Dense, then wasm fused. */
async function threeWays(spec: Spec): Promise<{ cpu: Result; stock: Result; fused: Result }> {
  await use("cpu");
  const cpu = await compute(spec);
  await use("wasm");
  disableFusedDense();
  let stock: Result;
  try {
    stock = await compute(spec);
  } finally {
    enableFusedDense();
  }
  const fused = await compute(spec);
  return { cpu, stock, fused };
}

const count = (names: string[], name: string): number => names.filter((n) => n === name).length;
const fitloopDense = (names: string[]): string[] => names.filter((n) => n === DENSE || n === DENSE_GRAD);

const MLP: Spec = { name: "relu 16 -> linear 8 -> softmax 5, batch 7", batch: 7, input: [10], layers: [{ units: 16, activation: "relu" }, { units: 8, activation: "linear" }, { units: 5, activation: "softmax" }] };
const CASES: Spec[] = [
  MLP,
  { name: "batch 1, in 1: relu 3 -> softmax 10", batch: 1, input: [1], layers: [{ units: 3, activation: "relu" }, { units: 10, activation: "softmax" }] },
  { name: "single dense without bias, linear 128 -> 10, batch 64", batch: 64, input: [128], layers: [{ units: 10, activation: "linear", useBias: false }] },
  { name: "single dense without bias, relu 3 -> 1, batch 7", batch: 7, input: [3], layers: [{ units: 1, activation: "relu", useBias: false }] },
  { name: "784 -> relu 256 -> softmax 10, batch 64", batch: 64, input: [784], layers: [{ units: 256, activation: "relu" }, { units: 10, activation: "softmax" }] },
  { name: "softmax without bias 10 -> 128, batch 1", batch: 1, input: [10], layers: [{ units: 128, activation: "softmax", useBias: false }] },
];

describe("tfjs-layers' Dense on wasm through FitloopDense / FitloopDenseGrad", () => {
  beforeAll(async () => {
    await use("wasm");
    registerWasmKernels();
  });
  afterAll(async () => {
    enableFusedDense();
    await use("wasm");
  });

  it.each(CASES.map((s) => [s.name, s] as const))("loss, every weight gradient and predict match tfjs-layers' path on wasm and cpu: %s", async (name, spec) => {
    const { cpu, stock, fused } = await threeWays(spec);
    expectSame(stock, cpu, `${name}: wasm stock vs cpu`);
    expectSame(fused, cpu, `${name}: wasm fused vs cpu`);
    expectSame(fused, stock, `${name}: wasm fused vs wasm stock`);
    expect(count(fused.kernels, DENSE)).toBe(spec.layers.length);
    expect(count(fused.kernels, DENSE_GRAD)).toBe(spec.layers.length);
    expect(fitloopDense(stock.kernels)).toEqual([]);
    expect(fitloopDense(cpu.kernels)).toEqual([]);
  });

  it("the input's gradient: computed with the weight's where the input comes from the tape, lazily where tf.grad watches a data tensor", async () => {
    await use("wasm");
    const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [13], units: 9, activation: "relu" }), tfl.layers.dense({ units: 4, activation: "softmax" })] });
    model.setWeights(model.getWeights().map((w, i) => tf.tensor(values(w.size, 300 + i, 0.5), w.shape)));
    const x = tf.tensor(values(7 * 13, 310, 1), [7, 13]);
    const r = tf.tensor(values(7 * 4, 311, 1), [7, 4]);
    const f = (input: tf.Tensor) => tf.sum(tf.mul(model.apply(input, { training: true }) as tf.Tensor, r));
    const gradOf = () => tf.tidy(() => [...tf.grad(f)(x).dataSync()]);
    const fused = gradOf();
    const profiled = await tf.profile(() => tf.tidy(() => tf.grad(f)(x)));
    // layer 1's input is the watched data tensor (no tape op made it): its gradient comes from the lazy matmul
    expect(count(profiled.kernels.map((k) => k.name), "BatchMatMul")).toBe(1);
    disableFusedDense();
    let stock: number[];
    try {
      stock = gradOf();
    } finally {
      enableFusedDense();
    }
    await use("cpu");
    const cpu = tf.tidy(() => [...tf.grad(f)(x).dataSync()]);
    await use("wasm");
    expectClose(fused, stock, "dx, fused vs stock wasm");
    expectClose(fused, cpu, "dx, fused vs cpu");
    tf.dispose([x, r]);
    model.dispose();
  });

  it("a 3-layer MLP in training: 3 FitloopDense forward and no Add/Relu/Softmax; 3 FitloopDenseGrad backward; none when disabled", async () => {
    await use("wasm");
    const { kernels } = await compute(MLP);
    const forward = kernels.slice(0, kernels.lastIndexOf(DENSE) + 1);
    expect(count(forward, DENSE)).toBe(3);
    expect(forward.filter((n) => ["Add", "Relu", "Softmax", "BatchMatMul", "_FusedMatMul"].includes(n))).toEqual([]);
    expect(count(kernels, DENSE_GRAD)).toBe(3);
    expect(kernels.filter((n) => ["Relu", "Softmax", "Step", "Add"].includes(n))).toEqual([]);
    // the input's gradients of layers 2 and 3 are computed inside their FitloopDenseGrad (their
    // inputs are outputs of ops on the tape); layer 1's input needs none: no separate matmul
    expect(count(kernels, "BatchMatMul")).toBe(0);
    disableFusedDense();
    try {
      const off = await compute(MLP);
      expect(fitloopDense(off.kernels)).toEqual([]);
      expect(off.kernels).toContain("Relu");
      expect(off.kernels).toContain("Softmax");
    } finally {
      enableFusedDense();
    }
  });

  it.each([
    { name: "rank-3 input [batch, t, features]", batch: 3, input: [4, 6], layers: [{ units: 5, activation: "relu" }, { units: 3, activation: "softmax" }] },
    { name: "tanh", batch: 7, input: [10], layers: [{ units: 6, activation: "tanh" }] },
    { name: "sigmoid", batch: 7, input: [10], layers: [{ units: 6, activation: "sigmoid" }] },
    { name: "elu", batch: 7, input: [10], layers: [{ units: 6, activation: "elu" }] },
  ].map((s) => [s.name, s as Spec] as const))("falls back to tfjs-layers' own code with the same results: %s", async (name, spec) => {
    const { cpu, stock, fused } = await threeWays(spec);
    expectSame(fused, cpu, `${name}: wasm vs cpu`);
    expectSame(fused, stock, `${name}: wasm vs wasm stock`);
    expect(fitloopDense(fused.kernels)).toEqual([]);
  });

  /** d/dx of |d/dx sum(model(x) * r)|², and the gradient-penalty pattern d/dW of the same. */
  function secondOrder(): { gxx: Float32Array; gw: (Float32Array | null)[] } {
    const spec: Spec = { name: "second order", batch: 4, input: [5], layers: [{ units: 6, activation: "relu" }, { units: 4, activation: "softmax" }] };
    const model = build(spec);
    const [x, r] = [inputOf(spec), weightsOf(spec)];
    const penalty = (xx: tf.Tensor): tf.Scalar => {
      const gx = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(model.apply(z, { training: true }) as tf.Tensor, r)))(xx);
      return tf.sum(tf.square(gx));
    };
    const gxx = tf.grad(penalty)(x);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => penalty(x), vars);
    const out = { gxx: gxx.dataSync().slice() as Float32Array, gw: vars.map((v) => (grads[v.name] ? (grads[v.name]!.dataSync().slice() as Float32Array) : null)) };
    tf.dispose([x, r, gxx, value, ...Object.values(grads)]);
    model.dispose();
    return out;
  }

  /** The Dense forward one tape deep, the inner gradient through it recorded by the outer tape (its backward must have gradients). */
  function sharedForward(): (Float32Array | null)[] {
    const spec: Spec = { name: "shared forward", batch: 4, input: [5], layers: [{ units: 6, activation: "relu" }, { units: 5, activation: "linear" }, { units: 4, activation: "softmax" }] };
    const model = build(spec);
    const [x, r] = [inputOf(spec), weightsOf(spec)];
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => {
      const out = model.apply(x, { training: true }) as tf.Tensor;
      const gx = tf.grad(() => tf.sum(tf.mul(out, r)))(x);
      return tf.add(tf.sum(tf.square(out)), tf.sum(tf.square(gx)));
    }, vars);
    const gw = vars.map((v) => (grads[v.name] ? (grads[v.name]!.dataSync().slice() as Float32Array) : null));
    tf.dispose([x, r, value, ...Object.values(grads)]);
    model.dispose();
    return gw;
  }

  it("a gradient through a fused Dense, recorded by an outer tape, has gradients (tfjs ops) and matches cpu", async () => {
    await use("cpu");
    const want = sharedForward();
    await use("wasm");
    const info = await tf.profile(() => {
      const got = sharedForward();
      expect(got.map((g) => g === null)).toEqual(want.map((g) => g === null));
      got.forEach((g, i) => g && expectClose(g, want[i]!, `d/dW ${i}`, RTOL));
    });
    const names = info.kernels.map((k) => k.name);
    expect(count(names, DENSE)).toBe(3); // the forward is fused; the backward recorded by the outer tape is not
    expect(count(names, DENSE_GRAD)).toBe(3); // the outer backward's, at depth 0
  });

  it("a gradient of a gradient through a Dense (gradientDepth 2) takes tfjs-layers' ops and matches cpu", async () => {
    await use("cpu");
    const want = secondOrder();
    await use("wasm");
    const info = await tf.profile(() => {
      const got = secondOrder();
      expectClose(got.gxx, want.gxx, "d/dx penalty", RTOL);
      expect(got.gw.map((g) => g === null)).toEqual(want.gw.map((g) => g === null));
      got.gw.forEach((g, i) => g && expectClose(g, want.gw[i]!, `d/dW penalty ${i}`, RTOL));
      expect(got.gw.some((g) => g?.some((v) => v !== 0))).toBe(true);
    });
    expect(fitloopDense(info.kernels.map((k) => k.name))).toEqual([]);
  });

  it("does nothing on the cpu backend", async () => {
    await use("cpu");
    expect(isFusedDenseEnabled()).toBe(true);
    const { kernels } = await compute(MLP);
    expect(kernels.filter((n) => n.startsWith("Fitloop"))).toEqual([]);
    await use("wasm");
  });

  it("model.fit trains on wasm through the fused path; enable/disable toggle the patch, idempotently", async () => {
    await use("wasm");
    expect(isFusedDenseEnabled()).toBe(true);
    const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 12, activation: "relu" }), tfl.layers.dense({ units: 3, activation: "softmax" })] });
    model.setWeights(model.getWeights().map((w, i) => tf.tensor(values(w.size, 40 + i, 0.5), w.shape)));
    model.compile({ optimizer: tf.train.sgd(0.5), loss: "categoricalCrossentropy" });
    const xs = tf.tensor2d(values(24 * 4, 5), [24, 4]);
    const v = xs.dataSync();
    const labels = Array.from({ length: 24 }, (_, i) => (v[i * 4]! > 0.3 ? 0 : v[i * 4 + 1]! > 0 ? 1 : 2));
    const ys = tf.oneHot(tf.tensor1d(labels, "int32"), 3);
    const before = tf.memory().numTensors;
    const info = await tf.profile(async () => {
      const history = await model.fit(xs, ys, { epochs: 8, batchSize: 8, shuffle: false, verbose: 0 });
      const loss = history.history["loss"] as number[];
      expect(loss[loss.length - 1]!).toBeLessThan(loss[0]! * 0.8);
    });
    const names = info.kernels.map((k) => k.name);
    expect(count(names, DENSE_GRAD)).toBe(2 * 8 * 3); // 2 layers, 8 epochs, 3 batches
    expect(names).not.toContain("Softmax");
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([xs, ys]);
    model.dispose();

    disableFusedDense();
    expect(isFusedDenseEnabled()).toBe(false);
    expect(fitloopDense((await compute(MLP)).kernels)).toEqual([]);
    enableFusedDense();
    enableFusedDense();
    expect(isFusedDenseEnabled()).toBe(true);
    expect(count((await compute(MLP)).kernels, DENSE)).toBe(3);
    disableFusedDense(); // one disable undoes both enables: the patch was installed once
    expect(isFusedDenseEnabled()).toBe(false);
    expect(fitloopDense((await compute(MLP)).kernels)).toEqual([]);
    restoreWasmKernels();
    expect(isFusedDenseEnabled()).toBe(false);
    registerWasmKernels();
    expect(isFusedDenseEnabled()).toBe(true);
  });

  it("a direct kernel call with bad inputs throws a clear Error and leaves nothing behind", async () => {
    await use("wasm");
    const numDataIds = (): number => (tf.engine().backend as unknown as { numDataIds(): number }).numDataIds();
    const [x, xInt, x3, w, wBad, b, bBad] = [tf.ones([2, 3]), tf.ones([2, 3], "int32"), tf.ones([2, 3, 3]), tf.ones([3, 4]), tf.ones([5, 4]), tf.ones([4]), tf.ones([5])];
    const [tensors, ids] = [tf.memory().numTensors, numDataIds()];
    const call = (inputs: tf.NamedTensorMap, activation = "relu") => () => tf.engine().runKernel(DENSE, inputs, { activation, hasBias: "bias" in inputs } as unknown as tf.NamedAttrMap);
    expect(call({ x: xInt, kernel: w, bias: b })).toThrowError(/must be float32 \(got int32/);
    expect(call({ x: x3, kernel: w, bias: b })).toThrowError(/x \[batch, in\] and kernel \[in, units\] do not fit \(x \[2,3,3\]/);
    expect(call({ x, kernel: wBad, bias: b })).toThrowError(/do not fit \(x \[2,3\], kernel \[5,4\]\)/);
    expect(call({ x, kernel: w, bias: bBad })).toThrowError(/bias must be \[4\] \(got \[5\]\)/);
    expect(call({ x, kernel: w }, "gelu")).toThrowError(/activation must be one of linear, relu, softmax \(got gelu\)/);
    expect(() => tf.engine().runKernel(DENSE_GRAD, { dy: x, x } as tf.NamedTensorMap, { activation: "relu", hasBias: true } as unknown as tf.NamedAttrMap)).toThrowError(/inputs dy, x and y are required/);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(numDataIds()).toBe(ids);
    // and the good call works
    const y = tf.engine().runKernel(DENSE, { x, kernel: w, bias: b }, { activation: "linear", hasBias: true } as unknown as tf.NamedAttrMap) as tf.Tensor;
    expect(Array.from(y.dataSync())).toEqual(new Array<number>(8).fill(4));
    tf.dispose([y, x, xInt, x3, w, wBad, b, bBad]);
  });

  it("leaks no tensors over training steps, nor when the loss throws after the Dense forward", async () => {
    await use("wasm");
    const model = build(MLP);
    const [x, r] = [inputOf(MLP), weightsOf(MLP)];
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const numDataIds = (): number => (tf.engine().backend as unknown as { numDataIds(): number }).numDataIds();
    const ids = numDataIds();
    await expectNoLeaks(() => {
      const { value, grads } = tf.variableGrads(lossOf(model, x, r), vars);
      tf.dispose([value, ...Object.values(grads)]);
    });
    expect(numDataIds()).toBe(ids);

    const throwing = (): unknown =>
      tf.variableGrads(() => {
        const out = model.apply(x, { training: true }) as tf.Tensor;
        if (out.shape[1] === 5) throw new Error("loss failed");
        return tf.sum(out);
      }, vars);
    /** Tensors the failed call left: tfjs-core keeps the tape's saved tensors when f throws (any op, fused or not). */
    const leftOver = (): number => {
      const before = tf.memory().numTensors;
      expect(throwing).toThrowError("loss failed");
      const tape = (tf.engine().state as unknown as { activeTape: { saved?: tf.Tensor[] }[] | null }).activeTape ?? [];
      const saved = new Set(tape.flatMap((node) => node.saved ?? []));
      const left = tf.memory().numTensors - before;
      expect(left).toBe(saved.size); // nothing but the tape's saved tensors
      tf.dispose([...saved]);
      expect(tf.memory().numTensors).toBe(before);
      return left;
    };
    const fusedLeft = leftOver();
    disableFusedDense();
    let stockLeft: number;
    try {
      stockLeft = leftOver();
    } finally {
      enableFusedDense();
    }
    expect(fusedLeft).toBeLessThanOrEqual(stockLeft);
    expect(numDataIds()).toBe(ids);
    tf.dispose([x, r]);
    model.dispose();
  });
});
