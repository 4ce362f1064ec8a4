import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-wasm";
import { isReluGradEnabled, planInputGradConv, registerWasmKernels, RELU_GRAD, replacedWasmKernelConfigs, restoreWasmKernels, stockWasmKernel, wasmBatchMatMul } from "./index.js";
import { maxPoolGradSimd, reluGradSimd, setSimdKernelsEnabled, type EmscriptenWasm } from "./simd/index.js";
import { values, size } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { expectNoLeaks, seeded, useTestBackend } from "../testing.fixture.js";

const rand = (shape: number[], seed: number) => tf.tensor(values(size(shape), seed), shape);

async function use(name: "cpu" | "wasm"): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`setBackend(${name}) failed`);
  await tf.ready();
}

/** Runs every case on cpu, then on wasm (fitloop's kernels registered), and compares. */
async function compare<C>(cases: C[], run: (c: C, i: number) => tf.Tensor, label: (c: C) => string, rtol = 1e-5): Promise<void> {
  await use("cpu");
  const expected = cases.map((c, i) => tf.tidy(() => run(c, i)).dataSync().slice());
  await use("wasm");
  cases.forEach((c, i) => {
    const t = tf.tidy(() => run(c, i));
    expect(t.shape, label(c)).toEqual(tf.tidy(() => run(c, i)).shape);
    expectClose(t.dataSync(), expected[i]!, label(c), rtol);
    t.dispose();
  });
  tf.disposeVariables();
}


const wasmBackend = () => tf.engine().backend as unknown as { numDataIds(): number; wasm: { HEAPU8: Uint8Array } };

describe("fitloop's replacements of stock tfjs-wasm kernels", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
    registerWasmKernels(); // idempotent
  });
  afterAll(async () => {
    await use("cpu");
  });

  it("are registered by useTestBackend('wasm'), keep the stock kernels callable, and the opt-out restores them", async () => {
    for (const config of replacedWasmKernelConfigs) {
      expect(tf.getKernel(config.kernelName, "wasm")?.kernelFunc, config.kernelName).toBe(config.kernelFunc);
      expect(stockWasmKernel(config.kernelName)?.kernelFunc).not.toBe(config.kernelFunc);
      expect(tf.getKernel(config.kernelName, "cpu")?.kernelFunc).not.toBe(config.kernelFunc);
    }
    await useTestBackend("wasm", { wasmKernels: false });
    expect(tf.getKernel("BatchMatMul", "wasm")?.kernelFunc).not.toBe(wasmBatchMatMul);
    expect(tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([4, 3]), false, true).dataSync()[0])).toBe(3);
    expect(await useTestBackend("wasm")).toBe("wasm");
    expect(tf.getKernel("BatchMatMul", "wasm")?.kernelFunc).toBe(wasmBatchMatMul);
    restoreWasmKernels();
    registerWasmKernels();
    expect(tf.getKernel("BatchMatMul", "wasm")?.kernelFunc).toBe(wasmBatchMatMul);
  });

  it("BatchMatMul matches cpu over shapes, transposes and broadcast batch dims", async () => {
    type C = { a: number[]; b: number[]; ta: boolean; tb: boolean };
    const cases: C[] = [];
    const dims: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [64, 78, 16], [17, 33, 9], [2, 128, 10]];
    const batches: [number[], number[]][] = [[[], []], [[3], [3]], [[2, 3], [1, 3]], [[1], [4]]];
    for (const [m, k, n] of dims)
      for (const [ba, bb] of batches)
        for (const ta of [false, true])
          for (const tb of [false, true]) cases.push({ a: [...ba, ...(ta ? [k, m] : [m, k])], b: [...bb, ...(tb ? [n, k] : [k, n])], ta, tb });
    await compare(cases, (c, i) => tf.matMul(rand(c.a, 10 + i), rand(c.b, 500 + i), c.ta, c.tb), (c) => JSON.stringify(c));
  });

  it("Conv2DBackpropInput matches cpu over strides, paddings, rounding, filters, channels and batch sizes", async () => {
    type Pad = "same" | "valid" | number | tf.backend_util.ExplicitPadding;
    type C = { b: number; h: number; w: number; ci: number; co: number; fh: number; fw: number; s: number; pad: Pad; rounding?: "floor" | "round" | "ceil" };
    const cases: C[] = [];
    const pads: Pad[] = ["same", "valid", 1, [[0, 0], [2, 1], [0, 2], [0, 0]]];
    for (const s of [1, 2])
      for (const pad of pads)
        for (const b of [1, 3])
          for (const [h, w] of [[7, 9], [8, 6]] as const)
            for (const [fh, fw] of [[1, 1], [3, 3], [5, 5], [3, 2]] as const)
              for (const [ci, co] of [[1, 4], [3, 8]] as const) cases.push({ b, h, w, ci, co, fh, fw, s, pad });
    for (const rounding of ["floor", "round", "ceil"] as const) cases.push({ b: 2, h: 8, w: 7, ci: 3, co: 4, fh: 3, fw: 3, s: 1, pad: 2, rounding });
    const fast = cases.filter((c) => planInputGradConv([c.b, c.h, c.w, c.ci], [c.fh, c.fw, c.ci, c.co], dyShapeOf(c), { strides: c.s, pad: c.pad, dimRoundingMode: c.rounding, dataFormat: "NHWC" }));
    expect(fast.length, "cases on the XNNPACK path").toBeGreaterThan(60);
    function dyShapeOf(c: C): number[] {
      return tf.backend_util.computeConv2DInfo([c.b, c.h, c.w, c.ci], [c.fh, c.fw, c.ci, c.co], c.s, 1, c.pad, c.rounding).outShape;
    }
    await compare(
      cases,
      (c, i) => {
        const attrs = { strides: c.s, pad: c.pad, dataFormat: "NHWC", dimRoundingMode: c.rounding, inputShape: [c.b, c.h, c.w, c.ci] };
        const inputs = { dy: rand(dyShapeOf(c), 100 + i), filter: rand([c.fh, c.fw, c.ci, c.co], 900 + i) };
        return tf.engine().runKernel("Conv2DBackpropInput", inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
      },
      (c) => JSON.stringify(c),
      1e-4,
    );
  });

  it("Tile matches cpu over ranks, reps and dtypes", async () => {
    type C = { shape: number[]; reps: number[]; dtype: "float32" | "int32" | "bool" };
    const cases: C[] = [];
    const grid: [number[], number[]][] = [
      [[3], [4]], [[1], [1]], [[2, 3], [3, 1]], [[2, 3], [1, 4]], [[1, 1, 1, 5], [4, 3, 2, 1]], [[2, 1, 3, 2], [2, 3, 1, 2]], [[2, 3], [0, 2]], [[1, 1, 1, 32], [8, 26, 26, 1]], [[2, 2, 2, 2, 2], [1, 2, 1, 2, 3]],
    ];
    for (const [shape, reps] of grid) for (const dtype of ["float32", "int32", "bool"] as const) cases.push({ shape, reps, dtype });
    await compare(
      cases,
      (c, i) => {
        const x = c.dtype === "bool" ? tf.greater(rand(c.shape, i), 0) : tf.cast(tf.mul(rand(c.shape, i), 100), c.dtype);
        return tf.tile(x, c.reps);
      },
      (c) => JSON.stringify(c),
      0,
    );
  });

  it.each([
    ["WebAssembly SIMD", true],
    ["the JS loop (SIMD off)", false],
  ])("Sum and Mean match cpu over shapes, axes (leading, trailing, mixed, all), keepDims and dtypes, with %s", async (_, simd) => {
    type C = { op: "sum" | "mean"; shape: number[]; axis: number[] | number | null; keepDims: boolean; int: boolean };
    const cases: C[] = [];
    const grid: [number[], (number[] | number | null)[]][] = [
      [[7], [0, -1, null]],
      [[64, 10], [0, 1, [0, 1], -1]],
      [[4, 5, 6, 3], [[0, 1, 2], [0], [0, 1], [1, 2], [3], [0, 3], [2, 0, 1], null]],
      [[9, 1, 17], [[0, 1], 0, 2]],
      [[33, 3, 2, 5, 2], [[0, 1, 2, 3], [0, 1]]],
      // full reductions from 1024 values: the SIMD [rows, 64] column sum plus a tail
      [[1024], [null]],
      [[1100], [null, 0]],
      [[784, 256], [null, [1, 0]]],
      [[3, 17, 29], [[0, 1, 2]]],
    ];
    for (const [shape, axes] of grid)
      for (const axis of axes)
        for (const op of ["sum", "mean"] as const)
          for (const keepDims of [false, true]) cases.push({ op, shape, axis, keepDims, int: false });
    cases.push({ op: "sum", shape: [6, 4], axis: 0, keepDims: false, int: true });
    setSimdKernelsEnabled(simd);
    try {
      await compare(
        cases,
        (c, i) => {
          const x = c.int ? tf.cast(tf.mul(rand(c.shape, i), 50), "int32") : rand(c.shape, i);
          return c.op === "sum" ? tf.sum(x, c.axis ?? undefined, c.keepDims) : tf.mean(x, c.axis ?? undefined, c.keepDims);
        },
        (c) => JSON.stringify(c),
      );
    } finally {
      setSimdKernelsEnabled(true);
    }
  });

  it.each([
    ["WebAssembly SIMD where C % 4 == 0", true],
    ["the JS loop (SIMD off)", false],
  ])("MaxPoolGrad matches cpu over filters, strides, paddings, sizes and channels, including ties, with %s", async (_, simd) => {
    type C = { b: number; h: number; w: number; c: number; f: [number, number]; s: number; pad: "same" | "valid" | number; ties: boolean };
    const cases: C[] = [];
    for (const f of [[2, 2], [3, 3], [3, 2]] as [number, number][])
      for (const s of [1, 2, 3])
        for (const pad of ["same", "valid", 1] as const) {
          // tfjs-wasm's own forward MaxPool reads out of bounds with a numeric pad and a non-square filter
          if (pad === 1 && f[0] !== f[1]) continue;
          for (const [h, w] of [[6, 6], [7, 5]] as const) for (const ties of [false, true]) for (const c of [3, 8]) cases.push({ b: 2, h, w, c, f, s, pad, ties });
        }
    setSimdKernelsEnabled(simd);
    try {
      await compare(
        cases,
        (c, i) => {
          // ties: few distinct values, so windows hold equal maxima (the first one in window order wins, as on cpu)
          const x = c.ties ? tf.round(tf.mul(rand([c.b, c.h, c.w, c.c], i), 1.5)) : rand([c.b, c.h, c.w, c.c], i);
          return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, c.f, c.s, c.pad), rand(tf.maxPool(v as tf.Tensor4D, c.f, c.s, c.pad).shape, 700 + i))))(x);
        },
        (c) => JSON.stringify(c),
      );
      expect(maxPoolGradSimd((tf.backend() as unknown as { wasm: EmscriptenWasm }).wasm) !== undefined).toBe(simd);
    } finally {
      setSimdKernelsEnabled(true);
    }
  });

  it.each([
    ["WebAssembly SIMD", true],
    ["the JS loop (SIMD off)", false],
  ])("the ReLU gradient is one kernel and matches cpu bit for bit (sizes, ±0, NaN, Inf, second order) with %s", async (_, simd) => {
    const special = [0, -0, 1e-30, -1e-30, NaN, Infinity, -Infinity, 2, -3];
    const grads = (n: number, i: number): Float32Array[] =>
      tf.tidy(() => {
        const xv = values(n, 900 + i);
        const dv = values(n, 950 + i);
        for (let j = 0; j < Math.min(n, special.length); j++) [xv[j], dv[(j * 5) % n]] = [special[j]!, special[(j + 3) % special.length]!];
        const x = tf.tensor(xv);
        const w = tf.tensor(dv);
        const first = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), w)))(x);
        // second order through the gradient: d/dw of sum(relu'(x) * w * w2) is relu'(x) * w2
        const second = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.grad((u: tf.Tensor) => tf.sum(tf.mul(tf.relu(u), v)))(x), w)))(w);
        return [first.dataSync().slice() as Float32Array, second.dataSync().slice() as Float32Array];
      });
    const sizes = [1, 3, 4, 5, 17, 64, 1001];
    await use("cpu");
    const expected = sizes.map(grads);
    await use("wasm");
    setSimdKernelsEnabled(simd);
    try {
      expect(reluGradSimd((tf.backend() as unknown as { wasm: EmscriptenWasm }).wasm) !== undefined).toBe(simd);
      sizes.forEach((n, i) => {
        const got = grads(n, i);
        got.forEach((g, j) => expect([...g].map(Object.is.bind(null, 0)), `n=${n} order ${j + 1} signs of zero`).toEqual([...expected[i]![j]!].map(Object.is.bind(null, 0))));
        got.forEach((g, j) => expect([...g], `n=${n} order ${j + 1}`).toEqual([...expected[i]![j]!]));
      });
      const profiled = await tf.profile(() => grads(64, 0));
      const names = profiled.kernels.map((k) => k.name);
      // without SIMD the override runs the stock Step + Cast + Multiply (faster than a JS loop)
      expect(names.includes(RELU_GRAD)).toBe(simd);
      expect(names.includes("Step")).toBe(!simd);
      // the kernel itself (its JS loop without SIMD), called directly
      const direct = tf.tidy(() => {
        const n = 1001;
        const xv = values(n, 900 + 6);
        const dv = values(n, 950 + 6);
        for (let j = 0; j < special.length; j++) [xv[j], dv[(j * 5) % n]] = [special[j]!, special[(j + 3) % special.length]!];
        return (tf.engine().runKernel(RELU_GRAD, { dy: tf.tensor(dv), x: tf.tensor(xv) }, {}) as tf.Tensor).dataSync().slice();
      });
      expect([...direct].map(Object.is.bind(null, 0))).toEqual([...expected[6]![0]!].map(Object.is.bind(null, 0)));
      expect([...direct]).toEqual([...expected[6]![0]!]);
    } finally {
      setSimdKernelsEnabled(true);
    }
    expect(isReluGradEnabled()).toBe(true);
    restoreWasmKernels();
    expect(isReluGradEnabled()).toBe(false);
    expect((await tf.profile(() => grads(64, 0))).kernels.map((k) => k.name)).toContain("Step");
    registerWasmKernels();
    expect(isReluGradEnabled()).toBe(true);
  });

  it("Identity shares the buffer: clones read the same values and outlive the original, for every dtype", async () => {
    await use("wasm");
    const ids = wasmBackend().numDataIds();
    for (const dtype of ["float32", "int32", "bool"] as const) {
      const x = tf.tidy(() => tf.cast(tf.tensor([[1.5, -2], [0, 3]]), dtype));
      const expected = x.dataSync().slice();
      const y = tf.clone(x);
      const z = tf.engine().runKernel("Identity", { x: y }, {}) as tf.Tensor;
      x.dispose();
      expect(y.dataSync()).toEqual(expected);
      y.dispose();
      expect(z.dataSync()).toEqual(expected);
      expect(z.dtype).toBe(dtype);
      z.dispose();
    }
    const s = tf.tensor(["a", "bc"]);
    const sc = tf.clone(s);
    expect(sc.dataSync()).toEqual(["a", "bc"]);
    tf.dispose([s, sc]);
    expect(wasmBackend().numDataIds()).toBe(ids);
  });

  it("leak neither tensors, wasm buffers nor heap", async () => {
    await use("wasm");
    const x = rand([8, 12, 12, 3], 1) as tf.Tensor4D;
    const f = tf.variable(rand([3, 3, 3, 8], 2) as tf.Tensor4D);
    const w = tf.variable(rand([8 * 5 * 5, 4], 3));
    const step = () =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => {
          const c = tf.conv2d(tf.relu(tf.conv2d(x, f, 1, "same")), tf.ones([3, 3, 8, 8]) as tf.Tensor4D, 1, "valid");
          const m = tf.moments(c, [0, 1, 2]);
          // with offset and scale: tfjs's batchNorm gradient cannot save an absent one
          const n = tf.batchNorm(c, m.mean, m.variance, tf.zeros([8]), tf.ones([8])) as tf.Tensor4D;
          const p = tf.reshape(tf.maxPool(n, 2, 2, "valid"), [8, -1]);
          return tf.sum(tf.matMul(p, w));
        }, [f, w]);
        return Object.values(grads).map((g) => g.dataSync());
      });
    step();
    const [ids, heap] = [wasmBackend().numDataIds(), wasmBackend().wasm.HEAPU8.length];
    await expectNoLeaks(step, { warmup: 1, iterations: 20 });
    expect(wasmBackend().numDataIds()).toBe(ids);
    expect(wasmBackend().wasm.HEAPU8.length).toBe(heap);
    tf.dispose([x, f, w]);
  });
});

describe("training on wasm with fitloop's kernels matches cpu", () => {
  afterAll(async () => {
    await use("cpu");
  });
  const build = (kind: "mlp" | "cnn") =>
    seeded(5, () => {
      const m = tfl.sequential();
      if (kind === "mlp") {
        m.add(tfl.layers.dense({ inputShape: [20], units: 16, activation: "relu" }));
        m.add(tfl.layers.dense({ units: 3, activation: "softmax" }));
      } else {
        m.add(tfl.layers.conv2d({ inputShape: [9, 9, 2], filters: 8, kernelSize: 3, activation: "relu" })); // 8 channels: the SIMD BatchNorm and MaxPoolGrad
        m.add(tfl.layers.batchNormalization({ momentum: 0.9 }));
        m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
        m.add(tfl.layers.conv2d({ filters: 4, kernelSize: 2, padding: "same" }));
        m.add(tfl.layers.flatten());
        m.add(tfl.layers.dense({ units: 3, activation: "softmax" }));
      }
      return m;
    });
  async function train(backend: "cpu" | "wasm", kind: "mlp" | "cnn"): Promise<Float32Array[]> {
    if (backend === "wasm") await useTestBackend("wasm");
    else await use("cpu");
    const model = build(kind);
    const n = 12;
    const x = kind === "mlp" ? rand([n, 20], 3) : rand([n, 9, 9, 2], 3);
    const y = tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % 3), "int32"), 3);
    const opt = tf.train.adam(0.01);
    for (let i = 0; i < 4; i++) {
      const loss = opt.minimize(() => tf.mean(tfl.metrics.categoricalCrossentropy(y, model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar, true);
      loss!.dispose();
    }
    const weights = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
    model.dispose();
    opt.dispose();
    tf.dispose([x, y]);
    return weights;
  }
  for (const kind of ["mlp", "cnn"] as const) {
    it(`${kind}: weights after 4 Adam steps`, async () => {
      const cpu = await train("cpu", kind);
      const wasm = await train("wasm", kind);
      expect(wasm.length).toBe(cpu.length);
      // floor 1: a conv bias before BN gets only float noise as gradient, which Adam normalises
      wasm.forEach((w, i) => expectClose(w, cpu[i]!, `${kind} weight ${i}`, 1e-4, kind === "cnn" ? 1 : 1e-6));
    });
  }
});
