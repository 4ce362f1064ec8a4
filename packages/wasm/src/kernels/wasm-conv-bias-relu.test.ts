import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-wasm";
import { CONV_BIAS_RELU, disableConvBiasRelu, enableConvBiasRelu, isConvBiasReluEnabled, registerWasmKernels } from "./index.js";
import { values, size } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { expectNoLeaks, useTestBackend } from "../testing.fixture.js";

async function use(name: "cpu" | "wasm"): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`setBackend(${name}) failed`);
  await tf.ready();
}

interface Spec {
  input: [number, number, number];
  filters: number;
  kernelSize: number;
  strides?: number;
  padding?: "valid" | "same";
  activation?: "relu" | "linear";
}

/** conv -> conv (the second conv's input gradient is needed) -> dense, deterministic weights. */
function build(a: Spec, b: Spec): tfl.Sequential {
  const m = tfl.sequential();
  m.add(tfl.layers.conv2d({ inputShape: a.input, filters: a.filters, kernelSize: a.kernelSize, strides: a.strides ?? 1, padding: a.padding ?? "valid", activation: a.activation ?? "relu" }));
  m.add(tfl.layers.conv2d({ filters: b.filters, kernelSize: b.kernelSize, strides: b.strides ?? 1, padding: b.padding ?? "valid", activation: b.activation ?? "relu" }));
  m.add(tfl.layers.flatten());
  m.add(tfl.layers.dense({ units: 3 }));
  m.setWeights(m.getWeights().map((w, i) => tf.tensor(values(w.size, 500 + i, 0.5), w.shape)));
  return m;
}

/** Weights after 3 SGD steps and the profiled kernel names of one step. */
async function train(a: Spec, b: Spec): Promise<{ weights: Float32Array[]; kernels: string[] }> {
  const model = build(a, b);
  const x = tf.tensor4d(values(4 * size(a.input), 11), [4, ...a.input]);
  const y = tf.tensor2d(values(12, 12), [4, 3]);
  const opt = tf.train.sgd(0.05);
  const step = (): void => {
    tf.tidy(() => {
      const { grads } = opt.computeGradients(() => tf.losses.meanSquaredError(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
      opt.applyGradients(grads);
    });
  };
  const info = await tf.profile(step);
  step();
  step();
  const weights = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
  tf.dispose([x, y]);
  model.dispose();
  opt.dispose();
  return { weights, kernels: info.kernels.map((k) => k.name) };
}

const CASES: [string, Spec, Spec][] = [
  ["valid 3x3, first layer one channel", { input: [9, 9, 1], filters: 32, kernelSize: 3 }, { input: [7, 7, 32], filters: 8, kernelSize: 3 }],
  ["same padding, stride 2", { input: [10, 10, 3], filters: 6, kernelSize: 3, padding: "same", strides: 2 }, { input: [5, 5, 6], filters: 5, kernelSize: 2, padding: "same" }],
  ["second layer linear (tfjs-layers' own path)", { input: [8, 8, 2], filters: 4, kernelSize: 3 }, { input: [6, 6, 4], filters: 3, kernelSize: 3, activation: "linear" }],
];

describe("Conv2D with bias and ReLU in training as one fused kernel (wasm) against cpu", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
    registerWasmKernels();
  });
  afterAll(async () => {
    enableConvBiasRelu();
    await use("wasm");
  });

  it.each(CASES)("%s: weights after 3 SGD steps match cpu", async (_name, a, b) => {
    await use("cpu");
    const expected = await train(a, b);
    await use("wasm");
    const got = await train(a, b);
    got.weights.forEach((w, i) => expectClose(w, expected.weights[i]!, `weight ${i}`, 1e-4));
    const fusedLayers = [a, b].filter((s) => (s.activation ?? "relu") === "relu").length;
    expect(got.kernels.filter((k) => k === CONV_BIAS_RELU)).toHaveLength(fusedLayers);
    if (fusedLayers === 2) expect(got.kernels).not.toContain("Relu");
    expect(expected.kernels).not.toContain(CONV_BIAS_RELU); // cpu keeps tfjs-layers' path
  });

  it("computes no input gradient for the first layer (gradients are lazy)", async () => {
    await use("wasm");
    const got = await train(CASES[0]![1], CASES[0]![2]);
    // one Conv2DBackpropInput: the second layer's; the first layer's input needs no gradient
    expect(got.kernels.filter((k) => k === "Conv2DBackpropInput")).toHaveLength(1);
  });

  it("runs tfjs-layers' own code outside a tape, and when disabled", async () => {
    await use("wasm");
    const model = build(CASES[0]![1], CASES[0]![2]);
    const x = tf.ones([1, 9, 9, 1]);
    const outside = await tf.profile(() => tf.tidy(() => model.predict(x) as tf.Tensor).dispose());
    expect(outside.kernels.map((k) => k.name)).not.toContain(CONV_BIAS_RELU);
    expect(isConvBiasReluEnabled()).toBe(true);
    disableConvBiasRelu();
    expect(isConvBiasReluEnabled()).toBe(false);
    const off = await train(CASES[0]![1], CASES[0]![2]);
    expect(off.kernels).not.toContain(CONV_BIAS_RELU);
    expect(off.kernels).toContain("Relu");
    enableConvBiasRelu();
    enableConvBiasRelu(); // idempotent
    expect(isConvBiasReluEnabled()).toBe(true);
    tf.dispose(x);
    model.dispose();
  });

  it("does not leak tensors or wasm memory over training steps", async () => {
    await use("wasm");
    const model = build(CASES[0]![1], CASES[0]![2]);
    const x = tf.tensor4d(values(4 * 81, 3), [4, 9, 9, 1]);
    const y = tf.zeros([4, 3]);
    const opt = tf.train.sgd(0.01);
    const step = (): void =>
      tf.tidy(() => {
        const { grads } = opt.computeGradients(() => tf.losses.meanSquaredError(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
        opt.applyGradients(grads);
      });
    step();
    await expectNoLeaks(() => {
      for (let i = 0; i < 5; i++) step();
    });
    tf.dispose([x, y]);
    model.dispose();
    opt.dispose();
  });
});
