import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-wasm";
import { registerWasmKernels } from "./index.js";
import { CONV_FILTER_GRAD_RELU, FILTER_GRAD_RELU_BLOCK_ROWS } from "./wasm-conv-filter-grad-relu.js";
import { RELU_GRAD } from "./wasm-relu-grad.js";
import { kernelThreadPool, setKernelThreadsEnabled } from "./kernel-threads.js";
import { values, size } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { wasmKernelSuite } from "./kernel-suite.fixture.js";
import { expectNoLeaks, expectTrainingNoLeaks, profiledGrads, switchBackend as use, useTestBackend } from "../testing.fixture.js";

interface Case {
  x: [number, number, number, number];
  f: [number, number, number, number];
  s: number;
  pad: "same" | "valid";
}

/** x, dy and y = relu(conv(x)) of a case (y with zeros, so the mask matters; a NaN when asked). */
function inputs(c: Case, seed: number, nan = false): { x: tf.Tensor4D; dy: tf.Tensor4D; y: tf.Tensor4D } {
  const x = tf.tensor4d(values(size(c.x), seed), c.x);
  const out = tf.backend_util.computeConv2DInfo(c.x, c.f, c.s, 1, c.pad).outShape as [number, number, number, number];
  const yv = values(size(out), seed + 1).map((v) => Math.max(v, 0));
  if (nan) yv[5] = Number.NaN;
  return { x, dy: tf.tensor4d(values(size(out), seed + 2), out), y: tf.tensor4d(yv, out) };
}

function fused(c: Case, seed: number, nan = false): Float32Array[] {
  return tf.tidy(() => {
    const { x, dy, y } = inputs(c, seed, nan);
    const outs = tf.engine().runKernel(CONV_FILTER_GRAD_RELU, { x, dy, y }, { strides: c.s, pad: c.pad, filterShape: c.f } as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
    expect(outs[0]!.shape).toEqual(c.f);
    return outs.map((t) => t.dataSync().slice() as Float32Array);
  });
}

/** The separate path: dz = FitloopReluGrad(dy, y), then Conv2DBackpropFilter and the channel sums of dz. */
function separate(c: Case, seed: number, nan = false): Float32Array[] {
  return tf.tidy(() => {
    const { x, dy, y } = inputs(c, seed, nan);
    const dz = tf.engine().runKernel(RELU_GRAD, { dy, x: y }, {}) as unknown as tf.Tensor;
    const dw = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy: dz }, { strides: c.s, pad: c.pad, dataFormat: "NHWC", filterShape: c.f } as unknown as tf.NamedAttrMap) as tf.Tensor;
    return [dw.dataSync().slice() as Float32Array, tf.sum(dz, [0, 1, 2]).dataSync().slice() as Float32Array];
  });
}

describe("FitloopConv2DReluFilterGrad: a first conv layer's filter and bias gradients with the ReLU gradient folded in (wasm)", () => {
  wasmKernelSuite();

  it.each<[string, Case]>([
    ["the CNN's first layer (pixels split over the threads, many blocks)", { x: [64, 28, 28, 1], f: [3, 3, 1, 32], s: 1, pad: "valid" }],
    ["'same' padding, stride 2, two input channels, a partial block", { x: [5, 9, 8, 2], f: [3, 3, 2, 8], s: 2, pad: "same" }],
    ["27 taps, 4 output channels", { x: [3, 12, 11, 3], f: [3, 3, 3, 4], s: 1, pad: "same" }],
  ])("%s: matches ReluGrad + Conv2DBackpropFilter + Sum, split and on one thread", (_name, c) => {
    expect(kernelThreadPool()?.ready(), "the kernel thread pool runs in Node with the threaded build").toBe(true);
    const want = separate(c, 7);
    const split = fused(c, 7);
    setKernelThreadsEnabled(false);
    let one: Float32Array[];
    try {
      one = fused(c, 7);
    } finally {
      setKernelThreadsEnabled(true);
    }
    for (const [got, what] of [[split, "split"], [one, "one thread"]] as const) {
      expectClose(got[0]!, want[0]!, `dW ${what}`, 1e-5);
      expectClose(got[1]!, want[1]!, `db ${what}`, 1e-5);
    }
    expect(Array.from(fused(c, 7)[0]!), "the same bits again").toEqual(Array.from(split[0]!));
  });

  it("spans several blocks of pixels, and a NaN in y reaches dW and db as with the separate path", () => {
    const c: Case = { x: [8, 26, 26, 1], f: [3, 3, 1, 8], s: 1, pad: "same" };
    expect(8 * 26 * 26).toBeGreaterThan(4 * FILTER_GRAD_RELU_BLOCK_ROWS);
    const [got, want] = [fused(c, 3, true), separate(c, 3, true)];
    expect(Array.from(got[0]!).some(Number.isNaN)).toBe(true);
    const nans = (v: Float32Array): boolean[] => Array.from(v, Number.isNaN);
    expect(nans(got[0]!)).toEqual(nans(want[0]!));
    expect(nans(got[1]!)).toEqual(nans(want[1]!));
  });

  it("an empty batch gives zeros", () => {
    const poisoned = tf.fill([1 << 16], Number.NaN); // leave NaN in freed heap memory
    poisoned.dispose();
    const [dw, db] = fused({ x: [0, 28, 28, 1], f: [3, 3, 1, 32], s: 1, pad: "valid" }, 4);
    expect(Array.from(dw!).every((v) => v === 0) && Array.from(db!).every((v) => v === 0)).toBe(true);
  });

  it("rejects inputs it does not handle with a clear error", () => {
    const { x, dy, y } = inputs({ x: [2, 6, 6, 1], f: [3, 3, 1, 6], s: 1, pad: "valid" }, 1);
    expect(() => tf.engine().runKernel(CONV_FILTER_GRAD_RELU, { x, dy, y }, { strides: 1, pad: "valid", filterShape: [3, 3, 1, 6] } as unknown as tf.NamedAttrMap)).toThrow(/multiple of 4/);
    expect(() => tf.engine().runKernel(CONV_FILTER_GRAD_RELU, { x, dy, y }, { strides: 1, pad: "same", filterShape: [3, 3, 1, 8] } as unknown as tf.NamedAttrMap)).toThrow(/output's shape/);
    tf.dispose([x, dy, y]);
  });

  it("does not leak tensors", async () => {
    await expectNoLeaks(() => {
      fused({ x: [4, 14, 14, 1], f: [3, 3, 1, 16], s: 1, pad: "valid" }, 2);
    });
  });
});

describe("a first conv layer (bias + relu) on the data trains through it, and a gradient with respect to the input still works (wasm)", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
    registerWasmKernels();
  });

  const model = (): tfl.Sequential => {
    const m = tfl.sequential();
    m.add(tfl.layers.conv2d({ inputShape: [10, 10, 1], filters: 8, kernelSize: 3, activation: "relu" }));
    m.add(tfl.layers.conv2d({ filters: 4, kernelSize: 3, activation: "relu" }));
    m.add(tfl.layers.flatten());
    m.add(tfl.layers.dense({ units: 2 }));
    m.setWeights(m.getWeights().map((w, i) => tf.tensor(values(w.size, 900 + i, 0.5), w.shape)));
    return m;
  };
  const x0 = (): tf.Tensor => tf.tensor4d(values(3 * 100, 77), [3, 10, 10, 1]);

  it("weight gradients match cpu and the first layer uses the fused kernel", async () => {
    const run = async (): Promise<{ g: Float32Array[]; kernels: string[] }> => {
      const m = model();
      const x = x0();
      const got = await profiledGrads(() => tf.sum(tf.square(m.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar);
      tf.dispose(x);
      m.dispose();
      return got;
    };
    await use("cpu");
    const want = await run();
    await use("wasm");
    const got = await run();
    got.g.forEach((g, i) => expectClose(g, want.g[i]!, `gradient ${i}`, 1e-4));
    expect(got.kernels.filter((k) => k === CONV_FILTER_GRAD_RELU)).toHaveLength(1);
  });

  it("the gradient with respect to the input (an adversarial example's) matches cpu", async () => {
    const run = (): Float32Array => {
      const m = model();
      const x = x0();
      const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.square(m.apply(xx, { training: true }) as tf.Tensor)))(x);
      const out = g.dataSync().slice() as Float32Array;
      tf.dispose([g, x]);
      m.dispose();
      return out;
    };
    await use("cpu");
    const want = run();
    await use("wasm");
    expectClose(run(), want, "d loss / d input", 1e-4);
  });

  it("does not leak tensors over training steps", async () => {
    const m = model();
    const x = x0();
    await expectTrainingNoLeaks(m, x);
    tf.dispose(x);
    m.dispose();
  });
});
