import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { adaptiveClip, clipByGlobalNorm, clipByNorm, clipByValue, globalNorm, unitwiseNorm, type ClipResult } from "./index.js";

const grads = () => ({ a: tf.tensor1d([3, -4]), b: tf.tensor1d([12]) }); // norms 5 and 12, global 13
const values = (r: ClipResult) => ({
  grads: Object.fromEntries(Object.entries(r.grads).map(([k, t]) => [k, Array.from(t.dataSync())])),
  norm: r.norm.dataSync()[0],
  clipped: r.clipped.dataSync()[0],
});
const dispose = (...rs: (ClipResult | Record<string, tf.Tensor>)[]) => {
  for (const r of rs) tf.dispose("norm" in r ? [...Object.values((r as ClipResult).grads), (r as ClipResult).norm, (r as ClipResult).clipped] : Object.values(r));
};
const close = (a: number[], b: number[]) => a.forEach((v, i) => expect(v, `element ${i}`).toBeCloseTo(b[i]!, 6));

describe("clipping functions, against hand-computed results", () => {
  it("global norm: sqrt(9 + 16 + 144) = 13; clipped to 6.5 every gradient is halved; below the limit nothing changes", () => {
    const g = grads();
    expect(globalNorm(g).dataSync()[0]).toBeCloseTo(13, 6);
    const r = clipByGlobalNorm(g, 6.5);
    const v = values(r);
    close(v.grads["a"]!, [1.5, -2]);
    close(v.grads["b"]!, [6]);
    expect(v.norm).toBeCloseTo(13, 6); // the norm before clipping
    expect(v.clipped).toBe(1);
    const same = clipByGlobalNorm(g, 20);
    expect(values(same)).toEqual({ grads: { a: [3, -4], b: [12] }, norm: values(r).norm, clipped: 0 }); // times exactly 1: bit-identical
    dispose(r, same, g);
  });

  it("per-tensor norm (Keras clipnorm): each tensor on its own; the global norm is still reported", () => {
    const g = grads();
    const r = clipByNorm(g, 6);
    const v = values(r);
    close(v.grads["a"]!, [3, -4]); // norm 5 <= 6
    close(v.grads["b"]!, [6]); // norm 12 -> 6
    expect(v.norm).toBeCloseTo(13, 6);
    expect(v.clipped).toBe(1);
    const none = clipByNorm(g, 12);
    expect(values(none).clipped).toBe(0);
    dispose(r, none, g);
  });

  it("by value: every element into [-v, v]", () => {
    const g = grads();
    const r = clipByValue(g, 3.5);
    const v = values(r);
    expect(v.grads).toEqual({ a: [3, -3.5], b: [3.5] });
    expect(v.clipped).toBe(1);
    expect(values(clipByValue(g, 12)).clipped).toBe(0);
    dispose(r, g);
  });

  it("adaptive (AGC): per output unit, ratio of gradient norm to weight norm at most λ; eps for zero weights", () => {
    // dense kernel [in=2, out=2]: unit norms over axis 0 -> W columns 5 and 1, G columns 0.5 and sqrt(0.05)
    const W = tf.tensor2d([[3, 0], [4, 1]]);
    const G = tf.tensor2d([[0.3, 0.1], [0.4, 0.2]]);
    const bias = tf.tensor1d([0, 0]); // zero-initialised: its norm counts as eps = 1e-3
    const gBias = tf.tensor1d([3, 4]);
    const r = adaptiveClip({ k: G, b: gBias }, { k: W, b: bias }, { clipping: 0.05 });
    const v = values(r);
    // column 0: 0.5 > 0.05 * 5 -> times 0.25 / 0.5; column 1: 0.2236 > 0.05 * 1 -> times 0.05 / 0.2236
    const c1 = 0.05 / Math.sqrt(0.05);
    close(v.grads["k"]!, [0.15, 0.1 * c1, 0.2, 0.2 * c1]);
    close(v.grads["b"]!, [3 * (5e-5 / 5), 4 * (5e-5 / 5)]);
    expect(v.clipped).toBe(1);
    // a unit under the limit is left exactly as it was
    const loose = adaptiveClip({ k: G }, { k: W }, { clipping: 0.11 });
    const lv = values(loose);
    close(lv.grads["k"]!, [0.3, 0.1 * (0.11 / Math.sqrt(0.05)), 0.4, 0.2 * (0.11 / Math.sqrt(0.05))]);
    // skipped names pass through as the same tensor
    const skipped = adaptiveClip({ k: G, b: gBias }, { k: W, b: bias }, { clipping: 0.05, skip: new Set(["b"]) });
    expect(skipped.grads["b"]).toBe(gBias);
    tf.dispose([skipped.grads["k"]!, skipped.norm, skipped.clipped]);
    dispose(r, loose, { W, G, bias, gBias });
  });

  it("unit-wise norms: dense [in, out] per column, conv [h, w, in, out] per output channel, vectors whole", () => {
    const conv = tf.tidy(() => tf.concat([tf.fill([3, 3, 2, 1], 1), tf.fill([3, 3, 2, 1], 2)], 3)); // channel norms sqrt(18), sqrt(72)
    const n = unitwiseNorm(conv);
    expect(n.shape).toEqual([1, 1, 1, 2]);
    close(Array.from(n.dataSync()), [Math.sqrt(18), Math.sqrt(72)]);
    const row = unitwiseNorm(tf.tensor2d([[3, 4]])); // [1, 2] squeezes to a vector: one norm
    expect(row.dataSync()[0]).toBeCloseTo(5, 6);
    tf.dispose([conv, n, row]);
  });

  it("a non-finite gradient gives a non-finite norm (what the plugin's nonFinite policy reads)", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const g = { a: tf.tensor1d([1, bad]) };
      for (const r of [clipByGlobalNorm(g, 1), clipByNorm(g, 1), clipByValue(g, 1)]) {
        expect(Number.isFinite(r.norm.dataSync()[0])).toBe(false);
        dispose(r);
      }
      dispose(g);
    }
  });

  it("no tensors left behind but the results", () => {
    const g = grads();
    const params = { a: tf.ones([2]), b: tf.ones([1]) };
    const before = tf.memory().numTensors;
    for (const fn of [() => clipByGlobalNorm(g, 1), () => clipByNorm(g, 1), () => clipByValue(g, 1), () => adaptiveClip(g, params, { clipping: 0.01 })]) {
      const r = fn();
      expect(tf.memory().numTensors).toBe(before + Object.keys(r.grads).length + 2);
      dispose(r);
    }
    tf.dispose(globalNorm(g));
    expect(tf.memory().numTensors).toBe(before);
    dispose(g, params);
  });
});
