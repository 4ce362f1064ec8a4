import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { Trainer, seeded, silentLogger, useBackend } from "@fitloop/core";
import { expectNoLeaks, tinyFixture } from "@fitloop/core/testing";
import { GradClip, adaptiveClip, clipByGlobalNorm, clipByNorm, clipByValue, type ClipResult } from "./index.js";

/** MLP-sized gradients (784-256-10 kernels and biases), with a wide spread of magnitudes. */
function gradients(): { grads: tf.NamedTensorMap; params: tf.NamedTensorMap } {
  return seeded(5, () =>
    tf.tidy(() => {
      const shapes: [string, number[]][] = [["k1", [784, 256]], ["b1", [256]], ["k2", [256, 10]], ["b2", [10]], ["conv", [3, 3, 8, 16]]];
      const grads: tf.NamedTensorMap = {};
      const params: tf.NamedTensorMap = {};
      shapes.forEach(([n, s], i) => {
        grads[n] = tf.mul(tf.randomNormal(s), 10 ** (i - 2));
        params[n] = tf.randomNormal(s);
      });
      return { grads, params };
    }),
  );
}

type Plain = { grads: Record<string, number[]>; norm: number; clipped: number };
function run(): Plain[] {
  const { grads, params } = gradients();
  const results: ClipResult[] = [clipByGlobalNorm(grads, 1), clipByNorm(grads, 0.5), clipByValue(grads, 0.01), adaptiveClip(grads, params, { clipping: 0.01 })];
  const plain = results.map((r) => ({ grads: Object.fromEntries(Object.entries(r.grads).map(([k, t]) => [k, Array.from(t.dataSync())])), norm: r.norm.dataSync()[0]!, clipped: r.clipped.dataSync()[0]! }));
  for (const r of results) tf.dispose([...Object.values(r.grads), r.norm, r.clipped]);
  tf.dispose([...Object.values(grads), ...Object.values(params)]);
  return plain;
}

describe("on the wasm backend (fitloop's kernels)", () => {
  it("every clipping function gives the cpu backend's results to float tolerance", async () => {
    const onCpu = run();
    await useBackend("wasm");
    expect(tf.getBackend()).toBe("wasm");
    const onWasm = run();
    onWasm.forEach((w, m) => {
      const c = onCpu[m]!;
      expect(w.clipped, `mode ${m}`).toBe(c.clipped);
      expect(Math.abs(w.norm - c.norm) / c.norm, `mode ${m} norm`).toBeLessThan(1e-5);
      for (const [k, values] of Object.entries(w.grads)) {
        const ref = c.grads[k]!;
        const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        values.forEach((v, i) => {
          if (Math.abs(v - ref[i]!) > 1e-5 * scale) expect.fail(`mode ${m} ${k}[${i}]: wasm ${v}, cpu ${ref[i]}`);
        });
      }
    });
  });

  it("the plugin trains on wasm without tensor growth", async () => {
    await useBackend("wasm");
    const fx = tinyFixture({ samples: 32 });
    const t = new Trainer({ model: fx.model, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", callbacks: [new GradClip({ max: 0.5 })], logger: silentLogger });
    await expectNoLeaks(() => t.fit({ epochs: 1, train: fx.data(8) }));
    const r = await t.fit({ epochs: 1, train: fx.data(8) });
    expect(r.state.history[0]!.logs["grad_norm"]).toBeGreaterThan(0);
    fx.dispose();
  });
});
