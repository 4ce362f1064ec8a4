import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { directConvolutions, wasmKernelSuite } from "./kernel-suite.fixture.js";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { values, size } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { CONV_IMAGES_MAX_PATCH_BYTES, im2colConv2D, IM2COL_CONV_MAX_TAPS, setIm2colConvEnabled } from "./wasm-conv2d-im2col.js";
import { gemmSimd, type EmscriptenWasm } from "./simd/index.js";
import { kernelThreadPool, setKernelThreadsEnabled } from "./kernel-threads.js";
import { expectNoLeaks, useTestBackend } from "../testing.fixture.js";

async function use(name: "cpu" | "wasm"): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`setBackend(${name}) failed`);
  await tf.ready();
}

type Case = {
  x: [number, number, number, number];
  f: [number, number, number, number];
  strides: number | [number, number];
  pad: "same" | "valid" | number;
  dilations?: number;
  rounding?: "floor" | "ceil" | "round";
  bias?: boolean;
  activation?: "linear" | "relu";
};

const inputs = (c: Case, i: number) => ({
  x: tf.tensor4d(values(size(c.x), 40 + i), c.x),
  filter: tf.tensor4d(values(size(c.f), 90 + i), c.f),
  bias: c.bias ? tf.tensor1d(values(c.f[3], 300 + i)) : undefined,
});

function conv(c: Case, i: number): Float32Array {
  return tf.tidy(() => {
    const { x, filter, bias } = inputs(c, i);
    const y = c.bias || c.activation
      ? tf.fused.conv2d({ x, filter, strides: c.strides, pad: c.pad, dilations: c.dilations ?? 1, dimRoundingMode: c.rounding, bias, activation: c.activation ?? "linear" })
      : tf.conv2d(x, filter, c.strides, c.pad, "NHWC", c.dilations ?? 1, c.rounding);
    return y.dataSync().slice() as Float32Array;
  });
}

const CASES: Case[] = [
  { x: [64, 28, 28, 1], f: [3, 3, 1, 32], strides: 1, pad: "valid" }, // the CNN's first layer
  { x: [2, 9, 7, 1], f: [3, 3, 1, 33], strides: 1, pad: "same" },
  { x: [3, 10, 9, 3], f: [3, 3, 3, 36], strides: 2, pad: "same" }, // 27 taps
  { x: [1, 11, 11, 2], f: [2, 3, 2, 37], strides: [2, 1], pad: "valid" },
  { x: [2, 12, 10, 1], f: [5, 5, 1, 40], strides: 1, pad: 2 },
  { x: [2, 13, 13, 1], f: [3, 3, 1, 32], strides: 1, pad: "valid", dilations: 2 },
  { x: [2, 9, 9, 1], f: [3, 3, 1, 34], strides: 2, pad: 1, rounding: "ceil" },
  { x: [2, 8, 8, 1], f: [3, 3, 1, 35], strides: 1, pad: "same", bias: true, activation: "relu" },
  { x: [2, 8, 8, 2], f: [1, 1, 2, 64], strides: 1, pad: "valid", bias: true },
  // from 8 input channels: patches in x's NHWC order (im2colNhwc), with padding, strides, dilation
  { x: [2, 7, 6, 8], f: [1, 1, 8, 32], strides: 1, pad: "valid", bias: true, activation: "relu" },
  { x: [3, 9, 8, 9], f: [3, 1, 9, 33], strides: [2, 1], pad: "same" },
  { x: [2, 10, 9, 13], f: [2, 1, 13, 32], strides: 1, pad: 1, dilations: 2, bias: true },
];

describe("forward convolution with few taps as im2col + SIMD GEMM (wasm) against cpu", () => {
  directConvolutions();
  wasmKernelSuite();
  afterAll(async () => {
    setIm2colConvEnabled(true);
    await use("wasm");
  });

  it.each(CASES.map((c, i) => [JSON.stringify(c), c, i] as const))("%s", async (_name, c, i) => {
    await use("cpu");
    const expected = conv(c, i);
    await use("wasm");
    // the path itself applies to this case
    tf.tidy(() => {
      const { x, filter, bias } = inputs(c, i);
      const out = im2colConv2D({ inputs: bias ? { x, filter, bias } : { x, filter }, backend: tf.backend(), attrs: { strides: c.strides, pad: c.pad, dilations: c.dilations ?? 1, ...(c.rounding ? { dimRoundingMode: c.rounding } : {}), dataFormat: "NHWC", activation: c.activation ?? "linear" } }, bias ? "FusedConv2D" : "Conv2D");
      expect(out, "im2col path applies").toBeDefined();
      tf.backend().disposeData(out!.dataId);
    });
    expectClose(conv(c, i), expected, JSON.stringify(c), 1e-5);
  });

  it("leaves more taps, fewer output channels, NCHW and other activations to XNNPACK", () => {
    tf.tidy(() => {
      const backend = tf.backend();
      const x = tf.zeros([1, 6, 6, 4]);
      const many = tf.zeros([3, 3, 4, 2]); // 36 taps
      expect(3 * 3 * 4).toBeGreaterThan(IM2COL_CONV_MAX_TAPS);
      expect(im2colConv2D({ inputs: { x, filter: many }, backend, attrs: { strides: 1, pad: "valid" } }, "Conv2D")).toBeUndefined();
      const few = tf.zeros([3, 3, 1, 32]);
      expect(im2colConv2D({ inputs: { x: tf.zeros([1, 6, 6, 1]), filter: tf.zeros([3, 3, 1, 31]) }, backend, attrs: { strides: 1, pad: "valid" } }, "Conv2D")).toBeUndefined();
      const x1 = tf.zeros([1, 6, 6, 1]);
      expect(im2colConv2D({ inputs: { x: x1, filter: few }, backend, attrs: { strides: 1, pad: "valid", dataFormat: "NCHW" } }, "Conv2D")).toBeUndefined();
      expect(im2colConv2D({ inputs: { x: x1, filter: few }, backend, attrs: { strides: 1, pad: "valid", activation: "elu" } }, "FusedConv2D")).toBeUndefined();
      setIm2colConvEnabled(false);
      expect(im2colConv2D({ inputs: { x: x1, filter: few }, backend, attrs: { strides: 1, pad: "valid" } }, "Conv2D")).toBeUndefined();
      setIm2colConvEnabled(true);
    });
  });

  it("with fitloop's kernel threads, many taps too (the CNN's conv2, 288 taps, bias + relu): matches cpu; without them XNNPACK", async () => {
    const c: Case = { x: [8, 13, 13, 32], f: [3, 3, 32, 64], strides: 1, pad: "valid", bias: true, activation: "relu" };
    await use("cpu");
    const expected = conv(c, 7);
    await use("wasm");
    const direct = (): boolean =>
      tf.tidy(() => {
        const { x, filter, bias } = inputs(c, 7);
        const out = im2colConv2D({ inputs: { x, filter, bias: bias! }, backend: tf.backend(), attrs: { strides: 1, pad: "valid", dilations: 1, dataFormat: "NHWC", activation: "relu" } }, "FusedConv2D");
        if (out) tf.backend().disposeData(out.dataId);
        return out !== undefined;
      });
    expect(kernelThreadPool()?.ready(), "the kernel thread pool runs in Node with the threaded build").toBe(true);
    expect(direct(), "im2col path with kernel threads").toBe(true);
    expectClose(conv(c, 7), expected, "288 taps", 1e-5);
    setKernelThreadsEnabled(false);
    try {
      expect(direct(), "XNNPACK without kernel threads").toBe(false);
      expectClose(conv(c, 7), expected, "288 taps on XNNPACK", 1e-5);
    } finally {
      setKernelThreadsEnabled(true);
    }
  });

  it("image by image (convImages) with kernel threads and on one thread, whole-batch im2col for images whose patches exceed CONV_IMAGES_MAX_PATCH_BYTES: all match cpu", async () => {
    const small: Case = { x: [7, 6, 5, 16], f: [3, 3, 16, 40], strides: 1, pad: "same", bias: true, activation: "relu" };
    const large: Case = { x: [1, 66, 64, 8], f: [3, 3, 8, 32], strides: 1, pad: "valid" };
    expect(4 * 64 * 62 * 72, "the large case's patches per image").toBeGreaterThan(CONV_IMAGES_MAX_PATCH_BYTES);
    await use("cpu");
    const [es, el] = [conv(small, 3), conv(large, 4)];
    await use("wasm");
    expectClose(conv(small, 3), es, "per image, split", 1e-5);
    expectClose(conv(large, 4), el, "whole batch", 1e-5);
    setKernelThreadsEnabled(false);
    try {
      const [fewTaps] = [{ ...small, f: [1, 1, 16, 40] as [number, number, number, number] }];
      await use("cpu");
      const ef = conv(fewTaps, 5);
      await use("wasm");
      expectClose(conv(fewTaps, 5), ef, "per image, one thread", 1e-5);
    } finally {
      setKernelThreadsEnabled(true);
    }
  });

  it("gradients of a first conv layer match cpu through the registered kernels", async () => {
    const c: Case = { x: [4, 12, 12, 1], f: [3, 3, 1, 32], strides: 1, pad: "same" };
    const grads = (): Float32Array[] =>
      tf.tidy(() => {
        const { x, filter } = inputs(c, 7);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.relu(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same")))))([x, filter]);
        return g.map((t) => t.dataSync().slice() as Float32Array);
      });
    await use("cpu");
    const expected = grads();
    await use("wasm");
    grads().forEach((g, i) => expectClose(g, expected[i]!, `grad ${i}`, 1e-5));
  });

  it("does not leak tensors or wasm memory", async () => {
    const { x, filter } = inputs(CASES[0]!, 0);
    const perImage = inputs({ x: [7, 6, 5, 16], f: [3, 3, 16, 40], strides: 1, pad: "same", bias: true }, 1); // convImages, split
    await expectNoLeaks(() => {
      for (let i = 0; i < 5; i++) tf.conv2d(x, filter, 1, "valid").dispose();
      for (let i = 0; i < 5; i++) tf.fused.conv2d({ x: perImage.x, filter: perImage.filter, bias: perImage.bias, activation: "relu", pad: "same", strides: 1 }).dispose();
    });
    tf.dispose([x, filter, perImage.x, perImage.filter, perImage.bias!]);
  });
});

describe("gemm.wat in K blocks (gemmKc) equals the unblocked sum, bit for bit", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
  });

  it.each([
    [9, 5000, 32, 512],
    [7, 1000, 13, 100],
    [5, 333, 9, 16],
    [64, 784, 256, 0],
  ] as const)("M=%i K=%i N=%i kc=%i", (m, k, n, kc) => {
    const backend = tf.backend() as unknown as { wasm: EmscriptenWasm; dataIdMap: { get(id: object): { memoryOffset: number } } };
    const simd = gemmSimd(backend.wasm);
    expect(simd).toBeDefined();
    const a = tf.tensor2d(values(m * k, 1), [m, k]);
    const b = tf.tensor2d(values(k * n, 2), [k, n]);
    const blocked = tf.zeros([m, n]);
    const whole = tf.zeros([m, n]);
    const byDefault = tf.fill([m, n], 7);
    const p = (t: tf.Tensor): number => backend.dataIdMap.get(t.dataId).memoryOffset;
    simd!.exports.gemmKc(p(a), 4 * k, 4, p(b), 4 * n, p(blocked), 4 * n, m, n, k, kc);
    simd!.exports.gemmKc(p(a), 4 * k, 4, p(b), 4 * n, p(whole), 4 * n, m, n, k, k);
    simd!.exports.gemm(p(a), 4 * k, 4, p(b), 4 * n, p(byDefault), 4 * n, m, n, k);
    expect(Array.from(blocked.dataSync())).toEqual(Array.from(whole.dataSync()));
    expect(Array.from(byDefault.dataSync())).toEqual(Array.from(whole.dataSync()));
    const ref = tf.matMul(a, b);
    expectClose(whole.dataSync(), ref.dataSync(), "vs tf.matMul", 1e-5);
    tf.dispose([a, b, blocked, whole, byDefault, ref]);
  });
});
