import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { isFusedAdamEnabled } from "@fitloop/wasm";
import { useBackend } from "./backend.js";
import { loadOptimizerStateDict, optimizerStateDict } from "./optimizer-state.js";

/** What `applyGradients` takes (tfjs types its map as Variables; gradients are plain tensors). */
type Grads = Parameters<tf.AdamOptimizer["applyGradients"]>[0];

/** Deterministic values in [-1, 1) without touching tfjs's RNG. */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** Core's optimizer state export and restore with `@fitloop/wasm`'s fused Adam doing the updates. */
describe("optimizer state with the fused wasm Adam", () => {
  beforeAll(async () => {
    await useBackend("wasm");
  });

  it("keeps fitloop's optimizer state export and restore working (slot names, order, accBeta scalars)", async () => {
    expect(isFusedAdamEnabled()).toBe(true);
    const a = tf.variable(tf.tensor(values(6, 7), [2, 3]), true, `adam_state_a_${Math.random()}`);
    const b = tf.variable(tf.tensor(values(5, 8)), true, `adam_state_b_${Math.random()}`);
    const opt = tf.train.adam(0.01);
    const step = (o: tf.Optimizer) => tf.tidy(() => o.applyGradients({ [a.name]: tf.mul(a, 2), [b.name]: tf.sub(b, 1) } as unknown as Grads));
    step(opt);
    step(opt);
    const state = await optimizerStateDict(opt, [a, b]);
    expect(state.kind).toBe("adam");
    expect(state.iterations).toBe(2);
    expect(Object.values(state.slots).map((s) => s.length)).toEqual([2, 2]);
    const weights = await opt.getWeights();
    expect(weights.slice(1).map((w) => w.name)).toEqual([`${a.name}/m`, `${b.name}/m`, `${a.name}/v`, `${b.name}/v`]);
    weights[0]!.tensor.dispose();
    const restored = tf.train.adam(0.01);
    loadOptimizerStateDict(restored, state, [a, b]);
    const snapshot = [a.dataSync().slice(), b.dataSync().slice()];
    step(opt);
    const expected = [a.dataSync().slice(), b.dataSync().slice()];
    a.assign(tf.tensor(snapshot[0]!, [2, 3]));
    b.assign(tf.tensor(snapshot[1]!));
    step(restored);
    expect([...a.dataSync()]).toEqual([...expected[0]!]);
    expect([...b.dataSync()]).toEqual([...expected[1]!]);
    opt.dispose();
    restored.dispose();
    tf.dispose([a, b]);
  });

});
