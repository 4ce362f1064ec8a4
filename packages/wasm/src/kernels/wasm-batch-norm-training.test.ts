import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-wasm";
import { BN_MOVING_AVERAGES } from "./wasm-batch-norm-moving.js";
import { BN_TRAIN, isFusedBatchNormEnabled, registerWasmKernels } from "./index.js";
import { batchNormSimd, setSimdKernelsEnabled, type EmscriptenWasm } from "./simd/index.js";
import { values, size } from "./values.fixture.js";
import { expectClose } from "./expect-close.fixture.js";
import { expectNoLeaks, useTestBackend } from "../testing.fixture.js";

const rand = (shape: number[], seed: number, scale = 1, shift = 0) => tf.tensor(values(size(shape), seed).map((v) => v * scale + shift), shape);

async function use(name: "cpu" | "wasm"): Promise<void> {
  if (name === "wasm") await useTestBackend("wasm");
  else if (!(await tf.setBackend(name))) throw new Error(`setBackend(${name}) failed`);
  await tf.ready();
}


interface Case {
  shape: number[];
  scale: number;
  shift: number;
  epsilon?: number;
  /** Error scale floor (the one-row case: dx is 0 up to float noise ~1e-6 on cpu). */
  floor?: number;
}

/**
 * One training call of a BatchNormalization layer with fixed gamma/beta/moving stats, a loss
 * sum(y * w), and its gradients with respect to x, gamma and beta; plus the moving stats after.
 */
function bnStep(c: Case, i: number): Float32Array[] {
  return tf.tidy(() => {
    const ch = c.shape[c.shape.length - 1]!;
    const layer = tfl.layers.batchNormalization({ momentum: 0.9, ...(c.epsilon ? { epsilon: c.epsilon } : {}) });
    layer.build(c.shape);
    layer.setWeights([rand([ch], 10 + i, 0.5, 1), rand([ch], 20 + i, 0.5), rand([ch], 30 + i), rand([ch], 40 + i, 0.2, 1)]);
    const x = tf.variable(rand(c.shape, 50 + i, c.scale, c.shift));
    const w = rand(c.shape, 60 + i);
    const y = layer.apply(x, { training: true }) as tf.Tensor;
    const after = layer.getWeights().slice(2).map((t) => t.dataSync().slice() as Float32Array);
    const vars = [x, ...layer.trainableWeights.map((v) => v.read() as tf.Variable)];
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, w)), vars);
    const out = [y.dataSync().slice() as Float32Array, ...after, ...vars.map((v) => grads[v.name]!.dataSync().slice() as Float32Array)];
    x.dispose();
    for (const v of layer.weights) v.dispose();
    return out;
  });
}

const CASES: Case[] = [
  { shape: [6, 4], scale: 1, shift: 0 },
  { shape: [5, 3], scale: 2, shift: 0.5 },
  { shape: [5, 3, 7], scale: 1, shift: 0 },
  { shape: [4, 5, 5, 3], scale: 1, shift: 0 },
  { shape: [2, 3, 3, 16], scale: 3, shift: -1, epsilon: 1e-5 },
  { shape: [3, 7, 5, 32], scale: 1, shift: 0 }, // rows not a multiple of 4: the unrolled loops' tail
  { shape: [4, 4, 4, 8], scale: 0.01, shift: 50 }, // |mean| >> std: the shifted sums keep the variance
  { shape: [1, 1, 1, 5], scale: 1, shift: 0, floor: 1 }, // one row: variance 0, dx 0
  // channel counts that are multiples of 4 take the SIMD kernels (the ones above with C = 4, 8, 16, 32 too)
  { shape: [7, 12], scale: 1, shift: 0 }, // 7 rows: the SIMD statistics' 4-row tail
  { shape: [2, 5, 5, 64], scale: 2, shift: 1 },
  { shape: [3, 3, 3, 24], scale: 0.01, shift: -30 }, // |mean| >> std on the SIMD path
  { shape: [1, 1, 1, 8], scale: 1, shift: 0, floor: 1 }, // one row on the SIMD path
];
const NAMES = ["y", "moving mean", "moving variance", "dx", "dgamma", "dbeta"];

describe("fused BatchNormalization training on wasm", () => {
  beforeAll(async () => {
    await use("wasm");
    registerWasmKernels();
  });
  afterAll(async () => {
    await use("cpu");
  });

  it("is enabled by useTestBackend('wasm'), runs on wasm only, and the opt-out restores tfjs-layers' own path", async () => {
    expect(isFusedBatchNormEnabled()).toBe(true);
    const kernelsOf = async (): Promise<string[]> => {
      const info = await tf.profile(() => bnStep(CASES[3]!, 0));
      return info.kernels.map((k) => k.name);
    };
    expect(await kernelsOf()).toContain(BN_TRAIN);
    await use("cpu");
    expect(await kernelsOf()).not.toContain(BN_TRAIN);
    await useTestBackend("wasm", { wasmKernels: false });
    expect(isFusedBatchNormEnabled()).toBe(false);
    expect(await kernelsOf()).not.toContain(BN_TRAIN);
    await useTestBackend("wasm");
    expect(isFusedBatchNormEnabled()).toBe(true);
    expect(await kernelsOf()).toContain(BN_TRAIN);
  });

  it.each([
    ["WebAssembly SIMD where C % 4 == 0", true],
    ["the JS loops (SIMD off)", false],
  ])("matches tfjs-layers on cpu with %s: output, moving statistics, and gradients of x, gamma, beta over a grid", async (_, simd) => {
    await use("cpu");
    const expected = CASES.map((c, i) => bnStep(c, i));
    await use("wasm");
    setSimdKernelsEnabled(simd);
    try {
      expect(batchNormSimd((tf.backend() as unknown as { wasm: EmscriptenWasm }).wasm) !== undefined).toBe(simd);
      CASES.forEach((c, i) => {
        const got = bnStep(c, i);
        expect(got.length).toBe(expected[i]!.length);
        got.forEach((g, j) => expectClose(g, expected[i]![j]!, `${JSON.stringify(c)} ${NAMES[j]}`, 2e-5, c.floor));
      });
    } finally {
      setSimdKernelsEnabled(true);
    }
  });

  it.each([
    [6, "JS"],
    [8, "SIMD"],
  ])("passes gradients that reach the mean and variance outputs (the kernel against moments + batchNorm on cpu), C=%i (%s)", async (ch) => {
    const shape = [3, 4, 4, ch];
    const run = (fused: boolean) =>
      tf.tidy(() => {
        const x = rand(shape, 1, 2, 0.3);
        const gamma = rand([ch], 2, 0.5, 1);
        const beta = rand([ch], 3);
        const w = rand(shape, 4);
        const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Scalar => {
          let y: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor;
          if (fused) [y, mean, variance] = tf.engine().runKernel(BN_TRAIN, { x: xx, gamma: g, beta: b }, { epsilon: 1e-3 }) as unknown as tf.Tensor[] as [tf.Tensor, tf.Tensor, tf.Tensor];
          else {
            const m = tf.moments(xx, [0, 1, 2]);
            [mean, variance] = [m.mean, m.variance];
            y = tf.batchNorm(xx, mean, variance, b, g, 1e-3);
          }
          return tf.add(tf.sum(tf.mul(y, w)), tf.add(tf.sum(tf.mul(mean, rand([ch], 5))), tf.sum(tf.mul(variance, rand([ch], 6))))) as tf.Scalar;
        };
        return tf.grads(f)([x, gamma, beta]).map((g) => g.dataSync().slice() as Float32Array);
      });
    await use("cpu");
    const expected = run(false);
    await use("wasm");
    run(true).forEach((g, i) => expectClose(g, expected[i]!, `d${["x", "gamma", "beta"][i]}`, 2e-5));
  });

  it.each([0.9, 0.99, 0.1, 0.123456789])("the moving averages in one kernel (FitloopBatchNormMovingAverages) equal tfjs-layers' ops bit for bit, momentum %f", async (momentum) => {
    await use("wasm");
    const c = 37;
    const [mm, mv, m, v] = [rand([c], 11), rand([c], 12, 1, 0.5), rand([c], 13, 2), rand([c], 14, 3, 0.1)];
    const [gotMean, gotVar] = tf.engine().runKernel(BN_MOVING_AVERAGES, { movingMean: mm, movingVariance: mv, mean: m, variance: v }, { momentum }) as unknown as tf.Tensor[];
    const ops = (orig: tf.Tensor, value: tf.Tensor) => tf.sub(orig, tf.mul(tf.sub(orig, value), 1 - momentum));
    for (const backend of ["wasm", "cpu"] as const) {
      await use(backend);
      const [wantMean, wantVar] = [ops(mm, m), ops(mv, v)];
      expect(Array.from(gotMean!.dataSync()), `moving mean vs ${backend} ops`).toEqual(Array.from(wantMean.dataSync()));
      expect(Array.from(gotVar!.dataSync()), `moving variance vs ${backend} ops`).toEqual(Array.from(wantVar.dataSync()));
      tf.dispose([wantMean, wantVar]);
    }
    await use("wasm");
    tf.dispose([mm, mv, m, v, gotMean!, gotVar!]);
  });

  it("leaks neither tensors, wasm buffers nor heap while training", async () => {
    await use("wasm");
    const model = tfl.sequential();
    model.add(tfl.layers.conv2d({ inputShape: [8, 8, 2], filters: 4, kernelSize: 3, activation: "relu" }));
    model.add(tfl.layers.batchNormalization({ momentum: 0.9 }));
    model.add(tfl.layers.flatten());
    model.add(tfl.layers.dense({ units: 3 }));
    const x = rand([5, 8, 8, 2], 7);
    const opt = tf.train.adam(0.01);
    const step = () => {
      const loss = opt.minimize(() => tf.mean(tf.square(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar, true);
      loss!.dataSync();
      loss!.dispose();
    };
    step();
    const backend = tf.engine().backend as unknown as { numDataIds(): number; wasm: { HEAPU8: Uint8Array } };
    const [ids, heap] = [backend.numDataIds(), backend.wasm.HEAPU8.length];
    await expectNoLeaks(step, { warmup: 1, iterations: 20 });
    expect(backend.numDataIds()).toBe(ids);
    expect(backend.wasm.HEAPU8.length).toBe(heap);
    model.dispose();
    opt.dispose();
    x.dispose();
  });
});
