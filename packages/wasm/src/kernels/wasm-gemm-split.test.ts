import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { values } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { gemmSimd, type EmscriptenWasm, type GemmSimdExports } from "./simd/index.js";
import { kernelThreadPool, setKernelThreadsEnabled } from "./kernel-threads.js";
import { ownGemm, ownGemmTakes, packedGemmEnabled, packedKc, packedScratchBytes, setPackedGemmEnabled, splitGemm, splitGemmDepth, splitGemms, type PackedGemmExports } from "./wasm-gemm-split.js";
import { DEFAULT_THREAD_MIN_FLOPS } from "./wasm-threadpool.js";
import { useTestBackend } from "../testing.fixture.js";
import { fmaEnabled, setFmaEnabled } from "./simd/index.js";

interface HeapBackend {
  wasm: EmscriptenWasm & { HEAPU8: Uint8Array };
  dataIdMap: { get(id: object): { memoryOffset: number } };
}

describe("splitGemm: fitloop's SIMD GEMM over the kernel threads", () => {
  beforeAll(async () => {
    await useTestBackend("wasm");
  });

  it.each([
    ["rows (M >= N)", 288, 700, 64],
    ["columns (M < N)", 64, 300, 784],
    ["ragged rows", 37, 50, 9],
    ["ragged columns", 5, 64, 203],
  ] as const)("splits along %s bit-identically to one call (M=%i K=%i N=%i)", (_what, m, k, n) => {
    expect(kernelThreadPool()?.ready(), "the kernel thread pool runs in Node with the threaded build").toBe(true);
    const backend = tf.backend() as unknown as HeapBackend;
    const gemm = gemmSimd(backend.wasm)!;
    const a = tf.tensor2d(values(m * k, 3), [m, k]);
    const b = tf.tensor2d(values(k * n, 4), [k, n]);
    const split = tf.fill([m, n], Number.NaN);
    const one = tf.zeros([m, n]);
    const p = (t: tf.Tensor): number => backend.dataIdMap.get(t.dataId).memoryOffset;
    const operands = (c: tf.Tensor) => ({ pa: p(a), ars: 4 * k, aks: 4, pb: p(b), ldb: 4 * n, pc: p(c), ldc: 4 * n, m, n, k });
    const parts = splitGemm(gemm, operands(split), 0);
    expect(parts).toBeGreaterThan(1);
    setKernelThreadsEnabled(false);
    try {
      expect(splitGemm(gemm, operands(one), 0)).toBe(1);
    } finally {
      setKernelThreadsEnabled(true);
    }
    expect(Array.from(split.dataSync())).toEqual(Array.from(one.dataSync()));
    const ref = tf.matMul(a, b);
    expectClose(split.dataSync(), ref.dataSync(), "vs tf.matMul", 1e-5);
    tf.dispose([a, b, split, one, ref]);
  });

  it.each([
    ["a first conv layer's filter gradient (patchesᵀ read as rows of A)", 9, 43264, 32, true],
    ["ragged: M and N not multiples of the tile, A stored as its transpose", 7, 30011, 13, false],
  ] as const)("splitGemmDepth, %s: K split over the threads, partial sums added in part order, close to one call and the same bits every time (M=%i K=%i N=%i)", (_what, m, k, n, rowMajorA) => {
    const backend = tf.backend() as unknown as HeapBackend;
    const gemm = gemmSimd(backend.wasm)!;
    const a = tf.tensor2d(values(m * k, 8), rowMajorA ? [m, k] : [k, m]);
    const b = tf.tensor2d(values(k * n, 9), [k, n]);
    const p = (t: tf.Tensor): number => backend.dataIdMap.get(t.dataId).memoryOffset;
    // C has a wider row stride than N: the parts must write only its first N columns
    const ldc = n + 3;
    const outs = [tf.fill([m, ldc], 7), tf.fill([m, ldc], 7), tf.fill([m, ldc], 7)];
    const operands = (c: tf.Tensor) => ({ pa: p(a), ars: rowMajorA ? 4 * k : 4, aks: rowMajorA ? 4 : 4 * m, pb: p(b), ldb: 4 * n, pc: p(c), ldc: 4 * ldc, m, n, k });
    expect(splitGemmDepth(gemm, operands(outs[0]!))).toBeGreaterThan(1);
    expect(splitGemmDepth(gemm, operands(outs[1]!))).toBeGreaterThan(1);
    setKernelThreadsEnabled(false);
    try {
      expect(splitGemmDepth(gemm, operands(outs[2]!)), "without a pool: splitGemm, one call").toBe(1);
    } finally {
      setKernelThreadsEnabled(true);
    }
    const [d0, d1, d2] = outs.map((t) => t.dataSync());
    expect(Array.from(d0!)).toEqual(Array.from(d1!));
    for (let r = 0; r < m; r++) expect(d0![r * ldc + n], "columns past N untouched").toBe(7);
    const cols = (d: ArrayLike<number>) => Array.from({ length: m * n }, (_, i) => d[Math.floor(i / n) * ldc + (i % n)]!);
    expectClose(cols(d0!), cols(d2!), "split vs one call", 1e-5);
    const ref = rowMajorA ? tf.matMul(a, b) : tf.matMul(a, b, true, false);
    expectClose(cols(d0!), ref.dataSync(), "vs tf.matMul", 1e-5);
    tf.dispose([a, b, ...outs, ref]);
  });

  it("splitGemms: a dense layer's weight and input gradients (a transposed A, a transposed B) as one job, bit-identical to separate calls", () => {
    const backend = tf.backend() as unknown as HeapBackend;
    const gemm = gemmSimd(backend.wasm)!;
    const pool = kernelThreadPool()!;
    const [batch, inDim, units] = [64, 300, 129];
    const x = tf.tensor2d(values(batch * inDim, 5), [batch, inDim]);
    const dz = tf.tensor2d(values(batch * units, 6), [batch, units]);
    const w = tf.tensor2d(values(inDim * units, 7), [inDim, units]);
    const p = (t: tf.Tensor): number => backend.dataIdMap.get(t.dataId).memoryOffset;
    const ops = (dW: tf.Tensor, dx: tf.Tensor) => [
      { pa: p(x), ars: 4, aks: 4 * inDim, pb: p(dz), ldb: 4 * units, pc: p(dW), ldc: 4 * units, m: inDim, n: units, k: batch },
      { pa: p(dz), ars: 4 * units, aks: 4, pb: p(w), ldb: 4, bns: 4 * units, pc: p(dx), ldc: 4 * inDim, m: batch, n: inDim, k: units },
    ];
    const [dW1, dx1, dW2, dx2] = [tf.fill([inDim, units], Number.NaN), tf.fill([batch, inDim], Number.NaN), tf.zeros([inDim, units]), tf.zeros([batch, inDim])];
    const run = pool.run;
    let jobs = 0;
    pool.run = (calls) => {
      jobs++;
      run.call(pool, calls);
    };
    try {
      splitGemms(gemm, ops(dW1, dx1), 0);
      expect(jobs, "both products in one kernel-thread job").toBe(1);
      for (const o of ops(dW2, dx2)) splitGemm(gemm, o, 0);
      expect(jobs).toBe(3);
      // too small to split: each runs on the calling thread, no job
      const [dW3, dx3] = [tf.zeros([inDim, units]), tf.zeros([batch, inDim])];
      splitGemms(gemm, ops(dW3, dx3), Infinity);
      expect(jobs).toBe(3);
      expect(Array.from(dx3.dataSync())).toEqual(Array.from(dx1.dataSync()));
      tf.dispose([dW3, dx3]);
    } finally {
      pool.run = run;
    }
    expect(Array.from(dW1.dataSync())).toEqual(Array.from(dW2.dataSync()));
    expect(Array.from(dx1.dataSync())).toEqual(Array.from(dx2.dataSync()));
    const [refW, refX] = [tf.matMul(x, dz, true, false), tf.matMul(dz, w, false, true)];
    expectClose(dW1.dataSync(), refW.dataSync(), "dW vs tf.matMul", 1e-5);
    expectClose(dx1.dataSync(), refX.dataSync(), "dx vs tf.matMul", 1e-5);
    tf.dispose([x, dz, w, dW1, dx1, dW2, dx2, refW, refX]);
  });

  it("keeps small products on the calling thread", () => {
    const backend = tf.backend() as unknown as HeapBackend;
    const gemm = gemmSimd(backend.wasm)!;
    const a = tf.ones([8, 8]);
    const c = tf.zeros([8, 8]);
    const p = (t: tf.Tensor): number => backend.dataIdMap.get(t.dataId).memoryOffset;
    expect(splitGemm(gemm, { pa: p(a), ars: 32, aks: 4, pb: p(a), ldb: 32, pc: p(c), ldc: 32, m: 8, n: 8, k: 8 })).toBe(1);
    expect(c.dataSync()[0]).toBe(8);
    tf.dispose([a, c]);
  });
});

/**
 * Which path a product takes (round 9b): fitloop's GEMM below the gate; from it with fitloop's kernel
 * threads (split packed GEMM: 1.4-2.8x XNNPACK on 2 threads) or with none on either side (1 thread:
 * 1.3-2.1x); XNNPACK only on its own pool against fitloop on the calling thread.
 */
describe("ownGemm: fitloop's GEMM or XNNPACK", () => {
  const gate = DEFAULT_THREAD_MIN_FLOPS;
  it.each([
    // [what, MFLOP, fitloop kernel threads, XNNPACK threads, fitloop's GEMM]
    ["MLP dense1 (26 MFLOP), 1 thread", 25.7, false, 1, true],
    ["MLP dense1, 2 threads", 25.7, true, 2, true],
    ["MLP dense1, XNNPACK pool only", 25.7, false, 2, true],
    ["conv2 dW (285 MFLOP), 1 thread (single-threaded build)", 285.5, false, 1, true],
    ["conv2 dW, 2 threads (kernel threads)", 285.5, true, 2, true],
    ["conv2 dX, XNNPACK pool only (kernel threads off)", 285.5, false, 2, false],
    ["1024x784·784x256 (411 MFLOP), 1 thread", 411, false, 1, true],
    ["1024x784·784x256, 4 XNNPACK threads, no kernel threads", 411, false, 4, false],
    ["exactly the gate, 1 thread", gate / 1e6, false, 1, true],
    ["exactly the gate, XNNPACK pool only", gate / 1e6, false, 2, false],
  ] as const)("%s", (_what, mflops, kernelThreads, xnnpack, own) => {
    expect(ownGemmTakes(mflops * 1e6, gate, kernelThreads, xnnpack)).toBe(own);
  });

  it("reads the thread settings of the running backend", async () => {
    await useTestBackend("wasm");
    const wasm = (tf.backend() as unknown as HeapBackend).wasm as HeapBackend["wasm"] & { tfjs: { getThreadsCount(): number } };
    const big = 285.5e6;
    expect(ownGemm(wasm, 25.7e6), "below the gate").toBeDefined();
    expect(ownGemm(wasm, big), "kernel threads run").toBeDefined();
    const count = wasm.tfjs.getThreadsCount;
    setKernelThreadsEnabled(false);
    try {
      expect(ownGemm(wasm, 25.7e6), "below the gate, no kernel threads").toBeDefined();
      if (count() >= 2) expect(ownGemm(wasm, big), "XNNPACK's pool vs fitloop on one thread").toBeUndefined();
      wasm.tfjs.getThreadsCount = () => 1; // as the single-threaded builds report
      expect(ownGemm(wasm, big), "one thread on both sides").toBeDefined();
    } finally {
      wasm.tfjs.getThreadsCount = count;
      setKernelThreadsEnabled(true);
    }
  });
});

/**
 * The packed GEMM (`gemmPacked`, round 9) against the round-5 kernel (`gemm`, a transposed B copied
 * first with `transpose`): the same bits for every element (each is one sum over k in increasing
 * order, one rounded product added at a time), within float tolerance of a float64 reference, and
 * no write outside C and the scratch it was given.
 */
describe("the packed GEMM (gemmPacked) equals the round-5 kernel bit for bit", () => {
  type Packed = GemmSimdExports & PackedGemmExports;
  let backend: HeapBackend;
  let ex: Packed;
  const SENTINEL = 0x7fa5a5a5; // a NaN pattern no kernel writes
  let fmaWas = false;
  afterAll(async () => {
    await setFmaEnabled(fmaWas);
  });
  beforeAll(async () => {
    await useTestBackend("wasm");
    // the mul + add kernels: FMA (on by default where relaxed SIMD validates) rounds differently
    fmaWas = fmaEnabled();
    await setFmaEnabled(false);
    backend = tf.backend() as unknown as HeapBackend;
    ex = gemmSimd(backend.wasm)!.exports as Packed;
  });

  interface Layout {
    m: number;
    n: number;
    k: number;
    ars: number;
    aks: number;
    bks: number;
    bns: number;
    /** floats A and B span */
    aLen: number;
    bLen: number;
  }
  const layout = (m: number, n: number, k: number, ta: boolean, tb: boolean, wide = false): Layout => {
    // wide: A and B inside larger arrays with strides that are neither 4 nor contiguous (the general paths)
    const [ars, aks] = wide ? [4 * (2 * k + 3), 8] : ta ? [4, 4 * m] : [4 * k, 4];
    const [bks, bns] = wide ? [4 * (2 * n + 1), 8] : tb ? [4, 4 * k] : [4 * n, 4];
    const span = (rows: number, cols: number, rs: number, cs: number) => (rows && cols ? ((rows - 1) * rs + (cols - 1) * cs) / 4 + 1 : 1);
    return { m, n, k, ars, aks, bks, bns, aLen: span(m, k, ars, aks), bLen: span(k, n, bks, bns) };
  };

  /** Runs both kernels on fresh heap buffers; returns their C (and checks the guards). */
  function run(l: Layout, kc: number, seed: number, special = false) {
    const { m, n, k } = l;
    const ldcF = n + 3; // padding columns between rows of C: must stay untouched
    const cLen = m * ldcF + 4;
    const scratchBytes = packedScratchBytes(n, kc || k);
    const bytes = 4 * (l.aLen + l.bLen + 2 * cLen + k * n + 16) + scratchBytes + 64 + 256;
    const base = backend.wasm._malloc(bytes);
    try {
      let top = Math.ceil(base / 16) * 16;
      const take = (b: number) => {
        const p = top;
        top += Math.ceil(b / 16) * 16;
        return p;
      };
      const pa = take(4 * l.aLen);
      const pb = take(4 * l.bLen);
      const cOld = take(4 * cLen);
      const cNew = take(4 * cLen);
      const tB = take(4 * Math.max(1, k * n));
      const scratch = take(scratchBytes);
      const guard = take(64);
      const mem = () => backend.wasm.HEAPU8.buffer;
      const A = values(l.aLen, seed);
      const B = values(l.bLen, seed + 1);
      if (special) {
        for (let i = 0; i < A.length; i += 7) A[i] = [Number.NaN, Infinity, -Infinity, -0, 0, 1e30][(i / 7) % 6]!;
        for (let i = 3; i < B.length; i += 11) B[i] = [-0, Infinity, 1e-30, Number.NaN][(i - 3) % 4]!;
      }
      new Float32Array(mem(), pa, l.aLen).set(A);
      new Float32Array(mem(), pb, l.bLen).set(B);
      new Uint32Array(mem(), cOld, cLen).fill(SENTINEL);
      new Uint32Array(mem(), cNew, cLen).fill(SENTINEL);
      new Uint32Array(mem(), guard, 16).fill(SENTINEL);
      // round 5: B row-major (a strided or transposed B gathered into tB first, as splitGemm's old path does)
      const rowMajor = l.bns === 4;
      if (!rowMajor) {
        const t = new Float32Array(mem(), tB, k * n);
        for (let kk = 0; kk < k; kk++) for (let j = 0; j < n; j++) t[kk * n + j] = B[(kk * l.bks + j * l.bns) / 4]!;
      }
      ex.gemm(pa, l.ars, l.aks, rowMajor ? pb : tB, rowMajor ? l.bks : 4 * n, cOld, 4 * ldcF, m, n, k);
      ex.gemmPacked(pa, l.ars, l.aks, pb, l.bks, l.bns, cNew, 4 * ldcF, m, n, k, kc, scratch);
      const oldBits = new Uint32Array(mem(), cOld, cLen).slice();
      const newBits = new Uint32Array(mem(), cNew, cLen).slice();
      expect(Array.from(new Uint32Array(mem(), guard, 16)).every((v) => v === SENTINEL), "no write past the scratch").toBe(true);
      return { A, B, oldBits, newBits, ldcF };
    } finally {
      backend.wasm._free(base);
    }
  }

  function check(label: string, l: Layout, kc: number, seed: number, special = false): void {
    const { A, B, oldBits, newBits, ldcF } = run(l, kc, seed, special);
    const { m, n, k } = l;
    const asF = (u: Uint32Array) => new Float32Array(u.buffer);
    const [o, w] = [asF(oldBits), asF(newBits)];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < ldcF; j++) {
        const x = i * ldcF + j;
        if (j >= n) {
          if (newBits[x] !== SENTINEL) expect.fail(`${label}: C(${i}, ${j}) past N was written`);
          continue;
        }
        if (Number.isNaN(o[x]!) && Number.isNaN(w[x]!)) continue;
        if (oldBits[x] !== newBits[x]) expect.fail(`${label}: C(${i}, ${j}) = ${w[x]} (packed) vs ${o[x]} (round 5)`);
        if (special) continue;
        let ref = 0;
        let mag = 0;
        for (let kk = 0; kk < k; kk++) {
          const p = A[(i * l.ars + kk * l.aks) / 4]! * B[(kk * l.bks + j * l.bns) / 4]!;
          ref += p;
          mag += Math.abs(p);
        }
        if (Math.abs(w[x]! - ref) > 1e-6 * Math.max(mag, 1e-30) * Math.max(k, 1)) expect.fail(`${label}: C(${i}, ${j}) = ${w[x]} vs float64 ${ref}`);
      }
    }
    for (let x = m * ldcF; x < oldBits.length; x++) if (newBits[x] !== SENTINEL) expect.fail(`${label}: written past the last row of C`);
  }

  it("over M 1..13, N 1..17, K in {0, 1, 2, 5, 9, 16, 33}, both transposes, one K block and blocks of 7", () => {
    let cases = 0;
    for (let m = 1; m <= 13; m++)
      for (let n = 1; n <= 17; n++)
        for (const k of [0, 1, 2, 5, 9, 16, 33])
          for (const ta of [false, true])
            for (const tb of [false, true])
              for (const kc of k >= 9 ? [0, 7] : [0]) {
                check(`M=${m} N=${n} K=${k} ta=${ta} tb=${tb} kc=${kc}`, layout(m, n, k, ta, tb), kc, m * 1000 + n * 50 + k + cases++);
              }
    expect(cases).toBeGreaterThan(8000);
  });

  it("with general strides (the scalar packing, the 5-pointer microkernel), NaN/Inf/-0, several row blocks and K blocks", () => {
    for (const [m, n, k] of [[7, 9, 5], [23, 17, 31], [5, 8, 1], [13, 1, 12]] as const) check(`wide M=${m} N=${n} K=${k}`, layout(m, n, k, false, false, true), 0, m + n + k);
    for (const ta of [false, true])
      for (const tb of [false, true]) {
        check(`special ta=${ta} tb=${tb}`, layout(19, 21, 23, ta, tb), 0, 5, true);
        check(`special blocks ta=${ta} tb=${tb}`, layout(19, 21, 23, ta, tb), 4, 6, true);
        check(`row blocks ta=${ta} tb=${tb}`, layout(1003, 21, 100, ta, tb), 0, 7); // 490-row blocks of A
        check(`K blocks ta=${ta} tb=${tb}`, layout(37, 19, 1100, ta, tb), packedKc(19, 1100), 8);
      }
  });

  it.each([
    ["rows, transposed B", 300, 70, 40, true],
    ["columns, transposed B", 40, 70, 300, true],
    ["rows, 5-row parts", 301, 64, 33, false],
    ["columns, ragged", 40, 64, 203, false],
    ["columns, few rows, transposed B", 9, 64, 203, true],
  ] as const)("splitGemm: packed, split along %s, the same bits as one call and as the round-5 path (M=%i K=%i N=%i)", (_what, m, k, n, tb) => {
    expect(kernelThreadPool()?.ready()).toBe(true);
    const gemm = gemmSimd(backend.wasm)!;
    const a = tf.tensor2d(values(m * k, 11), [m, k]);
    const b = tb ? tf.tensor2d(values(n * k, 12), [n, k]) : tf.tensor2d(values(k * n, 12), [k, n]);
    const outs = [0, 1, 2].map(() => tf.fill([m, n], Number.NaN));
    const p = (t: tf.Tensor): number => backend.dataIdMap.get(t.dataId).memoryOffset;
    const operands = (c: tf.Tensor) => ({ pa: p(a), ars: 4 * k, aks: 4, pb: p(b), ...(tb ? { ldb: 4, bns: 4 * k } : { ldb: 4 * n }), pc: p(c), ldc: 4 * n, m, n, k });
    expect(splitGemm(gemm, operands(outs[0]!), 0)).toBeGreaterThan(1);
    setKernelThreadsEnabled(false);
    try {
      expect(splitGemm(gemm, operands(outs[1]!), 0)).toBe(1);
    } finally {
      setKernelThreadsEnabled(true);
    }
    setPackedGemmEnabled(false);
    try {
      expect(splitGemm(gemm, operands(outs[2]!), 0)).toBeGreaterThan(1);
    } finally {
      setPackedGemmEnabled(true);
    }
    const [split, one, old] = outs.map((t) => Array.from(t.dataSync()));
    expect(split).toEqual(one);
    expect(split).toEqual(old);
    const ref = tf.matMul(a, b, false, tb);
    expectClose(split!, ref.dataSync(), "vs tf.matMul", 1e-5);
    tf.dispose([a, b, ref, ...outs]);
  });

  it("splitGemm picks the packed kernel from 24 rows and 8 columns, and for every transposed B; the round-5 kernel otherwise or when switched off", () => {
    const real = gemmSimd(backend.wasm)!;
    const calls: string[] = [];
    const spy = {
      ...real,
      exports: {
        ...real.exports,
        gemm: (...a: Parameters<GemmSimdExports["gemm"]>) => (calls.push("gemm"), real.exports.gemm(...a)),
        gemmPacked: (...a: Parameters<PackedGemmExports["gemmPacked"]>) => (calls.push("packed"), (real.exports as Packed).gemmPacked(...a)),
        transpose: (...a: Parameters<GemmSimdExports["transpose"]>) => (calls.push("transpose"), real.exports.transpose(...a)),
      },
    };
    const picks = (m: number, n: number, tb: boolean): string => {
      calls.length = 0;
      const k = 3;
      const buf = backend.wasm._malloc(4 * (m * k + k * n + m * n));
      try {
        splitGemm(spy, { pa: buf, ars: 4 * k, aks: 4, pb: buf + 4 * m * k, ...(tb ? { ldb: 4, bns: 4 * k } : { ldb: 4 * n }), pc: buf + 4 * (m * k + k * n), ldc: 4 * n, m, n, k });
      } finally {
        backend.wasm._free(buf);
      }
      return calls.join("+");
    };
    setKernelThreadsEnabled(false);
    try {
      expect([picks(24, 8, false), picks(64, 10, false), picks(1000, 256, false)]).toEqual(["packed", "packed", "packed"]);
      expect([picks(23, 256, false), picks(64, 7, false), picks(1, 1, false)]).toEqual(["gemm", "gemm", "gemm"]);
      expect([picks(1, 1, true), picks(64, 4, true)]).toEqual(["packed", "packed"]);
      setPackedGemmEnabled(false);
      expect([picks(64, 256, false), picks(64, 256, true)]).toEqual(["gemm", "transpose+gemm"]);
    } finally {
      setPackedGemmEnabled(true);
      setKernelThreadsEnabled(true);
    }
    expect(() => splitGemm(spy, { pa: 0, ars: 4, aks: 4, pb: 0, ldb: 8, bns: 8, pc: 0, ldc: 4, m: 1, n: 1, k: 1 }, Infinity)).not.toThrow(); // packed: any strides
    setPackedGemmEnabled(false);
    try {
      expect(() => splitGemm(spy, { pa: 0, ars: 4, aks: 4, pb: 0, ldb: 8, bns: 8, pc: 0, ldc: 4, m: 1, n: 1, k: 1 }, Infinity)).toThrow(/neither row-major nor a contiguous transpose/);
    } finally {
      setPackedGemmEnabled(true);
    }
  });

  it("packs within the scratch it sizes: K blocks of at most 512 rows, 256 KiB of packed B", () => {
    expect(packedKc(256, 784)).toBe(256);
    expect(packedKc(784, 256)).toBe(83);
    expect(packedKc(10, 128)).toBe(128);
    expect(packedKc(64, 7744)).toBe(512);
    expect(packedKc(100000, 64)).toBe(16);
    expect(packedKc(8, 0)).toBe(1);
    expect(packedScratchBytes(10, 128)).toBe(256 + 4 * 128 * 16);
    expect(packedGemmEnabled()).toBe(true);
  });
});
