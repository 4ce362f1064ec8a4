/**
 * Seeded randomness. tfjs draws unseeded randomness (initialisers, dropout masks) from
 * `Math.random`, and a seeded `tf.layers.dropout` repeats one mask every step. So deterministic
 * mode swaps `Math.random` for a seeded generator only while tfjs runs a synchronous forward or
 * build, and keeps the generator's state so a checkpoint can restore it.
 */

/** xoshiro128** state: four uint32 words. */
export type RngState = readonly [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Mixes any number of integers into one 32-bit seed (order matters). */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    const next = splitmix32((h ^ (p >>> 0) ^ Math.floor(p / 2 ** 32)) >>> 0);
    h = next();
  }
  return h >>> 0;
}

export class Rng {
  // The words as int32 (the same bits as the uint32 state): V8 keeps them as small integers, where
  // uint32 values from `>>> 0` are doubles (an int draw took ~15 ns, ~4x as long)
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new TypeError(`seed must be a safe integer, got ${String(seed)}`);
    const sm = splitmix32(mixSeed(seed));
    this.s0 = sm() | 0;
    this.s1 = sm() | 0;
    this.s2 = sm() | 0;
    this.s3 = sm() | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  /** Next uint32. */
  nextUint32(): number {
    const s1 = this.s1;
    const x = Math.imul(s1, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = s1 << 9;
    const s2 = this.s2 ^ this.s0;
    const s3 = this.s3 ^ s1;
    this.s1 = s1 ^ s2;
    this.s0 = this.s0 ^ s3;
    this.s2 = s2 ^ t;
    this.s3 = (s3 << 11) | (s3 >>> 21);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution, like `Math.random`. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  getState(): RngState {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  setState(state: RngState): void {
    if (state.length !== 4 || state.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new TypeError("RNG state must be four uint32 words");
    }
    this.s0 = state[0] | 0;
    this.s1 = state[1] | 0;
    this.s2 = state[2] | 0;
    this.s3 = state[3] | 0;
  }
}

/** A permutation of [0, n) that depends only on `(seed, epoch)`: reproducible and resumable by index. */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  return permutation(new Rng(mixSeed(seed, epoch, 0x5eed)), n);
}

/** A uniformly random permutation of [0, n) drawn from `rng` (Fisher-Yates). */
export function permutation(rng: Rng, n: number): Int32Array {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}

/**
 * Runs synchronous `fn` with `Math.random` drawing from `rng`. Use it to build a model
 * reproducibly: `const model = withRandom(new Rng(42), () => buildModel())`.
 */
export function withRandom<T>(rng: Rng, fn: () => T, options: { allowAsync?: boolean } = {}): T {
  const original = Math.random;
  Math.random = () => rng.next();
  try {
    const out = fn();
    // an async function's continuation runs after Math.random is restored: only its synchronous part is seeded
    if (out instanceof Promise && !options.allowAsync) throw new TypeError("withRandom takes a synchronous function");
    return out;
  } finally {
    Math.random = original;
  }
}

/** A 32-bit hash of a string (FNV-1a), to mix names into seeds. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** `withRandom(new Rng(seed), fn)`. */
export function seeded<T>(seed: number, fn: () => T): T {
  return withRandom(new Rng(seed), fn);
}
