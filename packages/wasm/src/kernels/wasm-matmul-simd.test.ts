import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { setSimdMatMulEnabled, simdMatMul } from "./index.js";
import { setKernelThreadsEnabled } from "./kernel-threads.js";
import { values, size } from "./values.fixture.js";
import { expectNoLeaks } from "../testing.fixture.js";
import { wasmKernelSuite } from "./kernel-suite.fixture.js";


async function use(name: "cpu" | "wasm"): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`setBackend(${name}) failed`);
  await tf.ready();
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string, rtol = 1e-5): void {
  expect(actual.length, label).toBe(expected.length);
  let scale = 1e-6;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    if (Number.isNaN(expected[i]!)) expect(actual[i], `${label}[${i}]`).toBeNaN();
    else worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  }
  expect(worst / scale, `${label}: max abs error ${worst} vs scale ${scale}`).toBeLessThanOrEqual(rtol);
}

type Case = { a: number[]; b: number[]; ta: boolean; tb: boolean; bias?: number[]; activation?: "linear" | "relu" };

const tensors = (c: Case, i: number) => ({
  a: tf.tensor(values(size(c.a), 10 + i), c.a),
  b: tf.tensor(values(size(c.b), 700 + i), c.b),
  bias: c.bias ? tf.tensor(values(size(c.bias), 300 + i), c.bias) : undefined,
});

/** The reference: tfjs's cpu backend (fused.matMul with bias/activation, matMul otherwise). */
function reference(c: Case, i: number): Float32Array {
  return tf.tidy(() => {
    const { a, b, bias } = tensors(c, i);
    const out = c.bias || c.activation ? tf.fused.matMul({ a, b, transposeA: c.ta, transposeB: c.tb, bias, activation: c.activation ?? "linear" }) : tf.matMul(a, b, c.ta, c.tb);
    return out.dataSync().slice() as Float32Array;
  });
}

/** The SIMD kernel itself on wasm (asserting it applies), read back and disposed. */
function simd(c: Case, i: number, kernel: "BatchMatMul" | "_FusedMatMul"): { shape: number[]; data: Float32Array } {
  return tf.tidy(() => {
    const { a, b, bias } = tensors(c, i);
    const backend = tf.backend();
    const out = simdMatMul({ inputs: bias ? { a, b, bias } : { a, b }, backend, attrs: { transposeA: c.ta, transposeB: c.tb, activation: c.activation ?? "linear" } }, kernel);
    expect(out, JSON.stringify(c)).toBeDefined();
    const data = backend.readSync(out!.dataId) as Float32Array;
    backend.disposeData(out!.dataId);
    return { shape: out!.shape, data: data.slice() };
  });
}

describe("fitloop's SIMD matmul (simd/gemm.wat) on wasm against cpu", () => {
  wasmKernelSuite();
  afterAll(async () => {
    setSimdMatMulEnabled(true);
    await use("cpu");
  });

  const dims = [1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 17];
  const grid: Case[] = [];
  for (const m of dims)
    for (const n of [1, 3, 4, 5, 8, 10, 11, 16, 19])
      for (const k of [1, 3, 4, 6, 9])
        for (const ta of [false, true]) for (const tb of [false, true]) if ((m + n + k) % 3 === 0 || (m === 1 && n === 1) || k === 1) grid.push({ a: ta ? [k, m] : [m, k], b: tb ? [n, k] : [k, n], ta, tb });
  // the MLP's shapes (784-256-128-10, batch 64) and a K that is no multiple of 4
  grid.push(
    { a: [64, 784], b: [784, 256], ta: false, tb: false },
    { a: [64, 128], b: [10, 128], ta: false, tb: true },
    { a: [64, 256], b: [64, 128], ta: true, tb: false },
    { a: [37, 30], b: [23, 37], ta: true, tb: true },
    { a: [1, 5, 7], b: [7, 3], ta: false, tb: false }, // batch dims of 1
    { a: [1, 1, 7, 5], b: [1, 3, 7], ta: true, tb: true },
  );

  it(`BatchMatMul: ${grid.length} cases over M, N, K (1, odd, edges), both transposes`, async () => {
    await use("cpu");
    const expected = grid.map(reference);
    await use("wasm");
    grid.forEach((c, i) => {
      const got = simd(c, i, "BatchMatMul");
      const label = JSON.stringify(c);
      expectClose(got.data, expected[i]!, label);
      const viaOp = tf.tidy(() => {
        const { a, b } = tensors(c, i);
        const t = tf.matMul(a, b, c.ta, c.tb);
        expect(got.shape, label).toEqual(t.shape);
        return t.dataSync().slice();
      });
      expect(viaOp, label).toEqual(got.data); // the registered BatchMatMul runs it
    });
  });

  it("_FusedMatMul: bias ([N] and [1, N]), relu and linear, both transposes", async () => {
    const cases: Case[] = [];
    for (const [m, k, n] of [[1, 1, 1], [5, 3, 10], [64, 20, 16], [13, 9, 7], [4, 8, 8]] as const)
      for (const ta of [false, true])
        for (const tb of [false, true])
          for (const activation of ["linear", "relu"] as const)
            for (const bias of [undefined, [n], [1, n]]) cases.push({ a: ta ? [k, m] : [m, k], b: tb ? [n, k] : [k, n], ta, tb, activation, ...(bias ? { bias } : {}) });
    await use("cpu");
    const expected = cases.map(reference);
    await use("wasm");
    cases.forEach((c, i) => expectClose(simd(c, i, "_FusedMatMul").data, expected[i]!, JSON.stringify(c)));
    // through the registered kernel too
    cases.forEach((c, i) => {
      const got = tf.tidy(() => {
        const { a, b, bias } = tensors(c, i);
        return tf.fused.matMul({ a, b, transposeA: c.ta, transposeB: c.tb, bias, activation: c.activation! }).dataSync().slice();
      });
      expectClose(got, expected[i]!, `registered ${JSON.stringify(c)}`);
    });
  });

  it("keeps relu's NaN and leaves the rest to the existing path (batches, large ops, other activations, off switch)", async () => {
    await use("wasm");
    const backend = tf.backend();
    const nan = tf.tidy(() => tf.fused.matMul({ a: tf.tensor2d([[NaN, 1], [1, 1], [-3, 1]]), b: tf.tensor2d([[1], [1]]), activation: "relu" }).dataSync().slice());
    expect(nan[0]).toBeNaN();
    expect([nan[1], nan[2]]).toEqual([2, 0]);
    const info = (shape: number[], dtype: tf.DataType = "float32") => ({ dataId: {}, shape, dtype });
    const call = (a: number[], b: number[], attrs: tf.NamedAttrMap = {}, kernel = "BatchMatMul", dtype: tf.DataType = "float32") => simdMatMul({ inputs: { a: info(a, dtype), b: info(b) }, backend, attrs }, kernel);
    expect(call([2, 4, 5], [2, 5, 3])).toBeUndefined(); // a batch: XNNPACK
    setKernelThreadsEnabled(false);
    try {
      expect(call([1024, 256], [256, 256])).toBeUndefined(); // 134 MFLOP >= the thread gate, no kernel threads: XNNPACK with threads
    } finally {
      setKernelThreadsEnabled(true);
    }
    expect(call([4, 5], [5, 3], {}, "BatchMatMul", "int32")).toBeUndefined();
    expect(call([0, 5], [5, 3])).toBeUndefined();
    expect(call([4, 5], [5, 3], { activation: "elu" }, "_FusedMatMul")).toBeUndefined();
    expect(call([4, 5], [5, 3], { activation: "leakyrelu" }, "_FusedMatMul")).toBeUndefined();
    setSimdMatMulEnabled(false);
    try {
      expect(call([4, 5], [5, 3])).toBeUndefined();
    } finally {
      setSimdMatMulEnabled(true);
    }
  });

  it("takes matmuls from the thread gate's size when fitloop's kernel threads run, split over them, as cpu", async () => {
    const c: Case = { a: [1024, 256], b: [1024, 200], ta: true, tb: false }; // 105 MFLOP
    await use("cpu");
    const expected = reference(c, 5);
    await use("wasm");
    expectClose(simd(c, 5, "BatchMatMul").data, expected, "large, transposed A");
  });

  it("leaks neither tensors, wasm buffers nor heap (dense layer forward and gradients)", async () => {
    await use("wasm");
    const x = tf.tensor(values(12 * 30, 1), [12, 30]);
    const w1 = tf.variable(tf.tensor(values(30 * 17, 2), [30, 17]));
    const b1 = tf.variable(tf.tensor(values(17, 3), [17]));
    const w2 = tf.variable(tf.tensor(values(17 * 10, 4), [17, 10]));
    const step = () =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => tf.sum(tf.matMul(tf.fused.matMul({ a: x, b: w1, bias: b1, activation: "relu" }), w2)), [w1, b1, w2]);
        return Object.values(grads).map((g) => g.dataSync());
      });
    step();
    const be = tf.backend() as unknown as { numDataIds(): number; wasm: { HEAPU8: Uint8Array } };
    const [ids, heap] = [be.numDataIds(), be.wasm.HEAPU8.length];
    await expectNoLeaks(step, { warmup: 1, iterations: 20 });
    expect(be.numDataIds()).toBe(ids);
    expect(be.wasm.HEAPU8.length).toBe(heap);
    tf.dispose([x, w1, b1, w2]);
  });
});
