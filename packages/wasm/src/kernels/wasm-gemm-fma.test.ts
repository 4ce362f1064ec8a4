import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { useWasm } from "../use-wasm.js";
import { expectNoLeaks, seeded } from "../testing.fixture.js";
import { values } from "./values.fixture.js";
import { kernelThreadPool, type KernelCall } from "./kernel-threads.js";
import { FMA_GEMM_ROWS, fmaEnabled, fmaGemmSimd, fmaSupported, gemmSimd, setFmaEnabled, type EmscriptenWasm } from "./simd/index.js";
import { fmaActive, packedKc, packedScratchBytes, PACKED_MIN_ROWS, type PackedGemmExports } from "./wasm-gemm-split.js";

// Whether this engine validates relaxed SIMD (Node 20: after fitloop sets --experimental-wasm-relaxed-simd).
const STATUS = await setFmaEnabled(true);
await setFmaEnabled(false);
if (!STATUS.supported) console.warn(`\n*** wasm-gemm-fma.test.ts: relaxed SIMD does not validate on Node ${process.versions.node}: THE FMA PATH IS NOT TESTED (${STATUS.reason}) ***\n`);

interface HeapBackend {
  wasm: EmscriptenWasm & { _malloc(n: number): number; _free(p: number): void };
  dataIdMap: { get(id: object): { memoryOffset: number } };
}
const backend = (): HeapBackend => tf.backend() as unknown as HeapBackend;
const ptr = (t: tf.Tensor): number => backend().dataIdMap.get(t.dataId).memoryOffset;

/** C = op(A)·op(B) with A stored [M, K] (or [K, M] with ta), B stored [K, N] (or [N, K] with tb). */
interface Case {
  name: string;
  m: number;
  k: number;
  n: number;
  ta?: boolean;
  tb?: boolean;
}
const MLP: Case[] = [
  { name: "MLP fwd 1", m: 64, k: 784, n: 256 },
  { name: "MLP fwd 2", m: 64, k: 256, n: 128 },
  { name: "MLP fwd 3", m: 64, k: 128, n: 10 },
  { name: "MLP dW 1 (transposeA)", m: 784, k: 64, n: 256, ta: true },
  { name: "MLP dX 2 (transposeB)", m: 64, k: 128, n: 256, tb: true },
  { name: "row split", m: 301, k: 200, n: 40 },
];
const ODD: Case[] = [1, 5, 6, 7, 13, 25].flatMap((m) =>
  [1, 7, 9, 17].flatMap((n) => [1, 3, 300].flatMap((k) => [false, true].map((tb) => ({ name: `odd${tb ? " tb" : ""}`, m, k, n, tb })))),
);
const CASES = [...MLP, ...ODD];
const shapes = (c: Case): [[number, number], [number, number]] => [c.ta ? [c.k, c.m] : [c.m, c.k], c.tb ? [c.n, c.k] : [c.k, c.n]];
const inputs = (c: Case, i: number): [tf.Tensor2D, tf.Tensor2D] => {
  const [sa, sb] = shapes(c);
  return [tf.tensor2d(values(sa[0] * sa[1], 11 + i), sa), tf.tensor2d(values(sb[0] * sb[1], 97 + i), sb)];
};
const product = (c: Case, i: number): Float32Array =>
  tf.tidy(() => {
    const [a, b] = inputs(c, i);
    return tf.matMul(a, b, c.ta, c.tb).dataSync() as Float32Array;
  });

/** max |got - want| <= 1e-5 * max |want| + 1e-7 (FMA rounds once per product and add; the cpu backend twice). */
function expectWithinTolerance(got: Float32Array, want: Float32Array, label: string): void {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!));
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  }
  expect(got.length, label).toBe(want.length);
  expect(worst, `${label}: max |diff| ${worst}, max |C| ${scale}`).toBeLessThanOrEqual(1e-5 * scale + 1e-7);
}
const differing = (a: Float32Array, b: Float32Array): number => a.reduce((n, v, i) => n + (Object.is(v, b[i]) ? 0 : 1), 0);

/** The same product by the plain module (gemm.wat) called directly: the kernel splitGemm picks with FMA off. */
function plainDirect(c: Case, i: number): Float32Array {
  const w = backend().wasm;
  const g = gemmSimd(w)!;
  return tf.tidy(() => {
    const [a, b] = inputs(c, i);
    const out = tf.zeros([c.m, c.n]);
    const [ars, aks] = c.ta ? [4, 4 * c.m] : [4 * c.k, 4];
    const [ldb, bns] = c.tb ? [4, 4 * c.k] : [4 * c.n, 4];
    if (c.tb || (c.m >= PACKED_MIN_ROWS && c.n >= 8)) {
      const kc = packedKc(c.n, c.k);
      const scratch = w._malloc(packedScratchBytes(c.n, kc));
      (g.exports as unknown as PackedGemmExports).gemmPacked(ptr(a), ars, aks, ptr(b), ldb, bns, ptr(out), 4 * c.n, c.m, c.n, c.k, kc, scratch);
      w._free(scratch);
    } else g.exports.gemm(ptr(a), ars, aks, ptr(b), ldb, ptr(out), 4 * c.n, c.m, c.n, c.k);
    return out.dataSync() as Float32Array;
  });
}

/** Runs fn while recording the kernel-thread calls. */
function recordCalls<T>(fn: () => T): { value: T; calls: KernelCall[][] } {
  const pool = kernelThreadPool()!;
  const run = pool.run;
  const calls: KernelCall[][] = [];
  pool.run = (tasks) => {
    calls.push([...tasks]);
    run.call(pool, tasks);
  };
  try {
    return { value: fn(), calls };
  } finally {
    pool.run = run;
  }
}

const MAIN = STATUS.supported
  ? "relaxed-SIMD FMA in the packed GEMM (useWasm({ fma: true }))"
  : `SKIPPED: relaxed SIMD does not validate on Node ${process.versions.node}: the FMA path is NOT tested`;
describe.skipIf(!STATUS.supported)(MAIN, () => {
  const cpu: Float32Array[] = [];
  const warnings: string[] = [];

  beforeAll(async () => {
    await tf.setBackend("cpu");
    CASES.forEach((c, i) => cpu.push(product(c, i)));
    await useWasm({ fma: true, logger: { warn: (m) => warnings.push(m) } });
  });
  afterAll(async () => {
    await setFmaEnabled(false);
  });

  it("is reported active, and the kernel threads have the FMA module", () => {
    expect(warnings).toEqual([]);
    expect(fmaEnabled()).toBe(true);
    expect(fmaSupported()).toBe(true);
    expect(fmaActive()).toBe(true);
    expect(kernelThreadPool()?.ready(), "kernel threads run in Node with the threaded build").toBe(true);
    expect((kernelThreadPool() as unknown as { has(fn: string): boolean }).has("gemm-fma.gemmPacked")).toBe(true);
  });

  it("matches the cpu backend within 1e-5 * max|C| on the MLP's products and odd shapes, and its bits differ from FMA off", async () => {
    const on = CASES.map((c, i) => product(c, i));
    await setFmaEnabled(false);
    const off = CASES.map((c, i) => product(c, i));
    await setFmaEnabled(true);
    CASES.forEach((c, i) => expectWithinTolerance(on[i]!, cpu[i]!, `${c.name} ${c.m}x${c.k}x${c.n}`));
    // proof that FMA ran: the packed MLP products differ from mul + add in the last bits (52-95 % of C in the research build)
    for (const i of [0, 1, 3, 4]) expect(differing(on[i]!, off[i]!), `${CASES[i]!.name}: elements that differ from FMA off`).toBeGreaterThan(0);
    // odd shapes on the packed kernel (transposed B, any M) run FMA too, edge tiles included
    const oddOn = ODD.map((_, j) => on[MLP.length + j]!);
    const oddOff = ODD.map((_, j) => off[MLP.length + j]!);
    expect(ODD.some((c, j) => c.tb && c.k === 300 && c.m === 25 && differing(oddOn[j]!, oddOff[j]!) > 0)).toBe(true);
  });

  it("splits over the kernel threads with the FMA module (rows at multiples of 6): the same bits as one call", () => {
    const w = backend().wasm;
    const fma = fmaGemmSimd(w)!;
    for (const i of [0, 3, 5]) {
      const c = CASES[i]!;
      const { value, calls } = recordCalls(() => product(c, i));
      expect(calls.length, `${c.name}: split`).toBeGreaterThan(0);
      const tasks = calls.flat().filter((t) => t.fn === "gemmPacked");
      expect(tasks.length).toBeGreaterThan(1);
      expect(tasks.every((t) => t.module === "gemm-fma")).toBe(true);
      if (c.m >= c.n) expect(tasks.slice(0, -1).every((t) => t.args[8]! % FMA_GEMM_ROWS === 0), "row parts are whole 6-row tiles").toBe(true);
      const one = tf.tidy(() => {
        const [a, b] = inputs(c, i);
        const out = tf.zeros([c.m, c.n]);
        const kc = packedKc(c.n, c.k);
        const scratch = w._malloc(packedScratchBytes(c.n, kc));
        const [ars, aks] = c.ta ? [4, 4 * c.m] : [4 * c.k, 4];
        fma.exports.gemmPacked(ptr(a), ars, aks, ptr(b), 4 * c.n, 4, ptr(out), 4 * c.n, c.m, c.n, c.k, kc, scratch);
        w._free(scratch);
        return out.dataSync() as Float32Array;
      });
      expect(differing(value, one), `${c.name}: split vs one call`).toBe(0);
    }
  });

  it("computes every M (not only multiples of 6), K blocks and both A layouts right, writing nothing past C", () => {
    const w = backend().wasm;
    const fma = fmaGemmSimd(w)!;
    for (const m of [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 16, 25, 31]) {
      for (const [n, k, kc, ta] of [[17, 300, 64, false], [8, 3, 0, true], [9, 130, 50, true]] as const) {
        const A = values(m * k, m + 1);
        const B = values(k * n, n + 2);
        const want = new Float32Array(m * n);
        for (let r = 0; r < m; r++)
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let q = 0; q < k; q++) s += A[ta ? q * m + r : r * k + q]! * B[q * n + j]!;
            want[r * n + j] = s;
          }
        const got = tf.tidy(() => {
          const a = tf.tensor1d(A);
          const b = tf.tensor1d(B);
          const out = tf.fill([m * n + 8], 42);
          const scratch = w._malloc(packedScratchBytes(n, kc || k));
          fma.exports.gemmPacked(ptr(a), ta ? 4 : 4 * k, ta ? 4 * m : 4, ptr(b), 4 * n, 4, ptr(out), 4 * n, m, n, k, kc, scratch);
          w._free(scratch);
          return out.dataSync() as Float32Array;
        });
        expectWithinTolerance(got.subarray(0, m * n), want, `M=${m} N=${n} K=${k} kc=${kc} ta=${ta}`);
        expect([...got.subarray(m * n)], "guard after C").toEqual(new Array(8).fill(42));
      }
    }
  });

  it("trains a small dense model to the same losses as FMA off (within tolerance)", async () => {
    const x = tf.tensor2d(values(64 * 96, 5), [64, 96]);
    const y = tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => (i * 7) % 10), "int32"), 10);
    const losses = async (): Promise<number[]> => {
      const model = seeded(3, () => {
        const mdl = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [96], units: 48, activation: "relu" }), tfl.layers.dense({ units: 10, activation: "softmax" })] });
        mdl.compile({ optimizer: tf.train.sgd(0.1), loss: "categoricalCrossentropy" });
        return mdl;
      });
      const out: number[] = [];
      for (let s = 0; s < 4; s++) out.push((await model.trainOnBatch(x, y)) as number);
      model.dispose();
      return out;
    };
    const on = await losses();
    await setFmaEnabled(false);
    const off = await losses();
    await setFmaEnabled(true);
    expect(on.every(Number.isFinite)).toBe(true);
    on.forEach((l, s) => expect(Math.abs(l - off[s]!), `step ${s}: ${l} vs ${off[s]}`).toBeLessThanOrEqual(1e-5 * Math.abs(off[s]!) + 1e-6));
    expect(off[3]!).toBeLessThan(off[0]!);
    tf.dispose([x, y]);
  });

  it("leaks no tensors", async () => {
    const c = MLP[0]!;
    await expectNoLeaks(() => product(c, 0));
    await expectNoLeaks(() => product(CASES[MLP.length + 3]!, 3));
  });

  it("turned off: fmaActive() false, and the results are bit-identical to the plain module's", async () => {
    await setFmaEnabled(false);
    try {
      expect(fmaEnabled()).toBe(false);
      expect(fmaActive()).toBe(false);
      expect(fmaGemmSimd(backend().wasm)).toBeUndefined();
      CASES.forEach((c, i) => {
        if (i < MLP.length || i % 5 === 0) expect(differing(product(c, i), plainDirect(c, i)), `${c.name} ${c.m}x${c.k}x${c.n}`).toBe(0);
      });
    } finally {
      await setFmaEnabled(true);
    }
  });
});

describe.skipIf(STATUS.supported)("where relaxed SIMD does not validate", () => {
  it("useWasm({ fma: true }) warns and runs plain SIMD", async () => {
    const warnings: string[] = [];
    await useWasm({ fma: true, logger: { warn: (m) => warnings.push(m) } });
    expect(warnings.some((m) => /FMA not used/.test(m))).toBe(true);
    expect(fmaActive()).toBe(false);
    await setFmaEnabled(false);
  });
});
