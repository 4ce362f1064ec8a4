import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { useBackend, type Batch, type Callback } from "@fitloop/core";
import { expectNoLeaks, tinyFixture } from "@fitloop/core/testing";
import { EMA, SWA, batchNormLayers, updateBatchNorm } from "./index.js";
import { expectClose, lerp, recorder, trainer, weightsOf } from "./helpers.fixture.js";

// fitloop's wasm kernels when installed (its own BatchNorm training kernel included), stock tfjs-wasm otherwise
beforeAll(async () => {
  await useBackend("wasm");
  expect(tf.getBackend()).toBe("wasm");
});

describe("on the wasm backend", () => {
  it("EMA: the average is the hand-computed exponential mean; validation swaps leave the raw trajectory as without it", async () => {
    const plain = tinyFixture({ samples: 40, withBatchNormAndDropout: true });
    const plainRec = recorder();
    await trainer(plain, [plainRec], { optimizer: tf.train.adam(0.02) }).fit({ epochs: 3, train: plain.data(8), validation: plain.data(40) });
    const fx = tinyFixture({ samples: 40, withBatchNormAndDropout: true });
    const rec = recorder();
    const ema = new EMA({ decay: 0.8, warmup: true });
    await trainer(fx, [ema, rec], { optimizer: tf.train.adam(0.02) }).fit({ epochs: 3, train: fx.data(8), validation: fx.data(40) });
    expect(rec.steps.map((s) => s.weights)).toEqual(plainRec.steps.map((s) => s.weights));
    let avg: number[][] = [];
    rec.steps.forEach(({ weights }, t) => (avg = t === 0 ? weights : lerp(avg, weights, 1 - Math.min(0.8, 1 - (1 + t) ** -0.75))));
    expectClose(weightsOf(fx.model), avg, 2e-6, "model at the end");
    plain.dispose();
    fx.dispose();
  });

  it("updateBatchNorm: the moving statistics are the average of the batches' mean and biased variance (fitloop's BatchNorm kernel reads the momentum at each call)", async () => {
    expect(tf.getKernel("FitloopBatchNormTrain", "wasm")).toBeDefined(); // fitloop's kernel is the one under test
    const fx = tinyFixture({ samples: 48, withBatchNormAndDropout: true });
    const source = fx.data(16);
    expect(await updateBatchNorm(fx.model, source, { epoch: 2 })).toEqual({ layers: 1, batches: 3, samples: 48 });
    const means: number[][] = [];
    const vars: number[][] = [];
    for (const b of source.batches({ epoch: 2, batchIndex: 0 }) as Iterable<Batch>) {
      const { mean, variance } = tf.tidy(() => tf.moments(fx.model.layers[0]!.apply(b.xs) as tf.Tensor, 0));
      means.push(Array.from(mean.dataSync()));
      vars.push(Array.from(variance.dataSync()));
      tf.dispose([mean, variance, b.xs, b.ys]);
    }
    const avg = (xs: number[][]) => xs[0]!.map((_, j) => xs.reduce((s, x) => s + x[j]!, 0) / xs.length);
    const [m, v] = batchNormLayers(fx.model)[0]!.nonTrainableWeights.map((w) => Array.from(w.read().dataSync()));
    expectClose([m!, v!], [avg(means), avg(vars)], 1e-5, "statistics");
    fx.dispose();
  });

  it("no tensor growth: success, a throw in validation, SWA with BatchNorm passes", async () => {
    const fx = tinyFixture({ samples: 16, withBatchNormAndDropout: true });
    const optimizer = tf.train.adam(0.01);
    const boom: Callback = { name: "Boom", afterValBatch: (ctx) => void (ctx.state.epoch === 1 && fail()) };
    const run = (extra: Callback[]) => trainer(fx, [new SWA({ start: 0, every: { steps: 1 }, updateBatchNorm: "validation" }), new EMA({ decay: 0.9, name: "EMA" }), ...extra], { optimizer }).fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) }).catch(() => undefined);
    await expectNoLeaks(() => run([]), { warmup: 1, iterations: 2 });
    await expectNoLeaks(() => run([boom]), { warmup: 1, iterations: 2 });
    fx.dispose();
  });
});

function fail(): never {
  throw new Error("validation broke");
}
