import { describe, expect, it } from "vitest";
import { Rng } from "@fitloop/core";
import { base64, compileSimd, SIMD_SOURCES } from "../../scripts/build-simd.js";
import { addNormal } from "../random.js";
import { WASM_BASE64 } from "./normal.wasm.js";
import { jsKernel, normalKernel, NORMAL_CHUNK, setNormalSimdEnabled, simdKernel } from "./normal.js";

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
});
