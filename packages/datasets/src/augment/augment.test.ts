import { describe, expect, it, vi } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, Rng } from "@fitloop/core";
import { expectNoLeaks } from "@fitloop/core/testing";
import {
  DataLoader,
  FLIP_WARNING,
  cutMix,
  fromArrays,
  gaussianNoise,
  horizontalFlip,
  labelSmoothing,
  mixUp,
  randomCrop,
  randomRotation,
  randomShift,
  type BatchTransform,
  type HostBatch,
} from "../index.js";
import { gatherBatch } from "../batch.js";

/** A host batch of `n` copies of one image (rows of `h` x `w` x `c`). */
function batchOf(img: number[], n: number, sampleShape: number[]): HostBatch {
  const x = new Float32Array(n * img.length);
  for (let s = 0; s < n; s++) x.set(img, s * img.length);
  return { x, y: new Int32Array(n), size: n, sampleShape, labelShape: [], indices: new Int32Array(n) };
}
const ctx = (seed = 1, numClasses: number | undefined = 3) => ({ rng: new Rng(seed), epoch: 0, batchIndex: 0, numClasses });
const img = (b: HostBatch, s: number) => Array.from(b.x.subarray((s * b.x.length) / b.size, ((s + 1) * b.x.length) / b.size));

describe("geometric transforms", () => {
  it.each([
    [[5, 5, 1], 2],
    [[4, 6, 3], 1],
    [[3, 3, 2], 2], // the largest shift that keeps part of the image
    [[7, 5, 1], 0],
  ])("shift fused with the gather (%j, maxShift %i) equals gathering then shifting, into a stale buffer too", (shape, maxShift) => {
    const f = shape.reduce((a, b) => a * b, 1);
    const n = 12;
    const x = Array.from({ length: n }, (_, s) => Array.from({ length: f }, (_, k) => s * 1000 + k + 1));
    const ds = fromArrays({ x, y: x.map((_, s) => s % 3), numClasses: 3, sampleShape: shape });
    const indices = Int32Array.from([3, 0, 11, 5, 5, 7, 2, 9]);
    for (const t of [randomShift({ maxShift, fill: -7 }), randomCrop({ padding: maxShift })]) {
      for (let seed = 0; seed < 20; seed++) {
        const want = t.apply(gatherBatch(ds, indices), ctx(seed));
        const stale = new Float32Array(indices.length * f).fill(123);
        const got = t.gatherApply!(ds, indices, ctx(seed), stale);
        expect(got.x).toBe(stale);
        expect(Array.from(got.x)).toEqual(Array.from(want.x));
        expect(Array.from(got.y)).toEqual(Array.from(want.y));
        expect(Array.from(t.gatherApply!(ds, indices, ctx(seed)).x)).toEqual(Array.from(want.x));
      }
    }
  });

  it("randomShift moves each image by an integer offset within the bound and fills the border", () => {
    // One bright pixel at the centre of a 5x5 image: after a shift it sits at most 2 pixels away.
    const base = new Array(25).fill(0);
    base[12] = 1;
    const b = randomShift({ maxShift: 2, fill: -1 }).apply(batchOf(base, 200, [5, 5]), ctx());
    const offsets = new Set<string>();
    for (let s = 0; s < 200; s++) {
      const im = img(b, s);
      const at = im.indexOf(1);
      expect(at).toBeGreaterThanOrEqual(0);
      expect(im.filter((v) => v === 1).length).toBe(1);
      const dy = Math.floor(at / 5) - 2;
      const dx = (at % 5) - 2;
      offsets.add(`${dy},${dx}`);
      // a shift by (dy, dx) uncovers |dy| rows and |dx| columns of fill
      expect(im.filter((v) => v === -1).length).toBe(25 - (5 - Math.abs(dy)) * (5 - Math.abs(dx)));
    }
    expect(offsets.size).toBe(25); // every offset in [-2, 2]^2 occurs
  });

  it("randomShift equals a per-pixel reference for any image shape and offset, up to the border", () => {
    let checked = 0;
    let wrong = 0;
    let expected = 0;
    for (const [h, w, c] of [[5, 5, 1], [4, 7, 3], [2, 6, 2], [6, 2, 1], [28, 28, 1]]) {
      for (const maxShift of new Set([1, Math.min(h!, w!) - 1])) {
        expected += 30 * h! * w! * c!;
        const n = 30;
        const f = h! * w! * c!;
        const x = Float32Array.from({ length: n * f }, (_, k) => k + 1);
        const shifted = randomShift({ maxShift, fill: -1 }).apply({ ...batchOf([], n, [h!, w!, c!]), x: x.slice() }, ctx(5));
        const rng = new Rng(5); // replays the offsets the transform drew: (dy, dx) per image, in order
        for (let s = 0; s < n; s++) {
          const dy = rng.int(2 * maxShift + 1) - maxShift;
          const dx = rng.int(2 * maxShift + 1) - maxShift;
          for (let r = 0; r < h!; r++) {
            for (let q = 0; q < w!; q++) {
              for (let ch = 0; ch < c!; ch++) {
                const inside = r - dy >= 0 && r - dy < h! && q - dx >= 0 && q - dx < w!;
                const want = inside ? x[s * f + ((r - dy) * w! + q - dx) * c! + ch]! : -1;
                if (shifted.x[s * f + (r * w! + q) * c! + ch] !== want) wrong++;
                checked++;
              }
            }
          }
        }
      }
    }
    expect(checked).toBe(expected);
    expect(wrong).toBe(0);
  });

  it("randomCrop with padding keeps the size and channels together", () => {
    const rgb = Array.from({ length: 4 * 4 * 3 }, (_, k) => k % 3); // channel index as value
    const b = randomCrop({ padding: 1, fill: 9 }).apply(batchOf(rgb, 20, [4, 4, 3]), ctx());
    for (let s = 0; s < 20; s++) img(b, s).forEach((v, k) => expect(v === 9 || v === k % 3).toBe(true));
  });

  it("randomRotation by at most 0 degrees is the identity; small rotations keep the mass", () => {
    const im = Array.from({ length: 64 }, (_, k) => ((k >> 3) >= 2 && (k >> 3) < 6 && (k & 7) >= 2 && (k & 7) < 6 ? 1 : 0));
    expect(img(randomRotation({ maxDegrees: 0 }).apply(batchOf(im, 1, [8, 8]), ctx()), 0)).toEqual(im);
    const rotated = randomRotation({ maxDegrees: 15 }).apply(batchOf(im, 10, [8, 8, 1]), ctx());
    for (let s = 0; s < 10; s++) {
      const mass = img(rotated, s).reduce((a, v) => a + v, 0);
      expect(mass).toBeGreaterThan(14);
      expect(mass).toBeLessThan(18);
    }
  });

  it("horizontalFlip mirrors rows; it warns about labels unless told they are flip-invariant", () => {
    const warn = vi.fn();
    const flip = horizontalFlip({ p: 1, warn });
    expect(warn).toHaveBeenCalledWith(FLIP_WARNING);
    expect(FLIP_WARNING).toMatch(/b\/d/);
    const b = flip.apply(batchOf([1, 2, 3, 4, 5, 6], 1, [2, 3]), ctx());
    expect(img(b, 0)).toEqual([3, 2, 1, 6, 5, 4]);
    const quiet = vi.fn();
    horizontalFlip({ labelsFlipInvariant: true, warn: quiet });
    expect(quiet).not.toHaveBeenCalled();
    // p = 0.5: about half the images flip
    const half = horizontalFlip({ labelsFlipInvariant: true }).apply(batchOf([1, 2], 1000, [1, 2]), ctx());
    const flipped = Array.from({ length: 1000 }, (_, s) => img(half, s)[0] === 2).filter(Boolean).length;
    expect(flipped).toBeGreaterThan(430);
    expect(flipped).toBeLessThan(570);
  });

  it("image transforms refuse non-image samples unless given imageShape", () => {
    const ds = fromArrays({ x: new Float32Array(8 * 16), sampleShape: [16], y: new Array(8).fill(0), numClasses: 2 });
    expect(() => new DataLoader(ds, { batchSize: 4, transforms: [randomShift({ maxShift: 1 })] })).toThrow(OptionsError);
    expect(() => new DataLoader(ds, { batchSize: 4, transforms: [randomShift({ maxShift: 1, imageShape: [4, 4, 1] })] })).not.toThrow();
    expect(() => new DataLoader(ds, { batchSize: 4, transforms: [randomShift({ maxShift: 1, imageShape: [5, 4] })] })).toThrow(/imageShape/);
    expect(() => randomShift({ maxShift: -1 })).toThrow(OptionsError);
  });
});

describe("gaussianNoise", () => {
  it("adds N(0, std²) noise, seeded, optionally clipped", () => {
    const b = gaussianNoise({ std: 0.5 }).apply(batchOf(new Array(100).fill(3), 200, [100]), ctx(4));
    const v = Array.from(b.x);
    const mean = v.reduce((a, x) => a + x, 0) / v.length;
    const std = Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / v.length);
    expect(mean).toBeCloseTo(3, 1);
    expect(std).toBeCloseTo(0.5, 2);
    const again = gaussianNoise({ std: 0.5 }).apply(batchOf(new Array(100).fill(3), 200, [100]), ctx(4));
    expect(Array.from(again.x)).toEqual(v);
    const clipped = gaussianNoise({ std: 1, clip: [0, 1] }).apply(batchOf(new Array(100).fill(0.5), 10, [100]), ctx());
    expect(Math.min(...clipped.x)).toBe(0);
    expect(Math.max(...clipped.x)).toBe(1);
    expect(() => gaussianNoise({ std: 1, clip: [1, 0] })).toThrow(OptionsError);
  });
});

/** A data set whose features are the one-hot label, so mixed features must equal mixed labels. */
function selfLabelled(n: number, k: number, sampleShape: number[]) {
  const f = sampleShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n * f);
  const y = Array.from({ length: n }, (_, i) => i % k);
  // every pixel's channel c is 1 when the label is c: [h, w, k] images
  for (let i = 0; i < n; i++) for (let p = 0; p < f / k; p++) x[i * f + p * k + y[i]!] = 1;
  return fromArrays({ x, y, sampleShape, numClasses: k });
}

/** Mean over pixels of each channel, per sample: the "visible" class mix of an image. */
function channelMeans(b: HostBatch, k: number): number[][] {
  const f = b.x.length / b.size;
  return Array.from({ length: b.size }, (_, s) => Array.from({ length: k }, (_, c) => {
    let sum = 0;
    for (let p = c; p < f; p += k) sum += b.x[s * f + p]!;
    return sum / (f / k);
  }));
}

describe("MixUp, CutMix, label smoothing", () => {
  const k = 4;
  const rows = (y: Float32Array | Int32Array, n: number) => Array.from({ length: n }, (_, s) => Array.from(y.subarray(s * k, (s + 1) * k)));

  it("MixUp mixes inputs and one-hot labels with the same weights (soft labels sum to 1)", () => {
    const ds = selfLabelled(32, k, [1, 1, k]);
    const loader = new DataLoader(ds, { batchSize: 16, seed: 2, transforms: [mixUp({ alpha: 0.4 })] });
    const b = loader.hostBatch(0, 1);
    expect(b.labelShape).toEqual([k]);
    const y = rows(b.y, 16);
    const x = channelMeans(b, k);
    y.forEach((row, s) => {
      expect(row.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 6);
      row.forEach((v, c) => expect(x[s]![c]).toBeCloseTo(v, 6));
    });
    expect(y.some((row) => row.every((v) => v < 0.999))).toBe(true); // some labels really are mixed
  });

  it("CutMix pastes boxes and weights the labels by the exact pasted area", () => {
    const ds = selfLabelled(32, k, [8, 8, k]);
    const loader = new DataLoader(ds, { batchSize: 16, seed: 3, transforms: [cutMix({ alpha: 1 })] });
    const b = loader.hostBatch(0, 0);
    const y = rows(b.y, 16);
    const x = channelMeans(b, k);
    y.forEach((row, s) => row.forEach((v, c) => expect(x[s]![c]).toBeCloseTo(v, 6)));
    expect(y.some((row) => row.every((v) => v < 0.999))).toBe(true);
  });

  it("label smoothing spreads epsilon over the classes, after MixUp too", () => {
    const ds = selfLabelled(8, k, [1, 1, k]);
    const plain = new DataLoader(ds, { batchSize: 8, shuffle: false, transforms: [labelSmoothing({ epsilon: 0.2 })] }).hostBatch(0, 0);
    expect(rows(plain.y, 1)[0]).toEqual([0.8 + 0.05, 0.05, 0.05, 0.05].map((v) => Math.fround(v)));
    const mixed = new DataLoader(ds, { batchSize: 8, transforms: [mixUp(), labelSmoothing({ epsilon: 0.1 })] }).hostBatch(0, 0);
    for (const row of rows(mixed.y, 8)) {
      expect(row.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
      expect(Math.min(...row)).toBeGreaterThanOrEqual(0.1 / k - 1e-6);
    }
  });

  it("soft-label transforms need class data; the loader yields [n, K] float32 labels", async () => {
    const reg = fromArrays({ x: [[1], [2]], y: [0.5, 0.7] });
    expect(() => new DataLoader(reg, { batchSize: 1, transforms: [mixUp()] })).toThrow(/regression targets/);
    const ds = selfLabelled(8, k, [2, 2, k]);
    const loader = new DataLoader(ds, { batchSize: 4, transforms: [cutMix(), labelSmoothing()] });
    await expectNoLeaks(() => {
      const b = loader.batch(0, 1);
      expect(b.ys.shape).toEqual([4, k]);
      expect(b.ys.dtype).toBe("float32");
      tf.dispose([b.xs, b.ys]);
    });
  });

  it("a custom transform is a plain object with name and apply", () => {
    const negate: BatchTransform = { name: "negate", apply: (b) => (b.x.forEach((v, i) => (b.x[i] = -v)), b) };
    const ds = fromArrays({ x: [[1], [2]], y: [0, 1], numClasses: 2 });
    expect(Array.from(new DataLoader(ds, { batchSize: 2, shuffle: false, transforms: [negate] }).hostBatch(0, 0).x)).toEqual([-1, -2]);
  });
});
