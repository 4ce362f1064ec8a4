import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { setWinogradEnabled, winogradEnabled, winogradFilterGradApplies, winogradForwardApplies, winogradInputGradApplies } from "./wasm-conv-winograd.js";
import { kernelThreadPool, setKernelThreadsEnabled } from "./kernel-threads.js";
import { values, size } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { wasmKernelSuite } from "./kernel-suite.fixture.js";
import { expectNoLeaks, switchBackend as use } from "../testing.fixture.js";
import { ensureKernelThreads } from "../node/kernel-threads.js";
import { fmaEnabled, setFmaEnabled } from "./simd/index.js";
import { fmaActive } from "./wasm-gemm-split.js";

// Whether this engine validates relaxed SIMD (Node 20: after fitloop sets --experimental-wasm-relaxed-simd).
const FMA = await setFmaEnabled(true);
/** A pool whose workers have gemm-fma.wat's module (FMA's functions run on the kernel threads). */
const ensureFmaThreads = (): Promise<unknown> => ensureKernelThreads(2);

type Pad = "same" | "valid" | number | [[0, 0], [number, number], [number, number], [0, 0]];
interface Case {
  x: [number, number, number, number];
  f: [number, number, number, number];
  pad: Pad;
}

const conv2: Case = { x: [7, 13, 13, 32], f: [3, 3, 32, 64], pad: "valid" }; // the CNN's second layer
const CASES: Case[] = [
  conv2,
  { x: [3, 10, 9, 16], f: [3, 3, 16, 20], pad: "same" }, // odd width; 20 output channels: a part-filled 8-column panel
  { x: [2, 8, 11, 20], f: [3, 3, 20, 36], pad: [[0, 0], [2, 0], [1, 3], [0, 0]] }, // explicit, uneven padding; the input gradient's 20 columns
  { x: [2, 12, 12, 16], f: [3, 3, 16, 24], pad: 3 }, // padding 3: the first tiles start 3 pixels outside the image
  { x: [1, 3, 3, 16], f: [3, 3, 16, 16], pad: "valid" }, // a 1x1 output: one tile, three of its four pixels outside
  { x: [2, 7, 7, 40], f: [3, 3, 40, 16], pad: "same" }, // 360 taps: beyond the direct filter gradient's im2col rule
  { x: [1, 9, 10, 20], f: [3, 3, 20, 16], pad: [[0, 0], [4, 1], [0, 5], [0, 0]] }, // whole tile rows above the image, columns right of it
  { x: [2, 3, 5, 16], f: [3, 3, 16, 16], pad: "same" }, // 3 rows: no tile lies inside the image
];

const info = (c: Case): tf.backend_util.Conv2DInfo => tf.backend_util.computeConv2DInfo(c.x, c.f, 1, 1, c.pad as "valid");

/** Forward (bias + relu), forward (linear, no bias), the input gradient and the filter gradient, on the active backend. */
function run(c: Case, seed: number): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(values(size(c.x), seed), c.x);
    const w = tf.tensor4d(values(size(c.f), seed + 1, 0.3), c.f);
    const b = tf.tensor1d(values(c.f[3], seed + 2, 0.2));
    const y = tf.fused.conv2d({ x, filter: w, bias: b, activation: "relu", strides: 1, pad: c.pad });
    const linear = tf.conv2d(x, w, 1, c.pad);
    const dy = tf.tensor4d(values(size(linear.shape), seed + 3), linear.shape as [number, number, number, number]);
    const attrs = { strides: 1, pad: c.pad, dataFormat: "NHWC", inputShape: c.x };
    const dx = tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: w }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    const dw = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape: c.f } as unknown as tf.NamedAttrMap) as tf.Tensor;
    return [y, linear, dx, dw].map((t) => t.dataSync().slice() as Float32Array);
  });
}

const same = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

describe("3x3 convolutions by Winograd F(2x2, 3x3) on fitloop's kernel threads (wasm)", () => {
  wasmKernelSuite();

  it("applies to 3x3 stride-1 convolutions with >= 16 channels (multiples of 4), forward, input and filter gradients; not to others", () => {
    for (const c of CASES) {
      expect(winogradForwardApplies(info(c)), JSON.stringify(c)).toBe(true);
      expect(winogradInputGradApplies(info(c)), JSON.stringify(c)).toBe(true);
      expect(winogradFilterGradApplies(info(c)), JSON.stringify(c)).toBe(true);
    }
    const no = (x: Case["x"], f: Case["f"], s = 1): boolean => winogradForwardApplies(tf.backend_util.computeConv2DInfo(x, f, s, 1, "same"));
    expect(no([1, 8, 8, 16], [3, 3, 16, 16], 2), "stride 2").toBe(false);
    expect(no([1, 8, 8, 16], [5, 5, 16, 16]), "5x5").toBe(false);
    expect(no([1, 8, 8, 8], [3, 3, 8, 16]), "8 input channels").toBe(false);
    expect(no([1, 8, 8, 18], [3, 3, 18, 16]), "18 input channels").toBe(false);
    expect(no([1, 8, 8, 16], [3, 3, 16, 18]), "18 output channels").toBe(false);
    expect(winogradInputGradApplies(tf.backend_util.computeConv2DInfo([1, 8, 8, 8], [3, 3, 8, 16], 1, 1, "same")), "input gradient into 8 channels").toBe(false);
    // a 32x32 image's tiles (1 MiB) leave L2 in the filter gradient: the direct kernel keeps it
    const big = tf.backend_util.computeConv2DInfo([1, 32, 32, 32], [3, 3, 32, 32], 1, 1, "same");
    expect([winogradForwardApplies(big), winogradInputGradApplies(big), winogradFilterGradApplies(big)]).toEqual([true, true, false]);
  });

  it("forward (bias + relu, and linear), input and filter gradients match cpu on every case, with kernel threads and on one thread; the same bits again", async () => {
    await use("cpu");
    const want = CASES.map((c, i) => run(c, 10 * i + 1));
    await use("wasm");
    expect(kernelThreadPool()?.ready(), "the kernel thread pool runs in Node with the threaded build").toBe(true);
    expect(winogradEnabled()).toBe(true);
    const split = CASES.map((c, i) => run(c, 10 * i + 1));
    split.forEach((outs, i) => outs.forEach((o, j) => expectClose(o, want[i]![j]!, `${JSON.stringify(CASES[i])} output ${j}`, 1e-5)));
    setKernelThreadsEnabled(false);
    try {
      // on one thread (these products are below the thread gate: fitloop's GEMM keeps them), Winograd
      // too: the forward and input gradient give the same bits; the filter gradient sums one part
      // instead of two (close, other bits)
      CASES.forEach((c, i) =>
        run(c, 10 * i + 1).forEach((o, j) => {
          if (j < 3) expect(same(o, split[i]![j]!), `one thread, ${JSON.stringify(c)} output ${j}: the same bits`).toBe(true);
          else expectClose(o, want[i]![j]!, `one thread, ${JSON.stringify(c)} output ${j}`, 1e-5);
        }),
      );
    } finally {
      setKernelThreadsEnabled(true);
    }
    // deterministic: the same inputs give the same bits again
    CASES.forEach((c, i) => run(c, 10 * i + 1).forEach((o, j) => expect(same(o, split[i]![j]!), `again, ${JSON.stringify(c)} output ${j}`).toBe(true)));
  });

  it("is what runs on every case: switched off, the direct kernels give other bits for every output (still close to cpu); on again, Winograd's bits", async () => {
    await use("wasm");
    const wino = CASES.map((c, i) => run(c, 10 * i + 5));
    setWinogradEnabled(false);
    let direct: Float32Array[][];
    try {
      direct = CASES.map((c, i) => run(c, 10 * i + 5));
    } finally {
      setWinogradEnabled(true);
    }
    CASES.forEach((c, i) =>
      direct[i]!.forEach((o, j) => {
        expect(same(o, wino[i]![j]!), `${JSON.stringify(c)} output ${j} differs in the last bits`).toBe(false);
        expectClose(o, wino[i]![j]!, `${JSON.stringify(c)} output ${j}`, 1e-5);
      }),
    );
    CASES.forEach((c, i) => run(c, 10 * i + 5).forEach((o, j) => expect(same(o, wino[i]![j]!), `${JSON.stringify(c)} output ${j}`).toBe(true)));
  });

  it(FMA.supported ? "with relaxed-SIMD FMA (gemm-fma.wat's copies, 6-row tiles) and with mul + add: every case matches cpu, and FMA changes bits" : `SKIPPED: relaxed SIMD does not validate on Node ${process.versions.node}: Winograd on the FMA GEMM is NOT tested`, async () => {
    if (!FMA.supported) return;
    await use("cpu");
    const want = CASES.map((c, i) => run(c, 10 * i + 7));
    await use("wasm");
    const before = fmaEnabled();
    await setFmaEnabled(false);
    const off = CASES.map((c, i) => run(c, 10 * i + 7));
    await setFmaEnabled(true);
    try {
      await ensureFmaThreads();
      expect(fmaActive()).toBe(true);
      const on = CASES.map((c, i) => run(c, 10 * i + 7));
      on.forEach((outs, i) => outs.forEach((o, j) => expectClose(o, want[i]![j]!, `FMA ${JSON.stringify(CASES[i])} output ${j}`, 1e-5)));
      off.forEach((outs, i) => outs.forEach((o, j) => expectClose(o, want[i]![j]!, `mul + add ${JSON.stringify(CASES[i])} output ${j}`, 1e-5)));
      expect(on.some((outs, i) => outs.some((o, j) => !same(o, off[i]![j]!))), "FMA changed some bits").toBe(true);
    } finally {
      await setFmaEnabled(before);
    }
  });

  it("a NaN or an infinity in the input makes every output whose window holds it NaN or infinite, as on cpu (and may spread to the rest of its 2x2 tile)", async () => {
    const c: Case = { x: [1, 6, 6, 16], f: [3, 3, 16, 16], pad: "valid" };
    const conv = (bad: number): Float32Array =>
      tf.tidy(() => {
        const xs = values(size(c.x), 3);
        xs[(2 * 6 + 3) * 16 + 5] = bad; // pixel (2, 3), channel 5
        return tf.conv2d(tf.tensor4d(xs, c.x), tf.tensor4d(values(size(c.f), 4, 0.3), c.f), 1, "valid").dataSync().slice() as Float32Array;
      });
    for (const bad of [NaN, Infinity]) {
      await use("cpu");
      const want = conv(bad);
      await use("wasm");
      const got = conv(bad);
      for (let i = 0; i < want.length; i++) {
        if (Number.isFinite(want[i]!)) {
          if (Number.isFinite(got[i]!)) expect(Math.abs(got[i]! - want[i]!), `element ${i}`).toBeLessThan(1e-4);
        } else expect(Number.isFinite(got[i]!), `element ${i} (${want[i]} on cpu)`).toBe(false);
      }
    }
  });

  it("a NaN or an infinity in dy makes every input-gradient element it reaches on cpu non-finite (and may spread to the rest of its 4x4 tile)", async () => {
    const c: Case = { x: [1, 8, 8, 16], f: [3, 3, 16, 16], pad: "valid" };
    const dx = (bad: number): Float32Array =>
      tf.tidy(() => {
        const dys = values(6 * 6 * 16, 5);
        dys[(2 * 6 + 3) * 16 + 7] = bad; // dy pixel (2, 3), channel 7
        const attrs = { strides: 1, pad: c.pad, dataFormat: "NHWC", inputShape: c.x };
        const inputs = { dy: tf.tensor4d(dys, [1, 6, 6, 16]), filter: tf.tensor4d(values(size(c.f), 6, 0.3), c.f) };
        return (tf.engine().runKernel("Conv2DBackpropInput", inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor).dataSync().slice() as Float32Array;
      });
    for (const bad of [NaN, -Infinity]) {
      await use("cpu");
      const want = dx(bad);
      await use("wasm");
      const got = dx(bad);
      let nonFinite = 0;
      for (let i = 0; i < want.length; i++) {
        if (Number.isFinite(want[i]!)) {
          if (Number.isFinite(got[i]!)) expect(Math.abs(got[i]! - want[i]!), `element ${i}`).toBeLessThan(1e-4);
        } else {
          nonFinite++;
          expect(Number.isFinite(got[i]!), `element ${i} (${want[i]} on cpu)`).toBe(false);
        }
      }
      expect(nonFinite, "cpu's non-finite elements: the 3x3 window of the bad pixel, all channels").toBe(9 * 16);
    }
  });

  it("a NaN in x makes the filter-gradient elements of its channel non-finite, as on cpu; the other channels stay close", async () => {
    const c: Case = { x: [2, 8, 8, 16], f: [3, 3, 16, 16], pad: "valid" };
    const dw = (): Float32Array =>
      tf.tidy(() => {
        const xs = values(size(c.x), 8);
        xs[(2 * 8 + 3) * 16 + 5] = NaN; // image 0, pixel (2, 3), channel 5
        const attrs = { strides: 1, pad: c.pad, dataFormat: "NHWC", filterShape: c.f };
        const inputs = { x: tf.tensor4d(xs, c.x), dy: tf.tensor4d(values(2 * 6 * 6 * 16, 9), [2, 6, 6, 16]) };
        return (tf.engine().runKernel("Conv2DBackpropFilter", inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor).dataSync().slice() as Float32Array;
      });
    await use("cpu");
    const want = dw();
    await use("wasm");
    const got = dw();
    let nonFinite = 0;
    for (let i = 0; i < want.length; i++) {
      if (Number.isFinite(want[i]!)) expect(Math.abs(got[i]! - want[i]!), `element ${i}`).toBeLessThan(1e-4);
      else {
        nonFinite++;
        expect(Number.isFinite(got[i]!), `element ${i} (NaN on cpu)`).toBe(false);
      }
    }
    expect(nonFinite, "cpu's non-finite elements: every tap of input channel 5").toBe(9 * 16);
  });

  it("trains: a conv 3x3x16 -> relu -> conv 3x3x16 model's weights after 3 SGD steps match cpu", async () => {
    const train = (): Float32Array[] =>
      tf.tidy(() => {
        const x = tf.tensor4d(values(2 * 9 * 9 * 16, 7), [2, 9, 9, 16]);
        const w1 = tf.variable(tf.tensor4d(values(9 * 16 * 16, 8, 0.2), [3, 3, 16, 16]));
        const b1 = tf.variable(tf.tensor1d(values(16, 9, 0.1)));
        const w2 = tf.variable(tf.tensor4d(values(9 * 16 * 16, 10, 0.2), [3, 3, 16, 16]));
        const opt = tf.train.sgd(0.05);
        for (let s = 0; s < 3; s++) {
          opt.minimize(() => tf.mean(tf.square(tf.conv2d(tf.fused.conv2d({ x, filter: w1, bias: b1, activation: "relu", strides: 1, pad: "same" }), w2, 1, "valid"))) as tf.Scalar);
        }
        const out = [w1, b1, w2].map((v) => v.dataSync().slice() as Float32Array);
        tf.dispose([w1, b1, w2]);
        opt.dispose();
        return out;
      });
    await use("cpu");
    const want = train();
    await use("wasm");
    train().forEach((w, i) => expectClose(w, want[i]!, `variable ${i}`, 1e-5));
  });

  it("leaks no tensors, and no wasm memory over 40 calls (the transformed filter and the scratch are freed)", async () => {
    await use("wasm");
    const memory = (tf.backend() as unknown as { wasm: { wasmMemory: WebAssembly.Memory } }).wasm.wasmMemory;
    await expectNoLeaks(() => run(conv2, 1));
    const bytes = memory.buffer.byteLength;
    for (let i = 0; i < 40; i++) run(conv2, 1);
    expect(memory.buffer.byteLength).toBe(bytes);
  });
});
