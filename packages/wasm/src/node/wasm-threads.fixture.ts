/**
 * Child process for wasm-threads.test.ts: initialises the wasm backend through `useBackend` with
 * the thread count in argv[2] (`false` or a number; `pre-init` in argv[3] initialises the wasm
 * backend with plain tfjs first), trains a small conv+BN+pool CNN for 3 Adam steps from fixed
 * weights, and prints one JSON line: thread count, whether fitloop's kernel threads run, warnings,
 * and the final weights (float32, base64).
 * It must then exit on its own (the test fails if pthread workers keep it alive).
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import * as tfwasm from "@tensorflow/tfjs-backend-wasm";
import { values } from "../kernels/values.fixture.js";
import { useTestBackend } from "../testing.fixture.js";
import { kernelThreadPool } from "../kernels/kernel-threads.js";

const arg = process.argv[2] ?? "false";
const threads = arg === "false" ? false : Number(arg);
const warnings: string[] = [];
console.warn = (...m: unknown[]) => void warnings.push(m.map(String).join(" "));


if (process.argv[3] === "pre-init" && !(await tf.setBackend("wasm"))) throw new Error("setBackend(wasm) failed");
await useTestBackend("wasm", { threads });
const model = tfl.sequential();
model.add(tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 16, kernelSize: 3, activation: "relu" }));
model.add(tfl.layers.batchNormalization({ momentum: 0.9 }));
model.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
model.add(tfl.layers.conv2d({ filters: 32, kernelSize: 3, activation: "relu" }));
model.add(tfl.layers.batchNormalization({ momentum: 0.9 }));
model.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
model.add(tfl.layers.flatten());
model.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
model.setWeights(model.getWeights().map((w, i) => tf.tensor(values(w.size, 100 + i, i % 4 === 0 || w.shape.length > 1 ? 0.3 : 0.01).map((v) => (w.shape.length === 1 && w.size > 0 && i % 4 === 2 ? 1 + v : v)), w.shape)));
const xs = tf.tensor(values(32 * 28 * 28, 7, 1), [32, 28, 28, 1]);
const ys = tf.oneHot(tf.tensor1d(Array.from({ length: 32 }, (_, i) => (i * 7) % 10), "int32"), 10);
const optimizer: tf.Optimizer = tf.train.adam(1e-2);
const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
for (let i = 0; i < 3; i++) {
  const { value, grads } = optimizer.computeGradients(() => tf.losses.softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor) as tf.Scalar, vars);
  optimizer.applyGradients(grads);
  tf.dispose([value, grads]);
}
const weights = model.getWeights().flatMap((w) => Array.from(w.dataSync()));
const a = tf.tensor(values(256 * 256, 3, 1), [256, 256]);
const matmul = Array.from(tf.matMul(a, a).dataSync());
const pthread = (tf.engine().registry["wasm"] as unknown as { wasm?: { PThread?: { unusedWorkers: unknown[]; runningWorkers: unknown[] } } }).wasm?.PThread;
console.log(JSON.stringify({ threads: tfwasm.getThreadsCount(), kernelThreads: kernelThreadPool()?.ready() ?? false, idleWorkers: pthread?.unusedWorkers.length ?? 0, runningWorkers: pthread?.runningWorkers.length ?? 0, warnings, weights: Buffer.from(new Float32Array(weights).buffer).toString("base64"), matmul: Buffer.from(new Float32Array(matmul).buffer).toString("base64") }));
