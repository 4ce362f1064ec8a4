import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { FitloopError, ORDER, Trainer, applyGradientsScaled, scaleTensors, silentLogger, useBackend, type Callback } from "./index.js";
import { expectNoLeaks, tinyFixture } from "./testing/index.js";

const weightsOf = (fx: ReturnType<typeof tinyFixture>) => fx.model.getWeights().map((w) => Array.from(w.dataSync()));
const fit = (fx: ReturnType<typeof tinyFixture>, callbacks: Callback[], optimizer: tf.Optimizer = tf.train.sgd(0.5)) =>
  new Trainer({ model: fx.model, optimizer, loss: "sparseCategoricalCrossentropy", callbacks, logger: silentLogger }).fit({ epochs: 1, train: fx.data(16) });

describe("ctx.scaleGradients", () => {
  afterAll(async () => {
    await tf.setBackend("cpu");
  });

  it("the update is the gradients times the scale; two scales compose; reading ctx.grads afterwards sees them scaled", async () => {
    const free = tinyFixture({ samples: 16 });
    const w0 = weightsOf(free);
    let raw: number[][] = [];
    await fit(free, [{ name: "Grab", afterGradients: (ctx) => void (raw = Object.values(ctx.grads!).map((g) => Array.from(g.dataSync()))) }]);
    const delta = weightsOf(free).map((w, i) => w.map((v, j) => v - w0[i]![j]!));

    const scaled = tinyFixture({ samples: 16 });
    let seen: number[][] = [];
    const halve: Callback = { name: "Halve", order: 0, afterGradients: (ctx) => ctx.scaleGradients(tf.scalar(0.5)) };
    const quarter: Callback = { name: "Quarter", order: 1, afterGradients: (ctx) => ctx.scaleGradients(tf.scalar(0.5)) };
    const reader: Callback = { name: "Reader", order: 2, beforeStep: (ctx) => void (seen = Object.values(ctx.grads!).map((g) => Array.from(g.dataSync()))) };
    await fit(scaled, [halve, quarter, reader]);
    const scaledDelta = weightsOf(scaled).map((w, i) => w.map((v, j) => v - w0[i]![j]!));
    scaledDelta.flat().forEach((d, k) => expect(d).toBeCloseTo(delta.flat()[k]! / 4, 7));
    seen.flat().forEach((g, k) => expect(g).toBeCloseTo(raw.flat()[k]! / 4, 7));
    for (const fx of [free, scaled]) fx.dispose();
  });

  it("a hook that returns new gradients without reading them replaces the scaled ones too (the scale is dropped)", async () => {
    const fx = tinyFixture({ samples: 16 });
    const w0 = weightsOf(fx);
    const scale: Callback = { name: "Scale", order: 0, afterGradients: (ctx) => ctx.scaleGradients(tf.scalar(1000)) };
    const zero: Callback = { name: "Zero", order: 1, afterGradients: (ctx) => Object.fromEntries(fx.model.trainableWeights.map((w) => [(w.read() as tf.Variable).name, tf.zeros(w.shape as number[])])) };
    await fit(fx, [scale, zero]);
    expect(weightsOf(fx)).toEqual(w0); // zero gradients, whatever the dropped scale
    fx.dispose();
  });

  it("only a live scalar, before the update; no leaks on success, cancel and failure", async () => {
    const fx = tinyFixture({ samples: 16 });
    const late: Callback = { name: "Late", afterStep: (ctx) => ctx.scaleGradients(tf.scalar(2)) };
    await expect(fit(fx, [late])).rejects.toThrow(FitloopError);
    await expect(fit(fx, [late])).rejects.toThrow(/ctx.scaleGradients from "Late" in afterStep: takes a live scalar tensor, in afterGradients or beforeStep/);
    const notScalar: Callback = { name: "Vec", afterGradients: (ctx) => ctx.scaleGradients(tf.ones([2]) as unknown as tf.Scalar) };
    await expect(fit(fx, [notScalar])).rejects.toThrow(/takes a live scalar tensor/);
    const opt = tf.train.adam(0.01);
    const scaler: Callback = { name: "S", afterGradients: (ctx) => ctx.scaleGradients(tf.scalar(0.5)) };
    await expectNoLeaks(() => fit(fx, [scaler], opt));
    await expectNoLeaks(() => fit(fx, [scaler, notScalar], opt).catch(() => undefined));
    await expectNoLeaks(() => fit(fx, [scaler, { name: "Cancel", order: ORDER.LAST, beforeStep: () => { throw new Error("x"); } }], opt).catch(() => undefined));
    await expectNoLeaks(() => fit(fx, [scaler, late], opt).catch(() => undefined));
    fx.dispose();
  });

  it("on wasm, Adam takes the scale inside its fused kernel: bit-identical to scaling the gradients first, no scaled copies made", async () => {
    await useBackend("wasm");
    const run = (fused: boolean) => {
      const vars = tf.tidy(() => [tf.variable(tf.randomNormal([300, 17], 0, 1, "float32", 1)), tf.variable(tf.randomNormal([17], 0, 1, "float32", 2))]);
      const opt = tf.train.adam(0.01);
      for (let step = 0; step < 3; step++) {
        // seeds from 100: tfjs treats seed 0 as "no seed"
        const grads = Object.fromEntries(vars.map((v, i) => [v.name, tf.randomNormal(v.shape as number[], 0, 1, "float32", 100 + 10 * step + i)]));
        const s = tf.scalar(0.37 + step);
        if (fused) applyGradientsScaled(opt, grads, s);
        else {
          const scaled = scaleTensors(Object.values(grads), s);
          opt.applyGradients(Object.fromEntries(Object.keys(grads).map((n, i) => [n, scaled[i]!])) as tf.NamedTensorMap as never);
          tf.dispose(scaled);
        }
        tf.dispose([...Object.values(grads), s]);
      }
      const out = vars.map((v) => Array.from(v.dataSync()));
      tf.dispose(vars);
      opt.dispose();
      return out;
    };
    const before = tf.memory().numTensors;
    const fused = run(true);
    expect(fused).toEqual(run(false));
    expect(tf.memory().numTensors).toBe(before);
  });
});
