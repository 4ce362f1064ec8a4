import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { isPool2x2, planBiasAdd, registerWasmKernels, restoreWasmKernels, stockWasmKernel, wasmAdd, wasmMaxPool } from "./index.js";
import { elementwiseSimd, maxPool2x2Simd, setSimdKernelsEnabled, type EmscriptenWasm } from "./simd/index.js";
import { values, size } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { expectNoLeaks, useTestBackend } from "../testing.fixture.js";

/** Round 8b's SIMD kernels (bias add, ReLU, bias-gradient sum, 2x2 max pooling) against the cpu backend. */

const SPECIAL = [NaN, Infinity, -Infinity, -0, 0, 1e-40, -1e-40];

/** Deterministic data; `special` puts NaN/±Inf/±0/denormals at spread-out positions, `ties` quantises (many equal values). */
function data(shape: number[], seed: number, opts: { special?: boolean; ties?: boolean } = {}): tf.Tensor {
  const v = values(size(shape), seed);
  if (opts.ties) for (let i = 0; i < v.length; i++) v[i] = Math.round(v[i]! * 2) / 2 || (i % 2 ? -0 : 0);
  if (opts.special) for (let i = 0, j = 0; i < v.length; i += 7, j++) v[i] = SPECIAL[j % SPECIAL.length]!;
  return tf.tensor(v, shape);
}

async function use(name: "cpu" | "wasm"): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`setBackend(${name}) failed`);
  await tf.ready();
}

/** Bit for bit, except that any NaN matches any NaN (wasm may return a canonical NaN); `zeroSign` false: -0 matches +0. */
function expectSameFloats(actual: Float32Array, expected: Float32Array, label: string, zeroSign = true): void {
  expect(actual.length, label).toBe(expected.length);
  const [a, e] = [new Uint32Array(actual.buffer, actual.byteOffset, actual.length), new Uint32Array(expected.buffer, expected.byteOffset, expected.length)];
  for (let i = 0; i < actual.length; i++) {
    if (Number.isNaN(expected[i]!)) expect(Number.isNaN(actual[i]!), `${label} [${i}]: ${actual[i]} vs NaN`).toBe(true);
    else if (a[i] !== e[i] && (zeroSign || actual[i] !== expected[i])) expect(actual[i], `${label} [${i}] (bits ${a[i]} vs ${e[i]})`).toBe(expected[i]); // fails with both values
  }
}

/** Each case on cpu, then on wasm (fitloop's kernels registered; with SIMD on and off), compared bit for bit. */
async function sameAsCpu<C>(cases: C[], run: (c: C) => tf.Tensor, label: (c: C) => string, zeroSign: (c: C) => boolean = () => true, withoutSimd: (c: C) => boolean = () => true): Promise<void> {
  await use("cpu");
  const expected = cases.map((c) => tf.tidy(() => run(c)).dataSync().slice() as Float32Array);
  await use("wasm");
  for (const simd of [true, false]) {
    setSimdKernelsEnabled(simd);
    try {
      cases.forEach((c, i) => {
        if (!simd && !withoutSimd(c)) return;
        const t = tf.tidy(() => run(c));
        expectSameFloats(t.dataSync() as Float32Array, expected[i]!, `${label(c)} simd=${simd}`, simd && zeroSign(c));
        t.dispose();
      });
    } finally {
      setSimdKernelsEnabled(true);
    }
  }
}

const wasmBackend = () => tf.engine().backend as unknown as tf.KernelBackend & { numDataIds(): number; wasm: EmscriptenWasm & { HEAPU8: Uint8Array } };

describe("round 8b: SIMD bias add, ReLU, bias-gradient sum and 2x2 max pooling on wasm", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
    registerWasmKernels();
    expect(elementwiseSimd(wasmBackend().wasm)).toBeDefined();
    expect(maxPool2x2Simd(wasmBackend().wasm)).toBeDefined();
  });
  afterAll(async () => {
    setSimdKernelsEnabled(true);
    await use("cpu");
  });

  it("Add and MaxPool are registered, and restoreWasmKernels puts back the stock Add and MaxPool", async () => {
    await use("wasm");
    const ours = { Add: wasmAdd, MaxPool: wasmMaxPool } as const;
    for (const [name, f] of Object.entries(ours)) expect(tf.getKernel(name, "wasm")?.kernelFunc, name).toBe(f);
    restoreWasmKernels();
    try {
      for (const [name, f] of Object.entries(ours)) expect(tf.getKernel(name, "wasm")?.kernelFunc, name).not.toBe(f);
      expect(tf.tidy(() => [...tf.relu(tf.add(tf.tensor([[-1, 2, 3, 4]]), tf.tensor([1, 1, 1, 1]))).dataSync()])).toEqual([0, 3, 4, 5]);
    } finally {
      registerWasmKernels();
    }
    for (const [name, f] of Object.entries(ours)) expect(tf.getKernel(name, "wasm")?.kernelFunc, name).toBe(f);
  });

  it("Add: the bias pattern (either order, [C] or [1,..,1,C]) takes the SIMD path; other broadcasts and dtypes do not", () => {
    const info = (shape: number[], dtype: tf.DataType = "float32") => ({ shape, dtype, dataId: {} }) as tf.TensorInfo;
    expect(planBiasAdd(info([64, 26, 26, 32]), info([32]))).toEqual({ x: "a", shape: [64, 26, 26, 32], rows: 64 * 26 * 26, c: 32 });
    expect(planBiasAdd(info([1, 1, 5]), info([3, 5]))).toEqual({ x: "b", shape: [1, 3, 5], rows: 3, c: 5 });
    expect(planBiasAdd(info([2, 8]), info([1, 1, 8]))).toEqual({ x: "a", shape: [1, 2, 8], rows: 2, c: 8 });
    expect(planBiasAdd(info([4, 6]), info([4, 6]))).toBeUndefined(); // same shape: stock
    expect(planBiasAdd(info([4, 6]), info([4, 1]))).toBeUndefined(); // broadcast along another axis
    expect(planBiasAdd(info([4, 3]), info([3]))).toBeUndefined(); // fewer than 4 channels
    expect(planBiasAdd(info([4, 8], "int32"), info([8], "int32"))).toBeUndefined();
    expect(planBiasAdd(info([4, 8]), info([]))).toBeUndefined();
    expect(planBiasAdd(info([0, 8]), info([8]))).toBeUndefined();
  });

  it("Add matches cpu bit for bit over ranks 2-4, channels, both orders and NaN/Inf/-0", async () => {
    type C = { x: number[]; b: number[]; swap: boolean };
    const cases: C[] = [];
    for (const c of [3, 4, 5, 8, 13, 32, 64])
      for (const lead of [[7], [3, 5], [2, 3, 5]])
        for (const b of [[c], [...lead.map(() => 1), c]]) for (const swap of [false, true]) cases.push({ x: [...lead, c], b, swap });
    cases.push({ x: [4, 6], b: [4, 6], swap: false }, { x: [4, 6], b: [4, 1], swap: true }); // stock paths
    await sameAsCpu(
      cases,
      (c) => {
        const [x, b] = [data(c.x, size(c.x), { special: true }), data(c.b, 7 + size(c.b), { special: size(c.b) > 8 })];
        return c.swap ? tf.add(b, x) : tf.add(x, b);
      },
      (c) => `Add ${JSON.stringify(c)}`,
    );
  });

  it("Sum and Mean over leading axes: SIMD equals the float64 JS loop and cpu, over row counts (tails) and column counts", async () => {
    type C = { shape: number[]; axes: number[]; mean: boolean; keepDims: boolean };
    const cases: C[] = [];
    for (const rows of [1, 3, 4, 5, 37, 64 * 26])
      for (const cols of [1, 3, 4, 5, 32, 33]) cases.push({ shape: [rows, cols], axes: [0], mean: rows % 2 === 0, keepDims: false });
    cases.push({ shape: [4, 5, 3, 8], axes: [0, 1, 2], mean: false, keepDims: true }, { shape: [6, 7, 12], axes: [1, 0], mean: true, keepDims: false });
    const run = (c: C, i: number) => {
      const x = tf.mul(data(c.shape, 31 + i), 100 + i);
      return c.mean ? tf.mean(x, c.axes, c.keepDims) : tf.sum(x, c.axes, c.keepDims);
    };
    await use("cpu");
    const cpu = cases.map((c, i) => tf.tidy(() => run(c, i)).dataSync().slice());
    await use("wasm");
    const onWasm = (simd: boolean) => {
      setSimdKernelsEnabled(simd);
      try {
        return cases.map((c, i) => tf.tidy(() => run(c, i)).dataSync().slice() as Float32Array);
      } finally {
        setSimdKernelsEnabled(true);
      }
    };
    const [simd, js] = [onWasm(true), onWasm(false)];
    cases.forEach((c, i) => {
      // both are float64 sums rounded once to float32: equal but for a rare last-bit tie in rounding
      expectClose(simd[i]!, js[i]!, `SIMD vs JS ${JSON.stringify(c)}`, 1e-7);
      expectClose(simd[i]!, cpu[i]!, `SIMD vs cpu ${JSON.stringify(c)}`, 1e-5); // cpu sums in float32
    });
    const sums = cases.map((c) => c.shape.reduce((p, q) => p * q, 1));
    expect(Math.max(...sums)).toBeGreaterThan(50000); // the [64*26, 32] bias-gradient size is in the grid
  });

  it("MaxPool 2x2/stride 2 matches cpu bit for bit (first maximum, ties, ±0, NaN skipped) and stock XNNPACK where there is no NaN", async () => {
    type C = { shape: [number, number, number, number]; pad: "valid" | "same"; special: boolean; f?: number; s?: number };
    const cases: C[] = [];
    // (no 1-row input: stock XNNPACK reads out of bounds on an empty `valid` output)
    for (const [h, w] of [[2, 2], [3, 3], [5, 4], [6, 7], [26, 26], [11, 11], [2, 9]] as const)
      // NaN only where the 2x2 kernel can run: stock XNNPACK does not skip NaN as cpu does (a [NaN, 0.5] window gives -inf there)
      for (const c of [4, 8, 32, 3, 6]) for (const pad of ["valid", "same"] as const) cases.push({ shape: [2, h, w, c], pad, special: (h + c) % 2 === 0 && isPool2x2(tf.backend_util.computePool2DInfo([2, h, w, c], 2, 2, 1, pad)) });
    cases.push({ shape: [2, 6, 6, 8], pad: "valid", special: false, f: 3, s: 2 }, { shape: [2, 6, 6, 8], pad: "valid", special: false, f: 2, s: 1 });
    const pool = (c: C) => tf.maxPool(data(c.shape, size(c.shape), { ties: true, special: c.special }) as tf.Tensor4D, c.f ?? 2, c.s ?? 2, c.pad);
    const label = (c: C) => `MaxPool ${JSON.stringify(c)}`;
    // which ones take the 2x2 kernel: 2x2 windows, stride 2, no padding, channels % 4 == 0
    const is2x2 = (c: C) => isPool2x2(tf.backend_util.computePool2DInfo(c.shape, c.f ?? 2, c.s ?? 2, 1, c.pad));
    // stock XNNPACK (the other cases, and all of them without SIMD) may give +0 for a window of -0 and +0 where cpu keeps the first
    // without SIMD stock XNNPACK runs, which does not skip NaN: those cases only with SIMD
    await sameAsCpu(cases, pool, label, is2x2, (c) => !c.special);
    const taken = cases.filter(is2x2);
    expect(taken.length).toBeGreaterThan(15);
    expect(taken.every((c) => c.shape[3] % 4 === 0 && (c.f ?? 2) === 2 && (c.s ?? 2) === 2)).toBe(true);
    // bit for bit the stock XNNPACK kernel on data without NaN
    await use("wasm");
    const backend = wasmBackend();
    for (const c of taken.filter((t) => !t.special)) {
      const x = data(c.shape, size(c.shape), { ties: true });
      const attrs = { filterSize: 2, strides: 2, pad: c.pad } as unknown as tf.NamedAttrMap;
      const stock = stockWasmKernel("MaxPool")!.kernelFunc({ inputs: { x }, backend, attrs }) as tf.TensorInfo;
      const ours = wasmMaxPool({ inputs: { x }, backend, attrs });
      const read = (t: tf.TensorInfo) => backend.readSync(t.dataId) as Float32Array;
      expectSameFloats(read(ours), read(stock), `${label(c)} vs stock`, false); // the same values; only the sign of a ±0 tie may differ
      backend.disposeData(stock.dataId);
      backend.disposeData(ours.dataId);
      x.dispose();
    }
  });

  it("MaxPoolGrad 2x2/stride 2 matches cpu bit for bit (first maximum in window order, ties, odd sizes, -0 gradients)", async () => {
    type C = { shape: [number, number, number, number]; pad: "valid" | "same"; special: boolean };
    const cases: C[] = [];
    for (const [h, w] of [[2, 2], [3, 3], [5, 4], [4, 7], [26, 26], [11, 11]] as const)
      for (const c of [4, 8, 32, 6]) for (const pad of ["valid", "same"] as const) cases.push({ shape: [2, h, w, c], pad, special: (h + w) % 2 === 0 });
    const grad = (c: C) => {
      const x = data(c.shape, 3 * size(c.shape), { ties: true, special: c.special }) as tf.Tensor4D;
      const f = (t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 2, 2, c.pad);
      const dy = data(f(x).shape, 17, { special: false });
      const dyv = dy.dataSync().slice();
      for (let i = 0; i < dyv.length; i += 5) dyv[i] = -0; // a -0 gradient gives +0 (0 + dy on cpu)
      return tf.grad(f)(x, tf.tensor(dyv, dy.shape));
    };
    await sameAsCpu(cases, grad, (c) => `MaxPoolGrad ${JSON.stringify(c)}`);
  });

  it("the exports work on sub-ranges (rows, elements, images): two halves give the whole call's result, nothing written past the output", async () => {
    await use("wasm");
    const b = wasmBackend() as unknown as { wasm: EmscriptenWasm & { HEAPF32: Float32Array; HEAPF64: Float64Array }; dataIdMap: { get(d: object): { memoryOffset: number } } };
    const ew = elementwiseSimd(b.wasm)!.exports;
    const mp = maxPool2x2Simd(b.wasm)!.exports;
    const [n, c, h, w] = [5, 12, 7, 6]; // odd image count and odd height: halves of unequal size, an uncovered row
    const x = data([n, h, w, c], 77, { ties: true });
    const dy = data([n, 3, 3, c], 78);
    const bias = data([c], 79);
    const p = (t: tf.Tensor) => b.dataIdMap.get(t.dataId).memoryOffset;
    const rows = n * h * w;
    const GUARD = 8;
    const [whole, halves] = [tf.zeros([rows * c + GUARD]), tf.zeros([rows * c + GUARD])]; // outputs written in place (test only)
    const read = (t: tf.Tensor, from: number, to: number) => b.wasm.HEAPF32.slice(p(t) / 4 + from, p(t) / 4 + to);
    const split = (count: number) => [Math.floor(count / 2), count - Math.floor(count / 2)] as const;
    const SENTINEL = 12345.5;
    const check = (label: string, len: number, all: () => void, first: () => void, second: () => void) => {
      for (const t of [whole, halves]) b.wasm.HEAPF32.fill(SENTINEL, p(t) / 4, p(t) / 4 + rows * c + GUARD);
      all();
      first();
      second();
      expect(read(whole, 0, len).includes(SENTINEL), `${label} writes its whole output`).toBe(false);
      expectSameFloats(read(halves, 0, len), read(whole, 0, len), label);
      for (const t of [whole, halves]) expect([...read(t, len, len + GUARD)], `${label}: past the output`).toEqual(new Array(GUARD).fill(SENTINEL));
    };
    const [r0] = split(rows);
    check("addBias", rows * c, () => ew.addBias(p(x), p(bias), p(whole), rows, c), () => ew.addBias(p(x), p(bias), p(halves), r0, c), () => ew.addBias(p(x) + 4 * r0 * c, p(bias), p(halves) + 4 * r0 * c, rows - r0, c));
    const [i0] = split(n);
    const img = 4 * h * w * c;
    check("maxPool", n * 9 * c, () => mp.maxPool(p(x), p(whole), n, h, w, c, 3, 3), () => mp.maxPool(p(x), p(halves), i0, h, w, c, 3, 3), () => mp.maxPool(p(x) + i0 * img, p(halves) + (i0 * img * 9) / (h * w), n - i0, h, w, c, 3, 3));
    check("maxPoolGrad", rows * c, () => mp.maxPoolGrad(p(x), p(dy), p(whole), n, h, w, c, 3, 3), () => mp.maxPoolGrad(p(x), p(dy), p(halves), i0, h, w, c, 3, 3), () => mp.maxPoolGrad(p(x) + i0 * img, p(dy) + (i0 * img * 9) / (h * w), p(halves) + i0 * img, n - i0, h, w, c, 3, 3));
    // column sums: one float64 accumulator per half, added (as a second thread would)
    const acc = b.wasm._malloc(3 * 8 * c + 8 * GUARD);
    try {
      const f64 = () => new Float64Array(b.wasm.HEAPF64.buffer, acc, 3 * c + GUARD);
      f64().fill(0).fill(SENTINEL, 3 * c);
      ew.colSum(p(x), acc, rows, c);
      ew.colSum(p(x), acc + 8 * c, r0, c);
      ew.colSum(p(x) + 4 * r0 * c, acc + 16 * c, rows - r0, c);
      const a = f64();
      for (let j = 0; j < c; j++) expect(a[c + j]! + a[2 * c + j]!, `colSum ${j}`).toBeCloseTo(a[j]!, 10);
      expect(a[0]).not.toBe(0);
      expect([...a.subarray(3 * c)]).toEqual(new Array(GUARD).fill(SENTINEL));
    } finally {
      b.wasm._free(acc);
    }
    tf.dispose([x, dy, bias, whole, halves]);
  });

  it("leak neither tensors, wasm buffers nor heap", async () => {
    await use("wasm");
    const x = data([4, 10, 9, 8], 5) as tf.Tensor4D;
    const bias = tf.variable(data([8], 6));
    const step = () =>
      tf.tidy(() => {
        const { grads, value } = tf.variableGrads(() => {
          const h = tf.relu(tf.add(x, bias)) as tf.Tensor4D;
          return tf.sum(tf.maxPool(h, 2, 2, "valid"));
        }, [bias]);
        const s = tf.sum(tf.relu(x), [0, 1, 2]);
        return [value.dataSync(), s.dataSync(), ...Object.values(grads).map((g) => g.dataSync())];
      });
    step();
    const [ids, heap] = [wasmBackend().numDataIds(), wasmBackend().wasm.HEAPU8.length];
    await expectNoLeaks(step, { warmup: 1, iterations: 20 });
    expect(wasmBackend().numDataIds()).toBe(ids);
    expect(wasmBackend().wasm.HEAPU8.length).toBe(heap);
    tf.dispose([x, bias]);
  });
});
