import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend, mixSeed } from "../packages/core/src/index.js";
import { DataLoader, gaussianNoise, randomShift } from "../packages/datasets/src/index.js";
import { loadEmbeddedMnist } from "../packages/datasets/src/node/index.js";
import { addNormal, noiseWorkspace } from "../packages/datasets/src/random.js";
import { gatherBatch, toTensors } from "../packages/datasets/src/batch.js";
import { setNormalSimdEnabled } from "../packages/datasets/src/simd/normal.js";

const REPS = Number(process.env.REPS ?? 3000);
function time(name: string, f: (i: number) => void): number {
  for (let i = 0; i < 300; i++) f(i);
  const samples: number[] = [];
  for (let rep = 0; rep < 7; rep++) {
    const t = performance.now();
    for (let i = 0; i < REPS; i++) f(i);
    samples.push(((performance.now() - t) / REPS) * 1000);
  }
  samples.sort((a, b) => a - b);
  console.log(`${name.padEnd(40)} median ${samples[3]!.toFixed(1)} µs  min ${samples[0]!.toFixed(1)} µs`);
  return samples[3]!;
}
await useBackend("wasm");
const train = loadEmbeddedMnist();
const shift = randomShift({ maxShift: 2 });
const noise = gaussianNoise({ std: 0.1, clip: [0, 1] });
const loader = new DataLoader(train, { batchSize: 64, seed: 1, flatten: true, dropLast: true, transforms: [shift, noise] });
const plain = new DataLoader(train, { batchSize: 64, seed: 1, flatten: true, dropLast: true });
const idx = loader.batchIndices(0, 0);
const n = 64 * 784;
const ws = noiseWorkspace(n)!;
const ctx = (i: number) => ({ rng: new Rng(mixSeed(1, 0, i, 0xa06)), epoch: 0, batchIndex: i, numClasses: 10 });
const nb = loader.batchesPerEpoch;
time("rng ctx", (i) => void ctx(i));
time("gather plain (into ws)", () => void gatherBatch(train, idx, ws));
time("gather+shift (into ws)", (i) => void shift.gatherApply!(train, idx, ctx(i), ws));
const base = ws.slice();
time("noise in place (ws) [simd]", (i) => void addNormal(new Rng(i), ws, 0.1, 0, 1));
time("noise no clip (ws) [simd]", (i) => void addNormal(new Rng(i), ws, 0.1));
const arr = base.slice();
time("noise on plain array [simd]", (i) => void addNormal(new Rng(i), arr, 0.1, 0, 1));
setNormalSimdEnabled(false);
time("noise on plain array [js]", (i) => void addNormal(new Rng(i), arr, 0.1, 0, 1));
setNormalSimdEnabled(true);
time("toTensors + dispose", () => { const b = toTensors({ x: ws, y: new Int32Array(64), size: 64, sampleShape: [784], labelShape: [], indices: idx }, true); tf.dispose([b.xs, b.ys]); });
time("loader.batch plain", (i) => { const b = plain.batch(0, i % nb); tf.dispose([b.xs, b.ys]); });
time("loader.batch shift+noise", (i) => { const b = loader.batch(0, i % nb); tf.dispose([b.xs, b.ys]); });
time("loader.hostBatch shift+noise", (i) => void loader.hostBatch(0, i % nb));
import { normalKernel, seedLanes, setStd, NORMAL_CHUNK } from "../packages/datasets/src/simd/normal.js";
{
  const k = normalKernel();
  setStd(k, 0.1);
  const ptr = ws.byteOffset;
  let entries = 0;
  time("kernel.run only (ws, 12x4096+)", (i) => {
    seedLanes(k, () => i * 7 + 1);
    entries = 0;
    for (let from = 0; from < n; from += NORMAL_CHUNK) entries += k.run(ptr + 4 * from, Math.min(NORMAL_CHUNK, n - from), 0, 1);
  });
  console.log("entries per batch", entries, "of", n / 4);
  time("kernel.run+finish", (i) => {
    seedLanes(k, () => i * 7 + 1);
    for (let from = 0; from < n; from += NORMAL_CHUNK) { const len = Math.min(NORMAL_CHUNK, n - from); const e = k.run(ptr + 4 * from, len, 0, 1); if (e) k.finish(ptr + 4 * from, e, len, 0.1, 0, 1); }
  });
}
time("tf.tensor+dispose only", () => { const t = tf.tensor(ws, [64, 784], "float32"); t.dispose(); });
time("batchIndices", (i) => void loader.batchIndices(0, i % nb));
