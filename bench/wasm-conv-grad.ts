/**
 * Training speed of a small CNN on the wasm backend with fitloop's Conv2DBackpropFilter kernel
 * versus the stock cpu backend. Interleaved rounds, medians; the last line is one JSON record.
 *
 *   pnpm run bench:wasm-conv-grad            # env: WASM_STEPS (per round, 8), CPU_STEPS (1), ROUNDS (3)
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { useBackend } from "../packages/core/src/backend.js";
import { CLASSES, buildModel } from "./models.js";

type Backend = "wasm" | "cpu";
const BATCH = 64;

const intEnv = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
};
const ROUNDS = intEnv("ROUNDS", 3);
// stock cpu needs tens of seconds per step (its Conv2DBackpropFilter is a scalar 7-deep loop)
const STEPS: Record<Backend, number> = { wasm: intEnv("WASM_STEPS", 8), cpu: intEnv("CPU_STEPS", 1) };
const WARMUP: Record<Backend, number> = { wasm: 3, cpu: 1 };

interface Rig {
  step(): Promise<number>;
  dispose(): void;
}

/** Model, data and optimizer created on `backend`, so each rig's tensors stay on its backend. */
async function rig(backend: Backend): Promise<Rig> {
  await activate(backend);
  const model = buildModel("cnn");
  const x = tf.randomUniform([BATCH, 28, 28, 1], 0, 1, "float32", 1);
  const y = tf.oneHot(tf.randomUniform([BATCH], 0, CLASSES, "int32", 2) as tf.Tensor1D, CLASSES);
  const opt = tf.train.adam(1e-3);
  const lossFn = (): tf.Scalar => tf.mean(tfl.metrics.categoricalCrossentropy(y, model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar;
  return {
    async step() {
      const loss = opt.minimize(lossFn, true);
      if (!loss) throw new Error("minimize returned no loss");
      const [v] = await loss.data();
      loss.dispose();
      return v ?? NaN;
    },
    dispose() {
      model.dispose();
      opt.dispose();
      tf.dispose([x, y]);
    },
  };
}

async function activate(backend: Backend): Promise<void> {
  // useBackend('wasm') registers fitloop's wasm kernels before initialising the backend
  if ((await useBackend(backend)) !== backend) throw new Error(`could not activate ${backend}`);
}

async function timeSteps(backend: Backend, r: Rig, steps: number): Promise<number> {
  await activate(backend);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await r.step();
  return (steps * BATCH) / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function profileWasmStep(r: Rig): Promise<void> {
  await activate("wasm");
  const t0 = performance.now();
  await r.step();
  const plain = performance.now() - t0;
  const info = await tf.profile(() => r.step());
  const byKernel = new Map<string, number>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + ms);
  }
  const total = [...byKernel.values()].reduce((a, b) => a + b, 0);
  console.log(`\nwasm: one training step (batch ${BATCH}) takes ${plain.toFixed(1)} ms unprofiled; kernel time under tf.profile ${total.toFixed(1)} ms:`);
  for (const [name, ms] of [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    console.log(`  ${name.padEnd(24)} ${ms.toFixed(1).padStart(8)} ms ${((100 * ms) / total).toFixed(1).padStart(5)} %`);
  }
}

async function main(): Promise<void> {
  console.log(`small CNN (conv32+BN+pool, conv64+BN+pool, dense128, dense10), batch ${BATCH}, adam; ${ROUNDS} interleaved rounds of ${STEPS.wasm} wasm / ${STEPS.cpu} cpu steps`);
  const rigs: Record<Backend, Rig> = { wasm: await rig("wasm"), cpu: await rig("cpu") };
  for (const b of ["wasm", "cpu"] as const) {
    await activate(b);
    for (let i = 0; i < WARMUP[b]; i++) await rigs[b].step();
  }
  const rates: Record<Backend, number[]> = { wasm: [], cpu: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const b of ["wasm", "cpu"] as const) rates[b].push(await timeSteps(b, rigs[b], STEPS[b]));
    console.log(`  round ${round + 1}: wasm ${rates.wasm.at(-1)!.toFixed(1)}, cpu ${rates.cpu.at(-1)!.toFixed(2)} samples/s`);
  }
  await profileWasmStep(rigs.wasm);
  const wasm = median(rates.wasm);
  const cpu = median(rates.cpu);
  console.log("\n| backend | samples/s (median) | ms/step |");
  console.log("|---|---:|---:|");
  console.log(`| wasm + fitloop Conv2DBackpropFilter | ${wasm.toFixed(1)} | ${((1000 * BATCH) / wasm).toFixed(0)} |`);
  console.log(`| cpu (stock tfjs kernels) | ${cpu.toFixed(2)} | ${((1000 * BATCH) / cpu).toFixed(0)} |`);
  for (const b of ["wasm", "cpu"] as const) {
    await activate(b);
    rigs[b].dispose();
  }
  const round2 = (v: number): number => Math.round(v * 100) / 100;
  console.log(JSON.stringify({ bench: "wasm-conv-grad", wasm_samples_per_s: round2(wasm), cpu_samples_per_s: round2(cpu), ratio: round2(wasm / cpu) }));
}

await main();
