/**
 * fitloop's WebAssembly SIMD kernels against their JS loops (and the stock ReLU gradient), per call,
 * on the CNN bench model's shapes (batch 64): the fused BatchNorm kernels, MaxPoolGrad 2x2/2 and the
 * ReLU gradient. Medians of REPS calls, JS and SIMD alternating twice.
 *
 *   pnpm run bench:simd-kernels      # env: REPS (15), THREADS (unset: all cores; `false`: single-threaded)
 */
import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "../packages/core/src/index.js";
import { BN_TRAIN, BN_TRAIN_GRAD_SUMS, BN_TRAIN_GRAD_X, RELU_GRAD, setSimdKernelsEnabled } from "../packages/wasm/src/index.js";
import { intEnv, median, threadsEnv, wasmThreadCount } from "./models.js";

const REPS = intEnv("REPS", 15);

function time(f: () => tf.Tensor | tf.Tensor[]): number {
  const t: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    const out = f();
    t.push(performance.now() - t0);
    tf.dispose(out);
  }
  return median(t);
}

async function main(): Promise<void> {
  await useBackend("wasm", threadsEnv());
  const threads = await wasmThreadCount();
  console.log(`tfjs ${tf.version_core} wasm (${threads} thread${threads > 1 ? "s" : ""}); ms per call, median of ${REPS}`);
  console.log("| kernel | shape | JS loop | SIMD | JS loop | SIMD |");
  console.log("|---|---|---:|---:|---:|---:|");
  const run = (op: string, shape: number[], f: () => tf.Tensor | tf.Tensor[]): void => {
    const cells = [false, true, false, true].map((on) => {
      setSimdKernelsEnabled(on);
      return time(f).toFixed(2);
    });
    setSimdKernelsEnabled(true);
    console.log(`| ${op} | [${shape.join(",")}] | ${cells.join(" | ")} |`);
  };
  const shapes: [number, number, number, number][] = [
    [64, 26, 26, 32],
    [64, 11, 11, 64],
  ];
  for (const shape of shapes) {
    const c = shape[3]!;
    const x = tf.randomNormal(shape, 0, 1, "float32", 1) as tf.Tensor4D;
    const gamma = tf.randomNormal([c], 1, 0.1, "float32", 2);
    const beta = tf.randomNormal([c], 0, 0.1, "float32", 3);
    const dy = tf.randomNormal(shape, 0, 1, "float32", 4);
    const eps = { epsilon: 1e-3 };
    const [, mean, variance] = tf.engine().runKernel(BN_TRAIN, { x, gamma, beta }, eps) as unknown as tf.Tensor[];
    const [dbeta, dgamma] = tf.engine().runKernel(BN_TRAIN_GRAD_SUMS, { dy, x, mean: mean!, variance: variance! }, eps) as unknown as tf.Tensor[];
    run(BN_TRAIN, shape, () => tf.engine().runKernel(BN_TRAIN, { x, gamma, beta }, eps) as unknown as tf.Tensor[]);
    run(BN_TRAIN_GRAD_SUMS, shape, () => tf.engine().runKernel(BN_TRAIN_GRAD_SUMS, { dy, x, mean: mean!, variance: variance! }, eps) as unknown as tf.Tensor[]);
    run(BN_TRAIN_GRAD_X, shape, () => tf.engine().runKernel(BN_TRAIN_GRAD_X, { dy, x, mean: mean!, variance: variance!, gamma, dbeta: dbeta!, dgamma: dgamma! }, eps) as unknown as tf.Tensor);
    const pooled = tf.maxPool(x, 2, 2, "valid");
    const dp = tf.randomNormal(pooled.shape, 0, 1, "float32", 5);
    run("MaxPoolGrad 2x2/2", shape, () => tf.engine().runKernel("MaxPoolGrad", { dy: dp, input: x, output: pooled }, { filterSize: 2, strides: 2, pad: "valid" }) as unknown as tf.Tensor);
    run(RELU_GRAD, shape, () => tf.engine().runKernel(RELU_GRAD, { dy, x }, {}) as unknown as tf.Tensor);
    const stock = time(() => tf.tidy(() => tf.mul(dy, tf.cast(tf.step(x), "float32"))));
    console.log(`| stock ReLU gradient (Step + Cast + Multiply) | [${shape.join(",")}] | ${stock.toFixed(2)} | | | |`);
    tf.dispose([x, gamma, beta, dy, mean!, variance!, dbeta!, dgamma!, pooled, dp]);
  }
}

await main();
