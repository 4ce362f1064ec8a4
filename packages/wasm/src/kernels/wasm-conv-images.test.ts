import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { CONV_IMAGES_MAX_PATCH_BYTES, convImagesEnabled, packedScratchBytes, setConvImagesEnabled, setPackedGemmEnabled } from "./wasm-gemm-split.js";
import { kernelThreadPool, setKernelThreadsEnabled } from "./kernel-threads.js";
import { values, size } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { directConvolutions, wasmKernelSuite } from "./kernel-suite.fixture.js";
import { expectNoLeaks, switchBackend as use } from "../testing.fixture.js";

interface Case {
  x: [number, number, number, number];
  f: [number, number, number, number];
  s: number | [number, number];
  pad: "same" | "valid" | number;
}

/** The registered Conv2DBackpropFilter on the active backend. */
function filterGrad(c: Case, seed: number): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor4d(values(size(c.x), seed), c.x);
    const dyShape = tf.backend_util.computeConv2DInfo(c.x, c.f, c.s, 1, c.pad).outShape;
    const dy = tf.tensor4d(values(size(dyShape), seed + 1), dyShape);
    const attrs = { strides: c.s, pad: c.pad, dataFormat: "NHWC", filterShape: c.f };
    return (tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor).dataSync().slice() as Float32Array;
  });
}

describe("convolutions image by image (convImages, col2imImages, filterGradImages) on fitloop's kernel threads (wasm)", () => {
  directConvolutions();
  wasmKernelSuite();

  const perImage: Case = { x: [7, 13, 13, 32], f: [3, 3, 32, 64], s: 1, pad: "valid" }; // the CNN's conv2
  const strided: Case = { x: [5, 9, 8, 12], f: [3, 2, 12, 10], s: [2, 1], pad: "same" };
  const large: Case = { x: [1, 66, 64, 8], f: [3, 3, 8, 16], s: 1, pad: "valid" };

  it("the filter gradient: partial sums per thread (added in part order), one thread, and whole-batch for images whose patches exceed CONV_IMAGES_MAX_PATCH_BYTES: all match cpu", async () => {
    expect(4 * 64 * 62 * 72, "the large case's patches per image").toBeGreaterThan(CONV_IMAGES_MAX_PATCH_BYTES);
    const all = [perImage, strided, large];
    await use("cpu");
    const want = all.map((c, i) => filterGrad(c, 80 + i));
    await use("wasm");
    expect(kernelThreadPool()?.ready(), "the kernel thread pool runs in Node with the threaded build").toBe(true);
    const split = all.map((c, i) => filterGrad(c, 80 + i));
    split.forEach((g, i) => expectClose(g, want[i]!, JSON.stringify(all[i]), 1e-5));
    setKernelThreadsEnabled(false);
    try {
      all.forEach((c, i) => expectClose(filterGrad(c, 80 + i), want[i]!, `one thread ${JSON.stringify(c)}`, 1e-5));
    } finally {
      setKernelThreadsEnabled(true);
    }
    // the same inputs give the same bits again (parts are added in a fixed order)
    expect(Array.from(filterGrad(perImage, 80))).toEqual(Array.from(split[0]!));
  });

  it("setConvImagesEnabled(false): forward, input and filter gradients take the whole-batch paths and match cpu; on again, the same", async () => {
    const c = perImage;
    const run = (seed: number): Float32Array[] =>
      tf.tidy(() => {
        const x = tf.tensor4d(values(size(c.x), seed), c.x);
        const w = tf.tensor4d(values(size(c.f), seed + 1), c.f);
        const b = tf.tensor1d(values(c.f[3], seed + 2));
        const y = tf.fused.conv2d({ x, filter: w, bias: b, activation: "relu", strides: c.s, pad: c.pad });
        const attrs = { strides: c.s, pad: c.pad, dataFormat: "NHWC", inputShape: c.x };
        const dx = tf.engine().runKernel("Conv2DBackpropInput", { dy: y, filter: w }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
        return [y.dataSync().slice() as Float32Array, dx.dataSync().slice() as Float32Array, filterGrad(c, seed)];
      });
    await use("cpu");
    const want = run(50);
    await use("wasm");
    expect(convImagesEnabled()).toBe(true);
    setConvImagesEnabled(false);
    try {
      run(50).forEach((g, i) => expectClose(g, want[i]!, `whole batch, output ${i}`, 1e-5));
    } finally {
      setConvImagesEnabled(true);
    }
    run(50).forEach((g, i) => expectClose(g, want[i]!, `image by image, output ${i}`, 1e-5));
  });

  it("an empty batch gives a zero filter gradient; a packed filter above the cap and the round-5 GEMM take the whole-batch paths: all match cpu", async () => {
    const empty: Case = { x: [0, 13, 13, 32], f: [3, 3, 32, 64], s: 1, pad: "valid" };
    const bigFilter: Case = { x: [2, 4, 4, 256], f: [3, 3, 256, 128], s: 1, pad: "same" }; // packed W: 1.18 MB
    expect(packedScratchBytes(128, 3 * 3 * 256)).toBeGreaterThan(CONV_IMAGES_MAX_PATCH_BYTES);
    await use("wasm");
    const poisoned = tf.fill([1 << 16], Number.NaN); // leave NaN in freed heap memory
    poisoned.dispose();
    expect(Array.from(filterGrad(empty, 1)).every((v) => v === 0)).toBe(true);
    await use("cpu");
    const want = [filterGrad(bigFilter, 2), filterGrad(perImage, 3)];
    await use("wasm");
    expectClose(filterGrad(bigFilter, 2), want[0]!, "packed filter above the cap", 1e-5);
    setPackedGemmEnabled(false);
    try {
      expectClose(filterGrad(perImage, 3), want[1]!, "round-5 GEMM", 1e-5);
    } finally {
      setPackedGemmEnabled(true);
    }
  });

  it("does not leak tensors", async () => {
    await expectNoLeaks(() => {
      filterGrad(perImage, 3);
      filterGrad(strided, 4);
    });
  });
});
