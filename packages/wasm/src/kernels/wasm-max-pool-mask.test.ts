import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-wasm";
import { registerWasmKernels } from "./index.js";
import { disableMaxPoolMask, enableMaxPoolMask, isMaxPoolMaskEnabled, MAX_POOL_MASK, MAX_POOL_MASK_GRAD } from "./wasm-max-pool-mask.js";
import { setKernelThreadsEnabled } from "./kernel-threads.js";
import { values, size } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { expectNoLeaks, expectTrainingNoLeaks, profiledGrads, switchBackend as use, useTestBackend } from "../testing.fixture.js";

/** Values with ties, NaN, -Infinity, -0 and windows of only NaN/-Infinity, so the winner rule matters. */
function awkward(shape: number[], seed: number): tf.Tensor4D {
  const v = values(size(shape), seed).map((x) => Math.round(x * 3) / 3); // many ties
  for (let i = 0; i < v.length; i += 13) v[i] = Number.NaN;
  for (let i = 5; i < v.length; i += 17) v[i] = Number.NEGATIVE_INFINITY;
  for (let i = 7; i < v.length; i += 19) v[i] = -0;
  const c = shape[3]!;
  // the first window of channel 0: NaN, -inf, NaN, -inf (no winner)
  [0, c, shape[2]! * c, shape[2]! * c + c].forEach((o, k) => (v[o] = k % 2 ? Number.NEGATIVE_INFINITY : Number.NaN));
  return tf.tensor4d(v, shape as [number, number, number, number]);
}

/** y and dx of tf.maxPool 2x2/2 with dy (the stock path: MaxPool, MaxPoolGrad). */
function stock(x: tf.Tensor4D, dy: tf.Tensor4D): Float32Array[] {
  return tf.tidy(() => {
    const [y, dx] = [tf.maxPool(x, 2, 2, "valid"), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, 2, 2, "valid"), dy)))(x)];
    return [y.dataSync().slice() as Float32Array, dx.dataSync().slice() as Float32Array];
  });
}

function masked(x: tf.Tensor4D, dy: tf.Tensor4D): Float32Array[] {
  return tf.tidy(() => {
    const [y, mask] = tf.engine().runKernel(MAX_POOL_MASK, { x }, { inShape: x.shape } as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
    const dx = tf.engine().runKernel(MAX_POOL_MASK_GRAD, { dy, mask: mask! }, { inShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor;
    return [y!.dataSync().slice() as Float32Array, dx.dataSync().slice() as Float32Array];
  });
}

describe("FitloopMaxPool2x2Mask: 2x2 max pooling that keeps its winners, and its gradient from them (wasm)", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
    registerWasmKernels();
  });
  afterAll(async () => {
    setKernelThreadsEnabled(true);
    enableMaxPoolMask();
    await use("wasm");
  });

  it.each([
    ["the CNN's first pooling (split over the kernel threads)", [64, 26, 26, 32]],
    ["odd height and width (the last row and column in no window)", [3, 11, 9, 8]],
    ["4 channels, one image", [1, 4, 6, 4]],
  ])("%s %j: y and dx bit for bit as MaxPool + MaxPoolGrad on wasm, also on one thread", (_name, shape) => {
    const x = awkward(shape as number[], 3);
    const dy = tf.tensor4d(values(size(tf.backend_util.computePool2DInfo(x.shape, 2, 2, 1, "valid").outShape), 4).map((v, i) => (i % 11 === 0 ? -0 : v)), tf.backend_util.computePool2DInfo(x.shape, 2, 2, 1, "valid").outShape as [number, number, number, number]);
    const want = stock(x, dy);
    for (const threads of [true, false]) {
      setKernelThreadsEnabled(threads);
      const got = masked(x, dy);
      expect(Array.from(got[0]!), `y, threads ${threads}`).toEqual(Array.from(want[0]!));
      expect(Array.from(got[1]!).map((v) => Object.is(v, -0) ? "-0" : v), `dx, threads ${threads}`).toEqual(Array.from(want[1]!).map((v) => Object.is(v, -0) ? "-0" : v));
    }
    setKernelThreadsEnabled(true);
    tf.dispose([x, dy]);
  });

  it("rejects what it does not handle with a clear error", () => {
    const x = tf.zeros([1, 4, 4, 3]);
    expect(() => tf.engine().runKernel(MAX_POOL_MASK, { x }, { inShape: x.shape } as unknown as tf.NamedAttrMap)).toThrow(/multiple of 4/);
    const dy = tf.zeros([1, 2, 2, 4]);
    const mask = tf.zeros([3], "int32");
    expect(() => tf.engine().runKernel(MAX_POOL_MASK_GRAD, { dy, mask }, { inShape: [1, 4, 4, 4] } as unknown as tf.NamedAttrMap)).toThrow(/does not match/);
    tf.dispose([x, dy, mask]);
  });
});

describe("tfjs-layers' MaxPooling2D trains through the masked pooling (wasm)", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
    registerWasmKernels();
  });
  afterAll(async () => {
    enableMaxPoolMask();
    await use("wasm");
  });

  const model = (): tfl.Sequential => {
    const m = tfl.sequential();
    m.add(tfl.layers.conv2d({ inputShape: [12, 12, 1], filters: 8, kernelSize: 3, activation: "relu" }));
    m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
    m.add(tfl.layers.flatten());
    m.add(tfl.layers.dense({ units: 2 }));
    m.setWeights(m.getWeights().map((w, i) => tf.tensor(values(w.size, 300 + i, 0.5), w.shape)));
    return m;
  };

  it("gradients match cpu, the masked kernels run in training only, and disabling restores tfjs-layers' pooling", async () => {
    const grads = async (): Promise<{ g: Float32Array[]; kernels: string[] }> => {
      const m = model();
      const x = tf.tensor4d(values(4 * 144, 5), [4, 12, 12, 1]);
      const got = await profiledGrads(() => tf.sum(tf.square(m.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar);
      tf.dispose(x);
      m.dispose();
      return got;
    };
    await use("cpu");
    const want = await grads();
    await use("wasm");
    expect(isMaxPoolMaskEnabled()).toBe(true);
    const got = await grads();
    got.g.forEach((g, i) => expectClose(g, want.g[i]!, `gradient ${i}`, 1e-4));
    expect(got.kernels).toContain(MAX_POOL_MASK);
    expect(got.kernels).toContain(MAX_POOL_MASK_GRAD);
    expect(got.kernels).not.toContain("MaxPoolGrad");
    // outside a tape: tfjs-layers' own pooling
    const m = model();
    const outside = await tf.profile(() => tf.tidy(() => m.predict(tf.ones([1, 12, 12, 1])) as tf.Tensor).dispose());
    expect(outside.kernels.map((k) => k.name)).not.toContain(MAX_POOL_MASK);
    m.dispose();
    disableMaxPoolMask();
    expect(isMaxPoolMaskEnabled()).toBe(false);
    const off = await grads();
    expect(off.kernels).toContain("MaxPoolGrad");
    off.g.forEach((g, i) => expectClose(g, want.g[i]!, `gradient ${i}, disabled`, 1e-4));
    enableMaxPoolMask();
    enableMaxPoolMask(); // idempotent
    expect(isMaxPoolMaskEnabled()).toBe(true);
  });

  it("is one tape node whose only output is the pooled tensor (the mask is saved, so backprop makes it no gradient of zeros)", () => {
    const m = model();
    const x = tf.tensor4d(values(4 * 144, 7), [4, 12, 12, 1]);
    let outputsPerNode: number[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const y = tf.sum(tf.square(m.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar;
      const tape = (tf.engine().state as unknown as { activeTape: { outputs: tf.Tensor[] }[] }).activeTape;
      outputsPerNode = tape.map((node) => node.outputs.length);
      return y;
    });
    tf.dispose([value, ...Object.values(grads), x]);
    m.dispose();
    expect(outputsPerNode.length).toBeGreaterThan(3);
    expect(outputsPerNode.every((n) => n === 1), `outputs per tape node: ${outputsPerNode.join(", ")}`).toBe(true);
  });

  it("does not leak tensors over training steps", async () => {
    const m = model();
    const x = tf.tensor4d(values(4 * 144, 6), [4, 12, 12, 1]);
    await expectTrainingNoLeaks(m, x);
    tf.dispose(x);
    m.dispose();
  });
});
