import { describe, expect, it } from "vitest";
import { Rng } from "@fitloop/core";
import { base64, compileSimd, SIMD_SOURCES } from "../../scripts/build-simd.js";
import { addNormal, noiseWorkspace } from "../random.js";
import { WASM_BASE64 } from "./normal.wasm.js";
import { jsKernel, normalKernel, NORMAL_CHUNK, setNormalSimdEnabled, simdKernel, wedgeSqueeze, zigguratTables } from "./normal.js";

const EMBEDDED: Record<(typeof SIMD_SOURCES)[number], string> = { normal: WASM_BASE64 };

/** Data with a background of zeros, values inside and outside [0, 1], negative zeros. */
function data(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const c = s >>> 28;
    out[i] = c < 6 ? 0 : c === 6 ? -0 : c === 7 ? 1 : (s / 2 ** 32) * 1.4 - 0.2;
  }
  return out;
}

function withJs<T>(f: () => T): T {
  setNormalSimdEnabled(false);
  try {
    return f();
  } finally {
    setNormalSimdEnabled(true);
  }
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe("gaussian noise kernel (WebAssembly SIMD and its JS twin)", () => {
  it.each(SIMD_SOURCES)("the embedded %s matches a fresh compile of its .wat", async (name) => {
    expect(EMBEDDED[name]).toBe(base64(await compileSimd(name)));
  });

  it("runs as WebAssembly SIMD here (Node 20), as JS when turned off", () => {
    expect(simdKernel()?.kind).toBe("simd");
    expect(normalKernel().kind).toBe("simd");
    expect(withJs(() => normalKernel())).toBe(jsKernel);
  });

  const sizes = [0, 1, 2, 3, 4, 5, 7, 8, 15, 17, 63, 64, 65, 255, 1000, 4095, 4096, 4097, 4099, 8191, 8192, 10_001, 50_176, 100_003];
  const clips: [number, number][] = [
    [-Infinity, Infinity],
    [0, 1],
    [0.25, Infinity],
    [-Infinity, 0.5],
    [0.1, 0.1],
  ];
  it.each(clips)("gives the same bits on both paths over many sizes (clip [%s, %s])", (lo, hi) => {
    let seed = 1;
    for (const n of sizes) {
      for (const std of [1, 0.1, 0.3, 0, 1e-3]) {
        seed++;
        const x = data(n, seed);
        const simd = addNormal(new Rng(seed), x.slice(), std, lo, hi);
        const js = withJs(() => addNormal(new Rng(seed), x.slice(), std, lo, hi));
        expect(bits(js), `n ${n} std ${std}`).toEqual(bits(simd));
      }
    }
  });

  it("continues identically across calls and switches of path (the rng stream, the std cache)", () => {
    const a = new Rng(5);
    const b = new Rng(5);
    for (let i = 0; i < 20; i++) {
      const n = (i * 977) % (3 * NORMAL_CHUNK);
      const std = [0.1, 0.2, 0.1][i % 3]!;
      const x = data(n, i);
      const simd = addNormal(a, x.slice(), std, 0, 1);
      const js = i % 2 ? withJs(() => addNormal(b, x.slice(), std, 0, 1)) : addNormal(b, x.slice(), std, 0, 1);
      expect(bits(js)).toEqual(bits(simd));
    }
  });

  it("leaves no trace of the previous call: the values depend only on the rng state and the input", () => {
    const x = data(5000, 9);
    const first = addNormal(new Rng(3), x.slice(), 0.5, 0, 1);
    addNormal(new Rng(4), data(777, 1), 2, -1, 1);
    withJs(() => addNormal(new Rng(4), data(777, 1), 2));
    expect(bits(addNormal(new Rng(3), x.slice(), 0.5, 0, 1))).toEqual(bits(first));
    expect(bits(withJs(() => addNormal(new Rng(3), x.slice(), 0.5, 0, 1)))).toEqual(bits(first));
  });

  it("squeezes every wedge strictly between bounds that Math.exp never crosses (the slow pass decides as with Math.exp alone)", () => {
    const { kn, wn } = zigguratTables();
    const { loA, loB, loC, hiA, hiB, hiC } = wedgeSqueeze();
    let squeezed = 0;
    for (let i = 1; i < 256; i++) {
      if (loA[i] === -Infinity) continue;
      squeezed++;
      // every magnitude a wedge of layer i can have: u in [kn[i], 2^23), sampled densely plus the ends
      const step = Math.max(1, Math.floor((2 ** 23 - kn[i]!) / 2000));
      for (let u = kn[i]!; u < 2 ** 23; u += u + step < 2 ** 23 ? step : Math.max(1, 2 ** 23 - 1 - u)) {
        const x = u * wn[i]!;
        const f = Math.exp(-0.5 * x * x);
        expect(loA[i]! + loB[i]! * x + loC[i]! * x * x < f && f < hiA[i]! + hiB[i]! * x + hiC[i]! * x * x, `layer ${i} u ${u}`).toBe(true);
        if (u === 2 ** 23 - 1) break;
      }
    }
    expect(squeezed).toBe(254); // all but the layer holding the inflection point x = 1
  });

  it("squeezes the top layer (no fast path there) to a band of < 2 % of its height: Math.exp is rare", () => {
    const { x, fn } = zigguratTables();
    const { loA, loB, loC, hiA, hiB, hiC } = wedgeSqueeze();
    let widest = 0;
    for (let k = 0; k <= 1000; k++) {
      const t = (k / 1000) * x[1]!;
      widest = Math.max(widest, hiA[1]! + hiB[1]! * t + hiC[1]! * t * t - (loA[1]! + loB[1]! * t + loC[1]! * t * t));
    }
    expect(widest / (fn[0]! - fn[1]!)).toBeLessThan(0.02);
  });

  it("never writes past the array it is given, also in place on a workspace and for lengths that are not a multiple of 8", () => {
    for (const n of [1, 7, 9, 4095, 4097, 4099, 50_175]) {
      const ws = noiseWorkspace(n + 16)!;
      ws.fill(7);
      const x = data(n, n);
      ws.set(x);
      addNormal(new Rng(n), ws.subarray(0, n), 0.5, 0, 1);
      expect(Array.from(ws.subarray(n)), `n ${n}`).toEqual(new Array(16).fill(7));
      expect(bits(ws.subarray(0, n))).toEqual(bits(withJs(() => addNormal(new Rng(n), x.slice(), 0.5, 0, 1))));
    }
  });

  it("works in place on a workspace in the kernel's memory (grown as needed) with the same bits as on a plain array", () => {
    let seed = 100;
    for (const n of [5, 4096, 50_176, 4097, 200_003, 64]) {
      seed++;
      const x = data(n, seed);
      const plain = addNormal(new Rng(seed), x.slice(), 0.2, 0, 1);
      const ws = noiseWorkspace(n)!;
      expect(ws.length).toBe(n);
      ws.set(x);
      expect(addNormal(new Rng(seed), ws, 0.2, 0, 1)).toBe(ws);
      expect(bits(ws)).toEqual(bits(plain));
      // a part of it, and the JS twin on it (which copies through its own memory)
      const part = noiseWorkspace(n)!.subarray(1, n);
      part.set(x.subarray(1));
      expect(bits(addNormal(new Rng(seed), part, 0.2, 0, 1))).toEqual(bits(addNormal(new Rng(seed), x.slice(1), 0.2, 0, 1)));
      const viaJs = noiseWorkspace(n)!;
      viaJs.set(x);
      expect(bits(withJs(() => addNormal(new Rng(seed), viaJs, 0.2, 0, 1)))).toEqual(bits(plain));
    }
    expect(withJs(() => noiseWorkspace(10))).toBeUndefined();
  });
});
