/**
 * Child process for kernel-threads.test.ts: `useTestBackend('wasm')` (threaded build, kernel threads on
 * unless argv[2] is `off`), one fused-BatchNorm + ReLU forward/backward on a tensor large enough to
 * be split, prints one JSON line (pool threads, how many calls the pool ran, a checksum), then must
 * exit on its own (the test fails if the unref'd worker keeps it alive).
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { kernelThreadPool } from "../kernels/kernel-threads.js";
import { useTestBackend } from "../testing.fixture.js";

const off = process.argv[2] === "off";
await useTestBackend("wasm", off ? { kernelThreads: false } : {});
// the split kernels here are memory-bound ones (split by default): with the opt-out they still must not split
const pool = kernelThreadPool();
let runs = 0;
if (pool) {
  const run = pool.run.bind(pool);
  pool.run = (calls) => {
    runs++;
    run(calls);
  };
}
const layer = tfl.layers.batchNormalization({ axis: -1 });
const x = tf.randomNormal([16, 26, 26, 32], 0, 1, "float32", 1);
const g = tf.grad((t: tf.Tensor) => tf.sum(tf.relu(layer.apply(t, { training: true }) as tf.Tensor)))(x);
console.log(JSON.stringify({ threads: pool?.threads ?? 1, runs, sum: tf.sum(tf.abs(g)).dataSync()[0] }));
