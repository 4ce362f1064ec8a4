/**
 * A training step with the packed GEMM on and off (`setPackedGemmEnabled`), alternating blocks of
 * steps in one process (docs/journal.md, round 9): the MLP 784-256-128-10, or with KIND=cnn the
 * bench's CNN (conv 3x3x32 relu, BN, pool 2, conv 3x3x64 relu, BN, pool 2, dense 128 relu, dense 10);
 * batch 64, Adam, tfjs-layers.
 *
 *   [KIND=cnn] npx tsx --conditions=@fitloop/source packages/wasm/src/kernels/gemm-step.fixture.ts
 *
 * BLOCKS (default 20) blocks of STEPS (default 10, CNN 3) steps per setting after 30 (CNN 10) warm-up steps; prints
 * the median ms/step of each setting and the median of the per-pair ratios.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { useWasm } from "../use-wasm.js";
import { setPackedGemmEnabled } from "./wasm-gemm-split.js";

const median = (xs: number[]): number => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const blocks = Number(process.env.BLOCKS ?? 20);
  const steps = Number(process.env.STEPS ?? (process.env.KIND === "cnn" ? 3 : 10));
  await useWasm({ logger: { warn: (m) => console.error(`useWasm: ${m}`) } });
  const cnn = process.env.KIND === "cnn";
  const model = tfl.sequential({
    layers: cnn
      ? [
          tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: "relu" }),
          tfl.layers.batchNormalization(),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.conv2d({ filters: 64, kernelSize: 3, activation: "relu" }),
          tfl.layers.batchNormalization(),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.flatten(),
          tfl.layers.dense({ units: 128, activation: "relu" }),
          tfl.layers.dense({ units: 10, activation: "softmax" }),
        ]
      : [tfl.layers.dense({ inputShape: [784], units: 256, activation: "relu" }), tfl.layers.dense({ units: 128, activation: "relu" }), tfl.layers.dense({ units: 10, activation: "softmax" })],
  });
  const optimizer = tf.train.adam(1e-3);
  const x = tf.randomUniform(cnn ? [64, 28, 28, 1] : [64, 784]);
  const y = tf.oneHot(tf.randomUniform([64], 0, 10, "int32"), 10);
  const step = async (): Promise<void> => {
    const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor), true);
    await loss!.data();
    loss!.dispose();
  };
  for (let i = 0; i < (cnn ? 10 : 30); i++) await step();
  const ms: Record<"on" | "off", number[]> = { on: [], off: [] };
  const ratios: number[] = [];
  for (let b = 0; b < blocks; b++) {
    const pair: Record<string, number> = {};
    for (const setting of b % 2 ? (["off", "on"] as const) : (["on", "off"] as const)) {
      setPackedGemmEnabled(setting === "on");
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) await step();
      pair[setting] = (performance.now() - t0) / steps;
      ms[setting].push(pair[setting]!);
    }
    ratios.push(pair.off! / pair.on!);
  }
  setPackedGemmEnabled(true);
  console.log(
    `${cnn ? "CNN" : "MLP"} step, ms (median of ${blocks} blocks of ${steps} steps): packed GEMM ${median(ms.on).toFixed(3)}, round-5 GEMM ${median(ms.off).toFixed(3)}; off/on ${median(ratios).toFixed(3)} (median of pairs)`,
  );
}

await main();
process.exit(0);
