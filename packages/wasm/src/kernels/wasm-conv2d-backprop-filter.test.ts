import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { directConvolutions } from "./kernel-suite.fixture.js";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-wasm";
import { registerWasmKernels, wasmConv2DBackpropFilter } from "./index.js";
import { values } from "./values.fixture.js";
import { expectClose as expectCloseTo } from "./expect-close.fixture.js";
import type { ConvCase, Pad } from "./conv-case.fixture.js";
import { expectNoLeaks, seeded, useTestBackend } from "../testing.fixture.js";

type Case = ConvCase & { s: number; d: number };

async function use(name: "cpu" | "wasm"): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`setBackend(${name}) failed`);
  await tf.ready();
}

function dyShape(c: Case): [number, number, number, number] {
  const info = tf.backend_util.computeConv2DInfo([c.b, c.h, c.w, c.ci], [c.fh, c.fw, c.ci, c.co], c.s, c.d, c.pad, c.rounding);
  return info.outShape;
}

/** The filter gradient kernel that tfjs's conv2d gradient runs, on the active backend. */
function filterGrad(c: Case, seed: number): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor4d(values(c.b * c.h * c.w * c.ci, seed), [c.b, c.h, c.w, c.ci]);
    const shape = dyShape(c);
    const dy = tf.tensor4d(values(shape.reduce((p, q) => p * q, 1), seed + 1), shape);
    // the public op (conv2dBackpropFilter) is not exported; it only reshapes and runs the kernel.
    // dilations are not a tfjs attribute of this kernel (cpu ignores them); ours accepts them.
    const attrs = { strides: c.s, pad: c.pad, dataFormat: "NHWC", dimRoundingMode: c.rounding, filterShape: [c.fh, c.fw, c.ci, c.co], dilations: c.d };
    return (tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor).dataSync() as Float32Array;
  });
}

/** Direct sum, the definition: dW[i,j,ci,co] = sum x[b, oh*s+i*d-top, ow*s+j*d-left, ci] * dy[b,oh,ow,co]. */
function reference(c: Case, seed: number): Float32Array {
  const info = tf.backend_util.computeConv2DInfo([c.b, c.h, c.w, c.ci], [c.fh, c.fw, c.ci, c.co], c.s, c.d, c.pad, c.rounding);
  const x = values(c.b * c.h * c.w * c.ci, seed);
  const [, oh, ow] = info.outShape;
  const dy = values(c.b * oh * ow * c.co, seed + 1);
  const out = new Float32Array(c.fh * c.fw * c.ci * c.co);
  for (let i = 0; i < c.fh; i++)
    for (let j = 0; j < c.fw; j++)
      for (let b = 0; b < c.b; b++)
        for (let r = 0; r < oh; r++)
          for (let q = 0; q < ow; q++) {
            const xr = r * c.s + i * c.d - info.padInfo.top;
            const xc = q * c.s + j * c.d - info.padInfo.left;
            if (xr < 0 || xr >= c.h || xc < 0 || xc >= c.w) continue;
            for (let k = 0; k < c.ci; k++)
              for (let o = 0; o < c.co; o++)
                out[((i * c.fw + j) * c.ci + k) * c.co + o]! += x[((b * c.h + xr) * c.w + xc) * c.ci + k]! * dy[((b * oh + r) * ow + q) * c.co + o]!;
          }
  return out;
}

const expectClose = (actual: ArrayLike<number>, expected: ArrayLike<number>, label: string, rtol = 1e-4, floor = 1e-6): void => expectCloseTo(actual, expected, label, rtol, floor);

const label = (c: Case): string => JSON.stringify(c);

function grid(): Case[] {
  const cases: Case[] = [];
  const pads: Pad[] = ["same", "valid", 1, [[0, 0], [2, 1], [0, 2], [0, 0]]];
  const filters: [number, number][] = [[1, 1], [3, 3], [5, 5], [3, 2]];
  const channels: [number, number][] = [[1, 4], [3, 8]];
  for (const s of [1, 2])
    for (const pad of pads)
      for (const b of [1, 5])
        for (const [h, w] of [[7, 9], [8, 6]] as const)
          for (const [fh, fw] of filters)
            for (const [ci, co] of channels) cases.push({ b, h, w, ci, co, fh, fw, s, d: 1, pad });
  // around IM2COL_MAX_TAPS (32 filter taps: im2col + matmul up to it, the composed Conv2D above)
  for (const [fh, fw, ci] of [[4, 4, 2], [3, 3, 4], [1, 1, 32], [1, 1, 33], [3, 3, 1]] as const)
    for (const s of [1, 2]) cases.push({ b: 3, h: 9, w: 8, ci, co: 5, fh, fw, s, d: 1, pad: "same" });
  // around IM2COL_MAX_TAPS = 288 (round 7): 3x3x32 and 1x1x288 by im2col, 1x1x289 and 3x3x33 composed
  for (const [fh, fw, ci] of [[3, 3, 32], [1, 1, 288], [1, 1, 289], [3, 3, 33]] as const)
    for (const s of [1, 2])
      for (const pad of ["same", "valid"] as const) cases.push({ b: 2, h: 7, w: 6, ci, co: 3, fh, fw, s, d: 1, pad });
  // NHWC im2col (ci >= IM2COL_NHWC_MIN_CHANNELS = 8): filter rows that cross the border, strides, numeric padding
  for (const [fh, fw, ci] of [[3, 3, 8], [2, 3, 12], [5, 5, 8], [1, 1, 16]] as const)
    for (const s of [1, 2])
      for (const pad of ["same", "valid", 1] as const) cases.push({ b: 2, h: 7, w: 9, ci, co: 6, fh, fw, s, d: 1, pad });
  // numeric padding with every rounding mode; 'ceil' reads past the padded input
  for (const rounding of ["floor", "round", "ceil"] as const)
    for (const s of [2, 3]) cases.push({ b: 2, h: 8, w: 7, ci: 3, co: 4, fh: 3, fw: 3, s, d: 1, pad: 1, rounding });
  return cases;
}

describe("wasm Conv2DBackpropFilter", () => {
  directConvolutions();
  beforeAll(() => {
    registerWasmKernels();
    registerWasmKernels(); // idempotent
  });
  beforeEach(async () => {
    await use("wasm");
  });
  afterAll(async () => {
    await use("cpu");
  });

  it("is registered for wasm (useBackend registers it too), and cpu keeps its own", async () => {
    expect(await useTestBackend("wasm")).toBe("wasm");
    expect(tf.getKernel("Conv2DBackpropFilter", "wasm")?.kernelFunc).toBe(wasmConv2DBackpropFilter);
    expect(tf.getKernel("Conv2DBackpropFilter", "cpu")?.kernelFunc).not.toBe(wasmConv2DBackpropFilter);
    expect(tf.getKernel("Conv2DBackpropInput", "wasm")).toBeDefined();
    expect(() => registerWasmKernels()).not.toThrow();
  });

  it("matches the cpu backend over strides, paddings, batch, input, filter and channel sizes", async () => {
    const cases = grid();
    await use("cpu");
    const expected = cases.map((c, i) => filterGrad(c, 100 + i));
    await use("wasm");
    cases.forEach((c, i) => expectClose(filterGrad(c, 100 + i), expected[i]!, label(c)));
    expect(cases.length).toBeGreaterThan(250);
  });

  it("matches the direct sum with dilations (tfjs's own op has none), also with stride 2", () => {
    const cases: Case[] = [];
    for (const pad of ["same", "valid", 2] as const)
      for (const [fh, fw] of [[3, 3], [3, 2], [1, 1]] as const)
        for (const s of [1, 2]) for (const ci of [3, 8]) cases.push({ b: 3, h: 11, w: 10, ci, co: 4, fh, fw, s, d: 2, pad });
    cases.forEach((c, i) => expectClose(filterGrad(c, 500 + i), reference(c, 500 + i), label(c)));
  });

  it("gives the same tf.grad of a conv2d as cpu (also exercises wasm's Conv2DBackpropInput)", async () => {
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(values(4 * 10 * 9 * 3, 7), [4, 10, 9, 3]);
        const f = tf.tensor4d(values(3 * 3 * 3 * 8, 8), [3, 3, 3, 8]);
        const g = tf.grads((xx: tf.Tensor, ff: tf.Tensor) => tf.sum(tf.square(tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, 2, "same"))));
        return g([x, f]).map((t) => t.dataSync() as Float32Array);
      });
    await use("cpu");
    const [dxCpu, dfCpu] = run();
    await use("wasm");
    const [dxWasm, dfWasm] = run();
    expectClose(dfWasm!, dfCpu!, "dFilter");
    expectClose(dxWasm!, dxCpu!, "dx");
  });

  it("throws a clear error for NCHW", () => {
    const x = tf.zeros([1, 2, 5, 5]);
    const dy = tf.zeros([1, 4, 5, 5]);
    const attrs = { strides: 1, pad: "same", dataFormat: "NCHW", filterShape: [3, 3, 2, 4] };
    expect(() => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, attrs as unknown as tf.NamedAttrMap)).toThrow(/NHWC/);
    tf.dispose([x, dy]);
  });

  it("leaks neither tensors, wasm buffers nor XNNPACK operators", async () => {
    const x = tf.tensor4d(values(8 * 16 * 16 * 3, 1), [8, 16, 16, 3]);
    const f = tf.variable(tf.tensor4d(values(3 * 3 * 3 * 8, 2), [3, 3, 3, 8]));
    const step = () => tf.tidy(() => tf.variableGrads(() => tf.sum(tf.conv2d(x, f, 1, "same")), [f]).grads[f.name]!.dataSync());
    const buffers = () => tf.engine().backend.numDataIds();
    // XNNPACK caches one operator (with packed weights) per filter buffer and frees it when that
    // buffer is disposed; a leaked operator would grow the heap by ~the size of dy every step.
    const heap = () => (tf.engine().backend as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
    step();
    const [buffers0, heap0] = [buffers(), heap()];
    await expectNoLeaks(step, { warmup: 1, iterations: 30 });
    expect(buffers()).toBe(buffers0);
    expect(heap()).toBe(heap0);
    tf.dispose([x, f]);
  });
});

describe("a small CNN trains on wasm", () => {
  const classes = 3;
  const build = () =>
    seeded(11, () => {
      const m = tfl.sequential();
      // relu after the pool, not in the conv: BN maps relu's zeros to equal values, and max-pool
      // gradients break such ties differently on cpu and wasm, which is not what we test here.
      m.add(tfl.layers.conv2d({ inputShape: [10, 10, 1], filters: 8, kernelSize: 3 }));
      m.add(tfl.layers.batchNormalization({ momentum: 0.9 }));
      m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
      m.add(tfl.layers.activation({ activation: "relu" }));
      m.add(tfl.layers.flatten());
      m.add(tfl.layers.dense({ units: classes, activation: "softmax" }));
      return m;
    });
  const data = () => {
    const n = 16;
    const labels = Array.from({ length: n }, (_, i) => i % classes);
    // class-dependent brightness pattern, so the loss can fall quickly
    const xs = values(n * 100, 3).map((v, i) => v * 0.3 + (labels[Math.floor(i / 100)]! === (i % 100) % classes ? 1 : 0));
    return { x: tf.tensor4d(xs, [n, 10, 10, 1]), y: tf.oneHot(tf.tensor1d(labels, "int32"), classes) };
  };
  async function train(backend: "cpu" | "wasm", steps: number, optimizer: () => tf.Optimizer = () => tf.train.sgd(0.1)): Promise<{ losses: number[]; weights: Float32Array[] }> {
    await use(backend);
    const model = build();
    const { x, y } = data();
    const opt = optimizer();
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) {
      const loss = opt.minimize(() => tf.mean(tfl.metrics.categoricalCrossentropy(y, model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar, true);
      losses.push((await loss!.data())[0]!);
      loss!.dispose();
    }
    const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
    model.dispose();
    opt.dispose();
    tf.dispose([x, y]);
    return { losses, weights };
  }
  afterAll(async () => {
    await use("cpu");
  });

  it("loss decreases with optimizer.minimize", async () => {
    // Adam 0.01: this tiny CNN under SGD 0.1 swings up and down for its first steps whatever the init
    const { losses } = await train("wasm", 8, () => tf.train.adam(0.01));
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.8);
  });

  it("weights after 3 SGD steps match the cpu backend", async () => {
    const cpu = await train("cpu", 3);
    const wasm = await train("wasm", 3);
    expect(wasm.weights.length).toBe(cpu.weights.length);
    // floor 1: the conv bias before BN gets only float noise as gradient, ~1e-7 on both backends
    wasm.weights.forEach((w, i) => expectClose(w, cpu.weights[i]!, `weight ${i}`, 1e-4, 1));
    expectClose(wasm.losses, cpu.losses, "losses");
  });
});
