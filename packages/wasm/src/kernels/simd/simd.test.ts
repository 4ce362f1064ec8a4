import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { compileSimd, FMA_ROWS, fmaWat, MEMORY_VARIANTS, RELAXED_SIMD_SOURCES, SIMD_DIR, SIMD_SOURCES, base64, type MemoryVariant } from "../../../scripts/build-simd.js";
import { batchNormSimd, EMBEDDED_SIMD_MODULES, FMA_GEMM_ROWS, maxPoolGradSimd, RELAXED_SIMD_MODULES, reluGradSimd, setSimdKernelsEnabled, wasmMemoryOf, type EmscriptenWasm } from "./index.js";

const VARIANTS = Object.keys(MEMORY_VARIANTS) as MemoryVariant[];

/** A stand-in for tfjs-wasm's module: a memory of the variant's kind and a bump allocator. */
function fakeWasm(variant: MemoryVariant, pages = 32): EmscriptenWasm & { memory: WebAssembly.Memory } {
  const memory = new WebAssembly.Memory(variant === "shared" ? { initial: pages, maximum: 65536, shared: true } : { initial: pages });
  let top = 64;
  return {
    memory,
    ...(variant === "shared" ? { wasmMemory: memory } : { asm: { memory } }),
    _malloc: (n: number) => {
      const p = top;
      top += Math.ceil(n / 16) * 16 + 16; // a guard gap: the kernels must not write past their outputs
      return p;
    },
    _free: () => {},
  };
}

function values(n: number, seed: number, scale = 1, shift = 0): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 31 - 1) * scale + shift;
  }
  return out;
}

describe("WebAssembly SIMD kernels", () => {
  it.each(SIMD_SOURCES.flatMap((name) => VARIANTS.map((v) => [name, v] as const)))("the embedded %s (%s memory) matches a fresh compile of its .wat", async (name, variant) => {
    expect(EMBEDDED_SIMD_MODULES[name]?.[variant]).toBe(base64(await compileSimd(name, variant)));
  });

  it.each(RELAXED_SIMD_SOURCES.flatMap((name) => VARIANTS.map((v) => [name, v] as const)))("the embedded relaxed-SIMD %s (%s memory) matches a fresh compile of its .wat, and is not loaded unconditionally", async (name, variant) => {
    expect(RELAXED_SIMD_MODULES[name]?.[variant]).toBe(base64(await compileSimd(name, variant)));
    expect(EMBEDDED_SIMD_MODULES[name]).toBeUndefined();
  });

  it("gemm-fma.wat is the build script's generation from gemm.wat", () => {
    expect(readFileSync(path.join(SIMD_DIR, "gemm-fma.wat"), "utf8")).toBe(fmaWat());
    expect(FMA_GEMM_ROWS, "the row-split alignment of the FMA GEMM is its tile height").toBe(FMA_ROWS);
  });

  it("finds tfjs-wasm's memory (threaded: wasmMemory, single-threaded: asm.memory), one instance per memory, and falls back when it cannot", () => {
    for (const variant of VARIANTS) {
      const w = fakeWasm(variant);
      expect(wasmMemoryOf(w)).toBe(w.memory);
      const k = batchNormSimd(w);
      expect(k?.memory).toBe(w.memory);
      expect(batchNormSimd(w)!.exports).toBe(k!.exports);
      expect(batchNormSimd(fakeWasm(variant))!.exports).not.toBe(k!.exports); // a new memory gets its own instance
      expect(maxPoolGradSimd(w)?.memory).toBe(w.memory);
    }
    expect(batchNormSimd({ _malloc: () => 0, _free: () => {} })).toBeUndefined(); // no memory: the JS loops
    expect(batchNormSimd({ asm: { memory: {} }, _malloc: () => 0, _free: () => {} })).toBeUndefined();
    setSimdKernelsEnabled(false);
    try {
      expect(batchNormSimd(fakeWasm("plain"))).toBeUndefined();
    } finally {
      setSimdKernelsEnabled(true);
    }
  });

  describe.each(VARIANTS)("batch-norm kernels on a %s memory against float64 references", (variant) => {
    const grid = [0, 1, 3, 4, 5, 37].flatMap((rows) => [4, 12, 32].map((c) => [rows, c] as const));

    it.each(grid)("rows %i, C %i", (rows, c) => {
      const w = fakeWasm(variant);
      const k = batchNormSimd(w)!;
      const n = rows * c;
      const put = (data: Float32Array): number => {
        const p = k.malloc(4 * Math.max(data.length, 1));
        new Float32Array(w.memory.buffer, p, data.length).set(data);
        return p;
      };
      const X = values(n, rows * 100 + c, 2, 3);
      const D = values(n, rows * 100 + c + 1);
      const M = values(c, 7, 0.5, 3);
      const S = values(c, 8, 1, 1);
      const B = values(c, 9);
      const A = values(c, 10);
      const K0 = values(c, 11);
      const [x, dy, m, s, b, a, k0] = [X, D, M, S, B, A, K0].map(put) as [number, number, number, number, number, number, number];
      const f64 = (p: number) => new Float64Array(w.memory.buffer, p, c);
      const f32 = (p: number, len = n) => new Float32Array(w.memory.buffer, p, len);
      const close = (got: ArrayLike<number>, want: ArrayLike<number>, label: string, tol: number) => {
        expect(got.length, label).toBe(want.length);
        for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `${label}[${i}]: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i]!)));
      };
      const ref = (f: (r: number, j: number) => number) => Float64Array.from({ length: c }, (_, j) => Array.from({ length: rows }, (_, r) => f(r, j)).reduce((p, q) => p + q, 0));

      const sp = k.malloc(8 * c);
      const qp = k.malloc(8 * c);
      f64(sp).fill(123); // overwritten, not accumulated into
      if (rows > 0) {
        k.exports.stats(x, rows, c, sp, qp);
        close(f64(sp), ref((r, j) => X[r * c + j]! - X[j]!), "stats s", 1e-5);
        close(f64(qp), ref((r, j) => (X[r * c + j]! - X[j]!) ** 2), "stats q", 1e-5);
      }
      k.exports.gradSums(dy, x, rows, c, m, sp, qp);
      close(f64(sp), ref((r, j) => D[r * c + j]!), "gradSums sd", 1e-5);
      close(f64(qp), ref((r, j) => D[r * c + j]! * (X[r * c + j]! - M[j]!)), "gradSums sdx", 1e-5);

      const y = k.malloc(4 * n);
      const guard = f32(y + 4 * n, 4);
      guard.fill(42);
      k.exports.normalize(x, y, rows, c, m, s, b);
      close(f32(y), Float64Array.from({ length: n }, (_, i) => (X[i]! - M[i % c]!) * S[i % c]! + B[i % c]!), "normalize", 1e-6);
      k.exports.gradX(dy, x, y, rows, c, a, m, s, k0);
      close(f32(y), Float64Array.from({ length: n }, (_, i) => A[i % c]! * D[i]! + S[i % c]! * (X[i]! - M[i % c]!) + K0[i % c]!), "gradX", 1e-6);
      expect([...guard]).toEqual([42, 42, 42, 42]);
    });
  });

  it.each(VARIANTS)("reluGrad on a %s memory: dy * step(x) bit for bit, with a scalar tail", (variant) => {
    const w = fakeWasm(variant);
    const k = reluGradSimd(w)!;
    const X = Float32Array.from([0, -0, 1e-30, -1e-30, NaN, Infinity, -Infinity, 2, -3, 0.5, -0.5]);
    const D = Float32Array.from([-1, 2, -3, 4, 5, -6, Infinity, NaN, -7, -0, 8]);
    const n = X.length;
    const [x, dy, dx] = [k.malloc(4 * n), k.malloc(4 * n), k.malloc(4 * n + 16)];
    new Float32Array(w.memory.buffer, x, n).set(X);
    new Float32Array(w.memory.buffer, dy, n).set(D);
    new Float32Array(w.memory.buffer, dx + 4 * n, 4).fill(42);
    k.exports.reluGrad(dy, x, dx, n);
    const want = Array.from(D, (d, i) => Math.fround(d * (Number.isNaN(X[i]!) ? NaN : X[i]! > 0 ? 1 : 0)));
    const got = [...new Float32Array(w.memory.buffer, dx, n)];
    got.forEach((g, i) => expect(Object.is(g, want[i]), `element ${i}: ${g} vs ${want[i]}`).toBe(true));
    expect([...new Float32Array(w.memory.buffer, dx + 4 * n, 4)]).toEqual([42, 42, 42, 42]);
  });
});
