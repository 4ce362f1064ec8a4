import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError } from "@fitloop/core";
import { expectNoLeaks } from "@fitloop/core/testing";
import { expectVariance, gramError, moments } from "./stats.fixture.js";
import { computeFans, glorotNormal, glorotUniform, heNormal, heUniform, lecunNormal, lecunUniform, orthogonal, orthogonalValues } from "./index.js";

const SHAPES: readonly (readonly number[])[] = [
  [512, 256], // Dense
  [64, 1024], // Dense, wide
  [7, 64, 128], // Conv1D
  [3, 3, 64, 96], // Conv2D
  [3, 3, 3, 16, 48], // Conv3D
];

describe("the schemes' variance is the formula's, over several layer shapes", () => {
  it("computeFans: receptive field x channels, as Keras and PyTorch (channels-last); depthwise counts one channel", () => {
    expect(computeFans([512, 256])).toEqual({ fanIn: 512, fanOut: 256 });
    expect(computeFans([7, 64, 128])).toEqual({ fanIn: 7 * 64, fanOut: 7 * 128 });
    expect(computeFans([3, 3, 64, 96])).toEqual({ fanIn: 9 * 64, fanOut: 9 * 96 });
    expect(computeFans([3, 3, 3, 16, 48])).toEqual({ fanIn: 27 * 16, fanOut: 27 * 48 });
    expect(computeFans([5, 5, 32, 2], true)).toEqual({ fanIn: 25, fanOut: 50 });
    expect(computeFans([10])).toEqual({ fanIn: 10, fanOut: 10 });
  });

  for (const shape of SHAPES) {
    it(`shape [${shape.join(", ")}]: He, Glorot, LeCun, normal and uniform`, () => {
      const { fanIn, fanOut } = computeFans(shape);
      const cases: [string, () => tf.Tensor, number, number | undefined][] = [
        ["heNormal", () => heNormal(shape, fanIn, 1), 2 / fanIn, undefined],
        ["heUniform", () => heUniform(shape, fanIn, 2), 2 / fanIn, Math.sqrt(6 / fanIn)],
        ["heNormal leaky 0.2", () => heNormal(shape, fanIn, 3, 0.2), 2 / (1 + 0.04) / fanIn, undefined],
        ["glorotNormal", () => glorotNormal(shape, fanIn, fanOut, 4), 2 / (fanIn + fanOut), undefined],
        ["glorotUniform", () => glorotUniform(shape, fanIn, fanOut, 5), 2 / (fanIn + fanOut), Math.sqrt(6 / (fanIn + fanOut))],
        ["lecunNormal", () => lecunNormal(shape, fanIn, 6), 1 / fanIn, undefined],
        ["lecunUniform", () => lecunUniform(shape, fanIn, 7), 1 / fanIn, Math.sqrt(3 / fanIn)],
      ];
      for (const [name, make, variance, limit] of cases) {
        const t = make();
        expect(t.shape).toEqual(shape);
        expectVariance(t, variance, `${name} [${shape.join(", ")}]`);
        if (limit !== undefined) expect(moments(t).maxAbs).toBeLessThanOrEqual(limit);
        t.dispose();
      }
    });
  }

  it("is seeded: the same seed gives the same values, another seed others", () => {
    const [a, b, c] = [heNormal([64, 32], 64, 9), heNormal([64, 32], 64, 9), heNormal([64, 32], 64, 10)];
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    expect(Array.from(a.dataSync())).not.toEqual(Array.from(c.dataSync()));
    tf.dispose([a, b, c]);
  });

  it("refuses a bad shape, fan or seed with an OptionsError naming it", () => {
    expect(() => heNormal([3, 0], 3, 1)).toThrow(OptionsError);
    expect(() => heNormal([3, 3], 0, 1)).toThrow(/fanIn/);
    expect(() => glorotUniform([3, 3], 3, Number.NaN, 1)).toThrow(/fanOut/);
    expect(() => lecunNormal([3, 3], 3, 1.5)).toThrow(/seed/);
    expect(() => orthogonal([4], 1)).toThrow(/rank >= 2/);
  });

  it("leaks no tensor", async () => {
    await expectNoLeaks(() => tf.dispose([heNormal([8, 8], 8, 1), orthogonal([3, 3, 4, 8], 1)]));
  });
});

describe("orthogonal", () => {
  it("tall: W^T W = I; wide: W W^T = I; with a gain, gain^2 I", () => {
    expect(gramError(orthogonalValues(200, 50, 1), 200, 50)).toBeLessThan(1e-5);
    expect(gramError(orthogonalValues(64, 64, 2), 64, 64)).toBeLessThan(1e-5);
    // wide: the transpose has orthonormal columns
    const wide = orthogonalValues(30, 90, 3);
    const transposed = Float32Array.from({ length: wide.length }, (_, k) => wide[(k % 30) * 90 + Math.floor(k / 30)]!);
    expect(gramError(transposed, 90, 30)).toBeLessThan(1e-5);
    expect(gramError(orthogonalValues(40, 20, 4, Math.SQRT2), 40, 20, Math.SQRT2)).toBeLessThan(1e-5);
  });

  it("a conv kernel is orthogonal flattened to [receptive field x in, out]", () => {
    const w = orthogonal([3, 3, 16, 32], 5);
    expect(gramError(w.dataSync(), 9 * 16, 32)).toBeLessThan(1e-5);
    w.dispose();
  });

  it("entries of a square orthogonal n x n have variance 1/n (uniform on the orthogonal group)", () => {
    const n = 256;
    const w = orthogonal([n, n], 6);
    expectVariance(w, 1 / n, "orthogonal 256x256");
    w.dispose();
  });
});
