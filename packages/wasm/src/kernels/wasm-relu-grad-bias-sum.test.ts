import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-wasm";
import { registerWasmKernels } from "./index.js";
import { CONV_FILTER_GRAD_RELU } from "./wasm-conv-filter-grad-relu.js";
import { RELU_GRAD, RELU_GRAD_BIAS_SUM, RELU_GRAD_BIAS_SUM_MIN_SPLIT_BYTES, reluGradBiasSumFused } from "./wasm-relu-grad.js";
import { kernelThreadPool, setKernelThreadsEnabled } from "./kernel-threads.js";
import { values, size } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { wasmKernelSuite } from "./kernel-suite.fixture.js";
import { expectNoLeaks, profiledGrads, switchBackend as use, useTestBackend } from "../testing.fixture.js";

/** y with zeros, -0, NaN and negatives among positive values (relu outputs and worse). */
function inputs(shape: number[], seed: number): { dy: tf.Tensor; y: tf.Tensor } {
  const y = values(size(shape), seed);
  for (let i = 0; i < y.length; i += 7) y[i] = 0;
  for (let i = 3; i < y.length; i += 11) y[i] = -0;
  if (y.length > 20) y[17] = NaN;
  return { dy: tf.tensor(values(size(shape), seed + 1), shape), y: tf.tensor(y, shape) };
}

function fused(dy: tf.Tensor, y: tf.Tensor): [Float32Array, Float32Array] {
  const [dz, db] = tf.engine().runKernel(RELU_GRAD_BIAS_SUM, { dy, x: y }, {}) as unknown as [tf.Tensor, tf.Tensor];
  const out: [Float32Array, Float32Array] = [dz.dataSync().slice() as Float32Array, db.dataSync().slice() as Float32Array];
  tf.dispose([dz, db]);
  return out;
}

/** dz from FitloopReluGrad (the separate kernel) and db as the float64 column sum of it. */
function reference(dy: tf.Tensor, y: tf.Tensor): [Float32Array, Float32Array] {
  const dzT = tf.engine().runKernel(RELU_GRAD, { dy, x: y }, {}) as unknown as tf.Tensor;
  const dz = dzT.dataSync().slice() as Float32Array;
  dzT.dispose();
  const ch = y.shape[y.shape.length - 1]!;
  const acc = new Float64Array(ch);
  dz.forEach((v, i) => (acc[i % ch]! += v));
  return [dz, Float32Array.from(acc)];
}

describe("FitloopReluGradBiasSum: dz = dy * step(y) and its channel sums in one pass (wasm)", () => {
  wasmKernelSuite();

  it.each([
    ["the CNN's first layer (split over the kernel threads)", [64, 26, 26, 32]],
    ["rows not a multiple of 4, one thread", [3, 5, 5, 8]],
    ["rank 2, 7 rows", [7, 4]],
    ["channels not a multiple of 4 (the JS path)", [2, 3, 6]],
  ])("%s %j: dz bit for bit as FitloopReluGrad, db within float32 rounding of the float64 sum", (_name, shape) => {
    const { dy, y } = inputs(shape as number[], 21);
    const [dz, db] = fused(dy, y);
    const [dzRef, dbRef] = reference(dy, y);
    expect(Array.from(dz)).toEqual(Array.from(dzRef));
    const ch = (shape as number[]).at(-1)!;
    const nanChannel = size(shape as number[]) > 20 ? 17 % ch : -1;
    for (let c = 0; c < ch; c++) {
      if (c === nanChannel) expect(db[c]).toBeNaN();
      else expect(Math.abs(db[c]! - dbRef[c]!), `channel ${c}`).toBeLessThanOrEqual(Math.abs(dbRef[c]!) * 2 ** -23 + 1e-30);
    }
    tf.dispose([dy, y]);
  });

  it("splits only from RELU_GRAD_BIAS_SUM_MIN_SPLIT_BYTES, and gives the same dz with or without kernel threads", () => {
    expect(kernelThreadPool()?.ready(), "the kernel thread pool runs in Node with the threaded build").toBe(true);
    const shape = [64, 26, 26, 32];
    expect(12 * size(shape)).toBeGreaterThanOrEqual(RELU_GRAD_BIAS_SUM_MIN_SPLIT_BYTES);
    const { dy, y } = inputs(shape, 5);
    const [dzSplit, dbSplit] = fused(dy, y);
    setKernelThreadsEnabled(false);
    const [dzOne, dbOne] = fused(dy, y);
    setKernelThreadsEnabled(true);
    expect(Array.from(dzSplit)).toEqual(Array.from(dzOne));
    expect(Number.isNaN(dbSplit[17 % 32]!) && Number.isNaN(dbOne[17 % 32]!), "the NaN channel stays NaN").toBe(true);
    const finite = (v: Float32Array): Float32Array => v.map((x) => (Number.isNaN(x) ? 0 : x));
    expectClose(finite(dbSplit), finite(dbOne), "db split vs one thread", 1e-6);
    expect(reluGradBiasSumFused(tf.backend(), 32)).toBe(true);
    expect(reluGradBiasSumFused(tf.backend(), 6)).toBe(false);
    tf.dispose([dy, y]);
  });

  it("does not leak tensors or wasm memory", async () => {
    const { dy, y } = inputs([64, 26, 26, 32], 9);
    await expectNoLeaks(() => {
      for (let i = 0; i < 3; i++) fused(dy, y);
    });
    tf.dispose([dy, y]);
  });
});

/** Two conv layers with bias + relu (filters 32 and 8: channels multiples of 4), flatten, dense. */
function model(): tfl.Sequential {
  const m = tfl.sequential();
  m.add(tfl.layers.conv2d({ inputShape: [9, 9, 1], filters: 32, kernelSize: 3, activation: "relu" }));
  m.add(tfl.layers.conv2d({ filters: 8, kernelSize: 3, activation: "relu" }));
  m.add(tfl.layers.flatten());
  m.add(tfl.layers.dense({ units: 3 }));
  m.setWeights(m.getWeights().map((w, i) => tf.tensor(values(w.size, 700 + i, 0.5), w.shape)));
  return m;
}

describe("conv + bias + relu layers take the one-pass bias gradient outside an outer tape (wasm)", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
    registerWasmKernels();
  });
  afterAll(async () => {
    await use("wasm");
  });

  it("a training step's gradients match cpu, with FitloopReluGradBiasSum (or, on the data, the fused filter gradient) and no separate bias Sum", async () => {
    const grads = async (): Promise<{ g: Float32Array[]; kernels: string[] }> => {
      const m = model();
      const x = tf.tensor4d(values(4 * 81, 31), [4, 9, 9, 1]);
      const y = tf.tensor2d(values(12, 32), [4, 3]);
      const { g, kernels, shapes } = await profiledGrads(() => tf.losses.meanSquaredError(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
      tf.dispose([x, y]);
      m.dispose();
      return { g, kernels: kernels.map((k, i) => (k === "Sum" && shapes[i]!.length === 4 ? `Sum [${shapes[i]!.join(",")}]` : k)) };
    };
    await use("cpu");
    const expected = await grads();
    await use("wasm");
    const got = await grads();
    got.g.forEach((g, i) => expectClose(g, expected.g[i]!, `gradient ${i}`, 1e-4));
    // the second layer: FitloopReluGradBiasSum; the first (on the data): the ReLU gradient folded into its filter gradient
    expect(got.kernels.filter((k) => k === RELU_GRAD_BIAS_SUM)).toHaveLength(1);
    expect(got.kernels.filter((k) => k === CONV_FILTER_GRAD_RELU)).toHaveLength(1);
    expect(got.kernels).not.toContain(RELU_GRAD);
    expect(got.kernels.filter((k) => k.startsWith("Sum ["))).toEqual([]); // the loss's own Sum is over rank-2 values
  });

  it("under an outer tape (a gradient of a gradient) it keeps ReluGrad + Sum, both differentiable, and matches cpu", async () => {
    const secondOrder = (): { value: Float32Array; kernels: string[] } => {
      const m = model();
      const x0 = tf.tensor4d(values(2 * 81, 41), [2, 9, 9, 1]);
      const names: string[] = [];
      const g = tf.grad((x: tf.Tensor) => {
        const inner = tf.grad((x2: tf.Tensor) => tf.sum(tf.square(m.apply(x2, { training: true }) as tf.Tensor)))(x);
        return tf.sum(tf.square(inner));
      })(x0);
      const value = g.dataSync().slice() as Float32Array;
      tf.dispose([g, x0]);
      m.dispose();
      return { value, kernels: names };
    };
    await use("cpu");
    const expected = secondOrder();
    await use("wasm");
    let got: { value: Float32Array; kernels: string[] } | undefined;
    const info = await tf.profile(() => {
      got = secondOrder();
    });
    expectClose(got!.value, expected.value, "second-order gradient", 1e-3);
    const kernels = info.kernels.map((k) => k.name);
    // the inner backward (under the outer tape) ran ReluGrad; the outer backward, under no tape, may fuse
    expect(kernels).toContain(RELU_GRAD);
  });
});
