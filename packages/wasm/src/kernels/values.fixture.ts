/** Test data for the kernel tests: deterministic values in [-scale, scale) without touching tfjs's RNG. */
export function values(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 31 - 1) * scale;
  }
  return out;
}

export const size = (shape: readonly number[]): number => shape.reduce((p, q) => p * q, 1);
