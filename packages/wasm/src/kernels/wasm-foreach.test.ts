import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { AXPY_TENSORS, LERP_TENSORS, registerWasmKernels, SCALE_TENSORS } from "./index.js";
import { elementwiseSimd, setSimdKernelsEnabled, type EmscriptenWasm } from "./simd/index.js";
import { size, values } from "./values.fixture.js";
import { expectNoLeaks, useTestBackend } from "../testing.fixture.js";

/**
 * The foreach kernels for weight updates (`FitloopAxpyTensors` and its `scale` form,
 * `FitloopLerpTensors` and its `divide` form) on the real wasm backend, against the tfjs ops they
 * replace (core's fallback: Mul, Add (, Mul); Sub, Mul (or Div), Add), bit for bit, with
 * WebAssembly SIMD and with the JS loops.
 */

type Op = "axpy" | "axpyScale" | "lerp" | "lerpDiv";
/** The second scalar of `axpyScale` (the mean's 1 / samples, not a power of two). */
const SCALE = 1 / 48;

// lengths around the 16-float unrolled loop and the 4-lane vectors (odd tails), an MLP kernel, empty
const SHAPES = [[784, 256], [256], [7], [1], [17], [1031], [3, 3, 8, 5], [0], [4, 0]];
const SPECIAL = [NaN, Infinity, -Infinity, -0, 0, 1e-40, 3.4e38, -3.4e38];

/** Deterministic data; `special` puts NaN, ±Inf, ±0, a denormal and near-overflow values at spread-out positions. */
function data(shape: number[], seed: number, special = false): tf.Tensor {
  const v = values(size(shape), seed, 3);
  if (special) for (let i = seed % 5, j = 0; i < v.length; i += 5, j++) v[i] = SPECIAL[(j + seed) % SPECIAL.length]!;
  return tf.tensor(v, shape);
}

/** What core's fallback computes (tfjs ops), on the backend in use. */
function reference(op: Op, ps: tf.Tensor[], qs: tf.Tensor[], s: tf.Scalar): tf.Tensor[] {
  return ps.map((p, i) => {
    if (op === "axpy") return tf.add(p, tf.mul(qs[i]!, s));
    if (op === "axpyScale") return tf.mul(tf.add(p, tf.mul(qs[i]!, s)), tf.scalar(SCALE));
    return tf.add(p, op === "lerp" ? tf.mul(tf.sub(qs[i]!, p), s) : tf.div(tf.sub(qs[i]!, p), s));
  });
}

/** The fused kernel, with the scalar as an attr (a number) or as the first input (a tensor); `donate` gives up `ps`. */
function fused(op: Op, ps: tf.Tensor[], qs: tf.Tensor[], s: number | tf.Scalar, donate = false): tf.Tensor[] {
  const [kernel, attr] = op.startsWith("axpy") ? [AXPY_TENSORS, "a"] : [LERP_TENSORS, "t"];
  const extra = { ...(op === "lerpDiv" ? { divide: true } : op === "axpyScale" ? { scale: SCALE } : {}), ...(donate ? { donate } : {}) };
  const inputs = typeof s === "number" ? [...ps, ...qs] : [s, ...ps, ...qs];
  const attrs = typeof s === "number" ? { ...extra, [attr]: s, scalarInput: false } : { ...extra, scalarInput: true };
  return tf.engine().runKernel(kernel, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
}

/** Bit for bit, except that any NaN matches any NaN (wasm may return a canonical NaN). */
function expectSameFloats(actual: Float32Array, expected: Float32Array, label: string): void {
  expect(actual.length, label).toBe(expected.length);
  const [a, e] = [new Uint32Array(actual.buffer, actual.byteOffset, actual.length), new Uint32Array(expected.buffer, expected.byteOffset, expected.length)];
  for (let i = 0; i < actual.length; i++) {
    if (Number.isNaN(expected[i]!)) expect(Number.isNaN(actual[i]!), `${label} [${i}]: ${actual[i]} vs NaN`).toBe(true);
    else if (a[i] !== e[i]) expect(actual[i], `${label} [${i}] (bits ${a[i]} vs ${e[i]})`).toBe(expected[i]);
  }
}

async function use(name: "cpu" | "wasm"): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`setBackend(${name}) failed`);
  await tf.ready();
}

const wasmBackend = () => tf.engine().backend as unknown as { wasm: EmscriptenWasm & { HEAPF32: Float32Array }; dataIdMap: { get(d: object): { memoryOffset: number } } };

describe("foreach kernels for weight updates (axpy, axpy with a scale, lerp, lerp dividing) on wasm", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
    registerWasmKernels();
    expect(elementwiseSimd(wasmBackend().wasm)).toBeDefined();
  });
  afterAll(async () => {
    setSimdKernelsEnabled(true);
    await use("cpu");
  });

  it("are registered on wasm only", () => {
    for (const k of [AXPY_TENSORS, LERP_TENSORS]) {
      expect(tf.getKernel(k, "wasm"), k).toBeDefined();
      expect(tf.getKernel(k, "cpu"), k).toBeUndefined();
    }
  });

  const cases: [Op, number, boolean][] = [];
  for (const op of ["axpy", "axpyScale", "lerp", "lerpDiv"] as const) for (const s of op === "lerpDiv" ? [3, 7, 1e-3] : [-0.37, 64, 1e-3]) for (const special of [false, true]) cases.push([op, s, special]);

  it.each(cases)("%s with scalar %d (special values: %s) matches tfjs's ops bit for bit, with SIMD and the JS loops, the scalar as an attr or a tensor", async (op, s, special) => {
    await use("wasm");
    // the ops on the cpu backend and on wasm (stock kernels) give the same bits; compare with both
    const make = () => ({ ps: SHAPES.map((sh, i) => data(sh, 10 + i, special)), qs: SHAPES.map((sh, i) => data(sh, 50 + i, special)) });
    await use("cpu");
    const cpu = tf.tidy(() => {
      const { ps, qs } = make();
      return reference(op, ps, qs, tf.scalar(s)).map((t) => t.dataSync().slice() as Float32Array);
    });
    await use("wasm");
    for (const simd of [true, false]) {
      setSimdKernelsEnabled(simd);
      try {
        tf.tidy(() => {
          const { ps, qs } = make();
          const ops = reference(op, ps, qs, tf.scalar(s)).map((t) => t.dataSync() as Float32Array);
          const byAttr = fused(op, ps, qs, s);
          const byTensor = fused(op, ps, qs, tf.scalar(s));
          SHAPES.forEach((shape, i) => {
            const label = `${op} ${s} [${shape.join(",")}] simd=${simd}`;
            expect(byAttr[i]!.shape, label).toEqual(shape);
            expect(byAttr[i]!.dtype, label).toBe("float32");
            expectSameFloats(ops[i]!, cpu[i]!, `${label}: wasm ops vs cpu`);
            expectSameFloats(byAttr[i]!.dataSync() as Float32Array, ops[i]!, `${label}: attr`);
            expectSameFloats(byTensor[i]!.dataSync() as Float32Array, ops[i]!, `${label}: tensor`);
          });
        });
      } finally {
        setSimdKernelsEnabled(true);
      }
    }
  });

  it("propagate NaN and Infinity from either side and from the scalar", async () => {
    await use("wasm");
    tf.tidy(() => {
      const read = (ts: tf.Tensor[]) => ts.map((t) => Array.from(t.dataSync()));
      const y = tf.tensor1d([1, Number.NaN, Number.POSITIVE_INFINITY, 2, 3]);
      const x = tf.tensor1d([Number.NEGATIVE_INFINITY, 1, Number.POSITIVE_INFINITY, Number.NaN, 1]);
      expect(read(fused("axpy", [y], [x], 2))).toEqual([[Number.NEGATIVE_INFINITY, Number.NaN, Number.POSITIVE_INFINITY, Number.NaN, 5]]);
      expect(read(fused("axpyScale", [y], [x], 2))).toEqual([[Number.NEGATIVE_INFINITY, Number.NaN, Number.POSITIVE_INFINITY, Number.NaN, Math.fround(5 * Math.fround(SCALE))]]);
      // Inf - Inf is NaN: an infinite average stays broken rather than silently recovering
      expect(read(fused("lerp", [y], [x], 0.5))).toEqual([[Number.NEGATIVE_INFINITY, Number.NaN, Number.NaN, Number.NaN, 2]]);
      expect(read(fused("lerp", [tf.tensor1d([1, 2])], [tf.tensor1d([3, 4])], Number.NaN))).toEqual([[Number.NaN, Number.NaN]]);
      expect(read(fused("lerpDiv", [tf.tensor1d([1, 2])], [tf.tensor1d([3, 4])], 0))).toEqual([[Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]]);
    });
  });

  it("write exactly their outputs (nothing past the end, any alignment and tail), and refuse what they cannot do", async () => {
    await use("wasm");
    const b = wasmBackend();
    const ew = elementwiseSimd(b.wasm)!.exports;
    const GUARD = 8;
    const SENTINEL = 12345.5;
    const at = (t: tf.Tensor) => b.dataIdMap.get(t.dataId).memoryOffset;
    const p = tf.tensor1d(values(80, 1));
    const q = tf.tensor1d(values(80, 2));
    const out = tf.zeros([80 + 1 + GUARD]); // written in place (test only)
    try {
      for (const n of [0, 1, 3, 4, 5, 15, 16, 17, 33, 63]) {
        for (const shift of [0, 1]) {
          for (const op of ["axpy", "axpyScale", "lerp", "lerpDiv"] as const) {
            const heap = b.wasm.HEAPF32;
            const o = at(out) / 4 + shift; // shift: a pointer that is not 16-byte aligned
            heap.fill(SENTINEL, at(out) / 4, at(out) / 4 + 80 + 1 + GUARD);
            if (op === "axpyScale") ew.axpyScale(at(p) + 4 * shift, at(q) + 4 * shift, 4 * o, n, 0.25, 3);
            else ew[op](at(p) + 4 * shift, at(q) + 4 * shift, 4 * o, n, 0.25);
            const js = (i: number) => {
              const [u, v] = [heap[at(p) / 4 + shift + i]!, heap[at(q) / 4 + shift + i]!];
              if (op.startsWith("axpy")) return Math.fround(Math.fround(u + Math.fround(v * 0.25)) * (op === "axpyScale" ? 3 : 1));
              return Math.fround(u + Math.fround(op === "lerp" ? Math.fround(v - u) * 0.25 : Math.fround(v - u) / 0.25));
            };
            const label = `${op} n=${n} shift=${shift}`;
            expect(Array.from(heap.slice(o, o + n)), label).toEqual(Array.from({ length: n }, (_, i) => js(i)));
            expect(Array.from(heap.slice(o + n, o + n + GUARD)), `${label}: past the output`).toEqual(new Array(GUARD).fill(SENTINEL));
          }
        }
      }
      const pair = (sh: number[]) => [tf.zeros(sh), tf.zeros(sh)];
      expect(() => fused("axpy", pair([2]), pair([3]), 1)).toThrow(/pair 0 has \[2\] and \[3\]/);
      expect(() => tf.engine().runKernel(LERP_TENSORS, [tf.zeros([2]), tf.zeros([2]), tf.zeros([2])] as unknown as tf.NamedTensorMap, { t: 1, scalarInput: false })).toThrow(/takes pairs/);
      expect(() => tf.engine().runKernel(LERP_TENSORS, [tf.zeros([2]), tf.zeros([2])] as unknown as tf.NamedTensorMap, { scalarInput: false })).toThrow(/attr t must be a number/);
      expect(() => fused("lerp", [tf.zeros([2])], [tf.zeros([2])], tf.zeros([2]) as tf.Scalar)).toThrow(/first input must be a scalar/);
      expect(() => fused("axpy", [tf.zeros([2], "int32")], [tf.zeros([2], "int32")], 1)).toThrow(/must be float32, got int32/);
    } finally {
      tf.dispose([p, q, out]);
    }
  });

  it("donate: a first operand nothing else holds takes its result in place (same bits); one that is shared or also another input gets a new buffer and stays as it was", async () => {
    await use("wasm");
    const b = wasmBackend();
    const at = (t: tf.Tensor) => b.dataIdMap.get(t.dataId).memoryOffset;
    const ids = () => (tf.engine().backend as unknown as { numDataIds(): number }).numDataIds();
    for (const op of ["axpy", "axpyScale", "lerp", "lerpDiv"] as const) {
      for (const simd of [true, false]) {
        setSimdKernelsEnabled(simd);
        try {
          const label = `${op} simd=${simd}`;
          const make = () => SHAPES.map((sh, i) => data(sh, 70 + i, true));
          const qs = SHAPES.map((sh, i) => data(sh, 20 + i, true));
          const want = tf.tidy(() => reference(op, make(), qs, tf.scalar(0.3)).map((t) => t.dataSync().slice() as Float32Array));
          const before = ids();
          // exclusive: written in place (same buffer), the inputs disposed as the contract says
          const ps = make();
          const offsets = ps.map(at);
          const outs = fused(op, ps, qs, 0.3, true);
          expect(ids(), `${label}: no new buffer`).toBe(before + SHAPES.length);
          outs.forEach((o, i) => {
            expect(o.dataId, label).toBe(ps[i]!.dataId);
            expect(at(o), label).toBe(offsets[i]);
            expectSameFloats(o.dataSync() as Float32Array, want[i]!, `${label} [${SHAPES[i]!.join(",")}] in place`);
          });
          tf.dispose(ps);
          expect(outs.every((o) => !o.isDisposed && o.dataSync().length === o.size), label).toBe(true);
          tf.dispose(outs);
          expect(ids(), `${label}: nothing left`).toBe(before);
          // shared (a clone holds the buffer), or read again by another input of the call: new buffers, the first operands unchanged
          const shared = make();
          const clones = shared.map((t) => t.clone());
          // pair 0's first operand is read again as pair 1's second: written in place, pair 1 would read the result
          const aliased = [data([33], 1), data([33], 2)];
          const cases: [string, tf.Tensor[], tf.Tensor[]][] = [
            ["shared", shared, qs],
            ["also a second operand", aliased, [data([33], 3), aliased[0]!]],
          ];
          for (const [what, ps2, qs2] of cases) {
            const expected = tf.tidy(() => reference(op, ps2, qs2, tf.scalar(0.3)).map((t) => t.dataSync().slice() as Float32Array));
            const kept = ps2.map((t) => t.dataSync().slice() as Float32Array);
            const got = fused(op, ps2, qs2, 0.3, true);
            got.forEach((o, i) => {
              if (what === "shared" || i === 0) expect(o.dataId, `${label} ${what} [${i}]`).not.toBe(ps2[i]!.dataId);
              else expect(o.dataId, `${label} ${what} [${i}]: its own, in place`).toBe(ps2[i]!.dataId);
              expectSameFloats(o.dataSync() as Float32Array, expected[i]!, `${label} ${what} [${i}]`);
            });
            if (what === "shared") ps2.forEach((t, i) => expectSameFloats(t.dataSync() as Float32Array, kept[i]!, `${label}: a shared operand is untouched`));
            tf.dispose(got);
          }
          tf.dispose([...shared, ...clones, ...aliased, cases[1]![2][0]!, ...qs]);
          // the same tensor twice among the first operands: neither is written in place
          const twice = data([33], 5);
          const other = [data([33], 6), data([33], 7)];
          const wantTwice = tf.tidy(() => reference(op, [twice, twice], other, tf.scalar(0.3)).map((t) => t.dataSync().slice() as Float32Array));
          const gotTwice = fused(op, [twice, twice], other, 0.3, true);
          gotTwice.forEach((o, i) => {
            expect(o.dataId, label).not.toBe(twice.dataId);
            expectSameFloats(o.dataSync() as Float32Array, wantTwice[i]!, `${label}: twice [${i}]`);
          });
          tf.dispose([twice, ...other, ...gotTwice]);
          expect(ids(), `${label}: nothing left at the end`).toBe(before - SHAPES.length); // qs predate before
        } finally {
          setSimdKernelsEnabled(true);
        }
      }
    }
  });

  it("donate with variables: an average made from a model weight (shared buffer) is not written in place; once it has its own, it is, and assign keeps it", async () => {
    await use("wasm");
    const weight = tf.variable(tf.tensor1d(values(37, 9)));
    const w0 = weight.dataSync().slice();
    const avg = tf.variable(weight, false); // shares the weight's buffer, as WeightAverage.start does
    const update = () =>
      tf.tidy(() => {
        const [next] = fused("lerp", [avg], [tf.tensor1d(values(37, 10))], 0.5, true);
        avg.assign(next as tf.Tensor1D);
      });
    update();
    expect(Array.from(weight.dataSync())).toEqual(Array.from(w0)); // the model's weight is untouched
    expect(avg.dataId).not.toBe(weight.dataId);
    const own = avg.dataId;
    const expected = tf.tidy(() => tf.add(avg, tf.mul(tf.sub(tf.tensor1d(values(37, 10)), avg), 0.5)).dataSync().slice());
    const n = tf.memory().numTensors;
    update();
    expect(avg.dataId).toBe(own); // in place now: the average owns its buffer
    expect(Array.from(avg.dataSync())).toEqual(Array.from(expected));
    expect(tf.memory().numTensors).toBe(n);
    tf.dispose([weight, avg]);
  });

  it("donate works the same for FitloopScaleTensors (weight decay): in place when exclusive, a new buffer when shared", async () => {
    await use("wasm");
    const scale = (xs: tf.Tensor[], s: tf.Scalar, donate: boolean) => tf.engine().runKernel(SCALE_TENSORS, [s, ...xs] as unknown as tf.NamedTensorMap, (donate ? { donate } : {}) as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
    const s = tf.scalar(0.999);
    for (const simd of [true, false]) {
      setSimdKernelsEnabled(simd);
      try {
        const xs = SHAPES.map((sh, i) => data(sh, 60 + i, true));
        const want = tf.tidy(() => xs.map((x) => tf.mul(x, s).dataSync().slice() as Float32Array));
        const held = xs[1]!.clone(); // another holder: that one must not change
        const kept = xs[1]!.dataSync().slice() as Float32Array;
        const ids = xs.map((x) => x.dataId);
        const outs = scale(xs, s, true);
        outs.forEach((o, i) => {
          if (i === 1) expect(o.dataId, `simd=${simd} shared`).not.toBe(ids[i]);
          else expect(o.dataId, `simd=${simd} [${i}]`).toBe(ids[i]);
          expectSameFloats(o.dataSync() as Float32Array, want[i]!, `scale simd=${simd} [${i}]`);
        });
        expectSameFloats(held.dataSync() as Float32Array, kept, `simd=${simd}: the shared one is untouched`);
        tf.dispose([...xs, ...outs, held]);
      } finally {
        setSimdKernelsEnabled(true);
      }
    }
    s.dispose();
  });

  it("leave no tensors or heap allocations behind", async () => {
    await use("wasm");
    const ps = SHAPES.map((sh, i) => data(sh, i));
    const qs = SHAPES.map((sh, i) => data(sh, 30 + i));
    const s = tf.scalar(0.5);
    const ids = () => (tf.engine().backend as unknown as { numDataIds(): number }).numDataIds();
    const before = ids();
    await expectNoLeaks(() => {
      for (const op of ["axpy", "axpyScale", "lerp", "lerpDiv"] as const) {
        tf.dispose(fused(op, ps, qs, 0.5));
        tf.dispose(fused(op, ps, qs, s));
        // donated, as a caller does: a copy given up, the result kept and later disposed
        const copies = ps.map((p) => tf.add(p, 0));
        const outs = fused(op, copies, qs, s, true);
        tf.dispose(copies);
        tf.dispose(outs);
      }
    });
    expect(ids()).toBe(before);
    tf.dispose([...ps, ...qs, s]);
  });
});
