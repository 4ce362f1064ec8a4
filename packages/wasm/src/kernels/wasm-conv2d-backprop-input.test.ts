import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { directConvolutions } from "./kernel-suite.fixture.js";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { COL2IM_MAX_SCRATCH, inputGradPath, planInputGradGemm, registerWasmKernels, setCol2imInputGradEnabled, type InputGradPath } from "./index.js";
import { setSimdKernelsEnabled } from "./simd/index.js";
import { CONV_IMAGES_MAX_PATCH_BYTES } from "./wasm-conv2d-im2col.js";
import { kernelThreadPool, setKernelThreadsEnabled } from "./kernel-threads.js";
import { values, size } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import type { ConvCase, Pad } from "./conv-case.fixture.js";
import { expectNoLeaks, useTestBackend } from "../testing.fixture.js";

type Case = ConvCase;

async function use(name: "cpu" | "wasm"): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`setBackend(${name}) failed`);
  await tf.ready();
}

const dyShapeOf = (c: Case): number[] => tf.backend_util.computeConv2DInfo([c.b, c.h, c.w, c.ci], [c.fh, c.fw, c.ci, c.co], c.s, 1, c.pad, c.rounding).outShape;
const attrsOf = (c: Case) => ({ strides: c.s, pad: c.pad, dataFormat: "NHWC" as const, dimRoundingMode: c.rounding, inputShape: [c.b, c.h, c.w, c.ci] as [number, number, number, number] });

/** Runs the registered Conv2DBackpropInput; on wasm also returns the path it took. */
function inputGrad(c: Case, seed: number): { data: Float32Array; path?: InputGradPath } {
  return tf.tidy(() => {
    const dy = tf.tensor(values(size(dyShapeOf(c)), seed), dyShapeOf(c));
    const filter = tf.tensor(values(c.fh * c.fw * c.ci * c.co, seed + 1), [c.fh, c.fw, c.ci, c.co]);
    const attrs = attrsOf(c);
    const path = tf.getBackend() === "wasm" ? inputGradPath(dy, filter, attrs, tf.backend()) : undefined;
    const out = tf.engine().runKernel("Conv2DBackpropInput", { dy, filter }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    expect(out.shape).toEqual([c.b, c.h, c.w, c.ci]);
    return { data: out.dataSync().slice() as Float32Array, path };
  });
}

function grid(): Case[] {
  const cases: Case[] = [];
  const pads: Pad[] = ["same", "valid", 1, [[0, 0], [2, 1], [0, 2], [0, 0]]];
  const channels: [number, number][] = [[1, 4], [3, 8], [4, 5], [8, 3], [20, 2], [6, 7]];
  for (const s of [1, 2] as const)
    for (const pad of pads)
      for (const b of [1, 3])
        for (const [fh, fw] of [[1, 1], [3, 3], [5, 5], [3, 2]] as const)
          for (const [ci, co] of channels) {
            const [h, w] = (ci + fh) % 2 ? [7, 9] : [8, 6];
            cases.push({ b, h, w, ci, co, fh, fw, s, pad });
          }
  // strides > filter (input pixels no tap reaches: zeros), unequal strides, rounding modes, the CNN's conv2 at batch 2
  cases.push({ b: 2, h: 9, w: 10, ci: 5, co: 3, fh: 1, fw: 1, s: 3, pad: "valid" });
  cases.push({ b: 2, h: 9, w: 10, ci: 16, co: 3, fh: 2, fw: 2, s: [3, 2], pad: "same" });
  for (const rounding of ["floor", "round", "ceil"] as const)
    for (const s of [1, 2, 3]) cases.push({ b: 2, h: 8, w: 7, ci: 4, co: 4, fh: 3, fw: 3, s, pad: 2, rounding });
  cases.push({ b: 2, h: 13, w: 13, ci: 32, co: 64, fh: 3, fw: 3, s: 1, pad: "valid" });
  return cases;
}

describe("wasm Conv2DBackpropInput as GEMM + col2im", () => {
  directConvolutions();
  let cases: Case[];
  let expected: Float32Array[];
  beforeAll(async () => {
    await useTestBackend("wasm");
    registerWasmKernels();
    cases = grid();
    await use("cpu");
    expected = cases.map((c, i) => inputGrad(c, 100 + 7 * i).data);
    await use("wasm");
  });
  afterEach(() => {
    setSimdKernelsEnabled(true);
    setCol2imInputGradEnabled(true);
  });
  afterAll(async () => {
    await use("cpu");
  });

  it("matches cpu with the SIMD gather (every case takes it when forced)", () => {
    setCol2imInputGradEnabled("always");
    expect(cases.length).toBeGreaterThan(380);
    cases.forEach((c, i) => {
      const got = inputGrad(c, 100 + 7 * i);
      expect(got.path, JSON.stringify(c)).toBe("gemm-simd");
      expectClose(got.data, expected[i]!, JSON.stringify(c), 1e-5);
    });
  });

  it("matches cpu with the default rule: GEMM + col2im for strides > 1 and for stride 1 where measured faster", () => {
    const paths = new Set<InputGradPath>();
    cases.forEach((c, i) => {
      const got = inputGrad(c, 100 + 7 * i);
      const strided = typeof c.s === "number" ? c.s > 1 : c.s.some((s) => s > 1);
      if (strided) expect(got.path, JSON.stringify(c)).toBe("gemm-simd");
      paths.add(got.path!);
      expectClose(got.data, expected[i]!, JSON.stringify(c), 1e-5);
    });
    expect([...paths].sort()).toEqual(["conv", "gemm-simd", "stock"]);
    // the measured rule (docs/journal.md, round 8a), on the benchmarked shapes
    const path = (x: number[], f: number[], s: number, pad: "same" | "valid") => {
      const dy = { dataId: {}, shape: tf.backend_util.computeConv2DInfo(x as [number, number, number, number], f as [number, number, number, number], s, 1, pad).outShape, dtype: "float32" as const };
      return inputGradPath(dy, { dataId: {}, shape: f, dtype: "float32" }, { strides: s, pad, dataFormat: "NHWC", inputShape: x as [number, number, number, number] }, tf.backend());
    };
    expect(path([64, 13, 13, 32], [3, 3, 32, 64], 1, "valid")).toBe("gemm-simd"); // the CNN's conv2: 0.71-0.81x
    expect(path([16, 16, 16, 64], [3, 3, 64, 128], 1, "same")).toBe("gemm-simd"); // 0.80x
    expect(path([64, 13, 13, 32], [3, 3, 32, 64], 1, "same")).toBe("conv"); // 1.14x
    expect(path([64, 26, 26, 32], [3, 3, 32, 32], 1, "valid")).toBe("conv"); // 1.54x
    expect(path([64, 26, 26, 16], [3, 3, 16, 4], 1, "valid")).toBe("conv"); // 3x
    expect(path([64, 26, 26, 32], [3, 3, 32, 64], 2, "same")).toBe("gemm-simd"); // stock: 0.06x
  });

  it("matches cpu without SIMD: the JS gather for strides > 1, the composed conv (or stock) for stride 1", () => {
    setSimdKernelsEnabled(false);
    setCol2imInputGradEnabled("always");
    const paths = new Set<InputGradPath>();
    cases.forEach((c, i) => {
      const got = inputGrad(c, 100 + 7 * i);
      const strided = typeof c.s === "number" ? c.s > 1 : c.s.some((s) => s > 1);
      if (strided) expect(got.path, JSON.stringify(c)).toBe("gemm-js");
      else expect(["conv", "stock"], JSON.stringify(c)).toContain(got.path);
      paths.add(got.path!);
      expectClose(got.data, expected[i]!, JSON.stringify(c), 1e-5);
    });
    expect([...paths].sort()).toEqual(["conv", "gemm-js", "stock"]);
  });

  it("matches cpu with GEMM + col2im switched off (the previous paths)", () => {
    setCol2imInputGradEnabled(false);
    cases.forEach((c, i) => {
      if (i % 3) return; // a third of the grid: these paths have their own grid in wasm-kernels.test.ts
      const got = inputGrad(c, 100 + 7 * i);
      expect(["conv", "stock"], JSON.stringify(c)).toContain(got.path);
      expectClose(got.data, expected[i]!, JSON.stringify(c), 1e-5);
    });
  });

  it("leaves NCHW, int32, mismatched dy and cols above the scratch cap to the previous paths", () => {
    setCol2imInputGradEnabled("always");
    const backend = tf.backend();
    const info = (shape: number[], dtype: tf.DataType = "float32") => ({ dataId: {}, shape, dtype });
    const attrs = { strides: 1, pad: "valid", dataFormat: "NHWC", inputShape: [2, 5, 5, 3] } as const;
    expect(inputGradPath(info([2, 3, 3, 4]), info([3, 3, 3, 4]), attrs as never, backend)).toBe("gemm-simd");
    expect(inputGradPath(info([2, 3, 3, 4], "int32"), info([3, 3, 3, 4]), attrs as never, backend)).toBe("stock");
    expect(inputGradPath(info([2, 3, 3, 4]), info([3, 3, 3, 4]), { ...attrs, dataFormat: "NCHW" } as never, backend)).toBe("stock");
    expect(planInputGradGemm([2, 5, 5, 3], [3, 3, 3, 4], [2, 3, 4, 4], attrs)).toBeNull();
    // 64 x 64 x 64 output pixels x 3*3*64 taps = 151 Mi floats > the cap: the composed conv
    const big = { ...attrs, pad: "same", inputShape: [64, 64, 64, 64] } as const;
    expect(64 * 64 * 64 * 576).toBeGreaterThan(COL2IM_MAX_SCRATCH);
    expect(inputGradPath(info([64, 64, 64, 8]), info([3, 3, 64, 8]), big as never, backend)).toBe("conv");
  });

  it("image by image (col2imImages) split over the kernel threads and on one thread, and whole-batch for images whose cols exceed CONV_IMAGES_MAX_PATCH_BYTES: all match cpu", async () => {
    const perImage: Case = { b: 7, h: 13, w: 13, ci: 32, co: 64, fh: 3, fw: 3, s: 1, pad: "valid" };
    const strided: Case = { b: 5, h: 9, w: 8, ci: 12, co: 16, fh: 3, fw: 3, s: 2, pad: "same" };
    const large: Case = { b: 1, h: 66, w: 64, ci: 8, co: 64, fh: 3, fw: 3, s: 1, pad: "valid" };
    expect(4 * 64 * 62 * 72, "the large case's cols per image").toBeGreaterThan(CONV_IMAGES_MAX_PATCH_BYTES);
    const all = [perImage, strided, large];
    await use("cpu");
    const want = all.map((c, i) => inputGrad(c, 900 + i).data);
    await use("wasm");
    setCol2imInputGradEnabled("always"); // the large case's little padding keeps the composed conv by the measured rule
    all.forEach((c, i) => {
      const got = inputGrad(c, 900 + i);
      expect(got.path, JSON.stringify(c)).toBe("gemm-simd");
      expectClose(got.data, want[i]!, JSON.stringify(c), 1e-5);
    });
    expect(kernelThreadPool()?.ready(), "the kernel thread pool runs in Node with the threaded build").toBe(true);
    setKernelThreadsEnabled(false);
    try {
      expectClose(inputGrad(strided, 901).data, want[1]!, "one thread", 1e-5);
    } finally {
      setKernelThreadsEnabled(true);
    }
  });

  it("gives the same tf.grad of a strided conv2d as cpu", async () => {
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(values(3 * 11 * 10 * 8, 7), [3, 11, 10, 8]);
        const f = tf.tensor4d(values(3 * 3 * 8 * 12, 8), [3, 3, 8, 12]);
        return tf.grad((xx: tf.Tensor) => tf.sum(tf.square(tf.conv2d(xx as tf.Tensor4D, f, 2, "same"))))(x).dataSync().slice();
      });
    await use("cpu");
    const cpu = run();
    await use("wasm");
    expectClose(run(), cpu, "dx", 1e-5);
  });

  it("leaks neither tensors, wasm buffers nor heap (SIMD and JS gathers)", async () => {
    const dy = tf.tensor(values(4 * 6 * 6 * 12, 1), [4, 6, 6, 12]);
    const f = tf.tensor(values(3 * 3 * 8 * 12, 2), [3, 3, 8, 12]);
    const call = (s: number, pad: "valid" | "same", h: number) =>
      tf.tidy(() => (tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: f }, { strides: s, pad, dataFormat: "NHWC", inputShape: [4, h, h, 8] } as unknown as tf.NamedAttrMap) as tf.Tensor).dataSync());
    const step = () => {
      call(1, "valid", 8);
      call(2, "same", 12);
    };
    const be = tf.backend() as unknown as { numDataIds(): number; wasm: { HEAPU8: Uint8Array } };
    setCol2imInputGradEnabled("always"); // stride 1 here would take the composed conv by the rule
    for (const simd of [true, false]) {
      setSimdKernelsEnabled(simd);
      step();
      const [ids, heap] = [be.numDataIds(), be.wasm.HEAPU8.length];
      await expectNoLeaks(step, { warmup: 1, iterations: 20 });
      expect(be.numDataIds()).toBe(ids);
      expect(be.wasm.HEAPU8.length).toBe(heap);
    }
    tf.dispose([dy, f]);
  });
});
