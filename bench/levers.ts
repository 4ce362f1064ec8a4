/**
 * Issue 18's levers side by side in one process: the bench models' training step (bench/models.ts:
 * computeGradients + Adam's applyGradients + one loss read, as fitloop's loop runs it) on the wasm
 * backend with every fitloop kernel on, and with one lever switched off at a time:
 *   all          everything on (what `useBackend('wasm')` gives; FMA where relaxed SIMD validates)
 *   -fma         lever 3 off: the packed GEMM with mul + add (`useWasm({ fma: false })`, the bit-stable path)
 *   -packed      lever 1 off: the round-5 GEMM instead of the packed one (`setPackedGemmEnabled(false)`;
 *                the image-by-image and Winograd convolution kernels, built on the packed GEMM, are off with it)
 *   -fused       lever 2 off: tfjs-layers' own Dense ops and core's sparse cross-entropy as tfjs ops
 *                (`disableFusedDense()`, `disableSparseCrossentropy()`)
 *   -both        levers 1 and 2 off (the state before this issue's GEMM and op-count work)
 *   -images      lever 6 off: convolutions (forward, input and filter gradients) as whole-batch im2col /
 *                col2im + one GEMM instead of image by image in a cache-resident scratch
 *                (`setConvImagesEnabled(false)`; Winograd is gated on the same switch and is off too; the MLP has
 *                no convolution: CNN only)
 *   -winograd    3x3 stride-1 convolutions (forward, input and filter gradients) by the direct image-by-image
 *                kernels instead of Winograd F(2x2, 3x3) (`setWinogradEnabled(false)`; CNN only)
 *   (-fma is left out where relaxed SIMD does not validate: all is then mul + add already)
 * Arms alternate in blocks (order reversed every round) after a warm-up, so machine noise hits them
 * alike; per arm the median ms/step over the blocks, its ratio to `all`, and kernels, engine ops
 * (kernels other than Identity/Reshape, which share buffers) and tensors made by kernels per step (tf.profile).
 *
 *   pnpm run bench:levers      # env: ROUNDS (15), MLP_STEPS (40 per block), CNN_STEPS (6 per block), ONLY (mlp | cnn)
 *
 * Prints a table per model, then one JSON line {"bench":"levers","mlp":{arm:{ms,ratio,kernels,ops,tensors}},"cnn":{...}}.
 */
import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "../packages/core/src/index.js";
import { disableFusedDense, disableSparseCrossentropy, enableFusedDense, enableSparseCrossentropy, fmaActive, setConvImagesEnabled, setFmaEnabled, setPackedGemmEnabled, setWinogradEnabled } from "../packages/wasm/src/index.js";
import { ensureKernelThreads } from "../packages/wasm/src/node/index.js";
import { BATCH, intEnv, median, printTable, threadsEnv, trainingRig, wasmThreadCount, type ModelKind } from "./models.js";

const ROUNDS = intEnv("ROUNDS", 15);
const BLOCK: Record<ModelKind, number> = { mlp: intEnv("MLP_STEPS", 40), cnn: intEnv("CNN_STEPS", 6) };

interface Arm {
  name: string;
  packed: boolean;
  fused: boolean;
  fma: boolean;
  /** The image-by-image convolution kernels (default true). */
  images?: boolean;
  /** The Winograd convolutions (default true). */
  winograd?: boolean;
}
const ARMS: Arm[] = [
  { name: "all", packed: true, fused: true, fma: true },
  { name: "-fma", packed: true, fused: true, fma: false },
  { name: "-packed", packed: false, fused: true, fma: false },
  { name: "-fused", packed: true, fused: false, fma: true },
  { name: "-both", packed: false, fused: false, fma: false },
  { name: "-images", packed: true, fused: true, fma: true, images: false },
  { name: "-winograd", packed: true, fused: true, fma: true, winograd: false },
];

async function apply(arm: Arm): Promise<void> {
  await setFmaEnabled(arm.fma);
  setPackedGemmEnabled(arm.packed);
  setConvImagesEnabled(arm.images !== false);
  setWinogradEnabled(arm.winograd !== false);
  if (arm.fused) {
    enableFusedDense();
    enableSparseCrossentropy();
  } else {
    disableFusedDense();
    disableSparseCrossentropy();
  }
}

interface Counts {
  kernels: number;
  ops: number;
  tensors: number;
}

async function counts(step: () => Promise<number>): Promise<Counts> {
  const info = await tf.profile(async () => {
    await step();
  });
  const ops = info.kernels.filter((k) => k.name !== "Identity" && k.name !== "Reshape").length;
  return { kernels: info.kernels.length, ops, tensors: info.kernels.reduce((n, k) => n + k.outputShapes.length, 0) };
}

async function measure(kind: ModelKind, arms: readonly Arm[]): Promise<Record<string, { ms: number; ratio: number } & Counts>> {
  const rig = trainingRig(kind, BATCH);
  const times = new Map<string, number[]>(arms.map((a) => [a.name, []]));
  const count = new Map<string, Counts>();
  for (const arm of arms) {
    await apply(arm);
    for (let i = 0; i < 2 * BLOCK[kind]; i++) await rig.step(); // warm-up, every arm's code paths compiled
    count.set(arm.name, await counts(rig.step));
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const arm of round % 2 ? [...arms].reverse() : arms) {
      await apply(arm);
      await rig.step();
      const t0 = performance.now();
      for (let i = 0; i < BLOCK[kind]; i++) await rig.step();
      times.get(arm.name)!.push((performance.now() - t0) / BLOCK[kind]);
    }
  }
  await apply(arms[0]!);
  rig.dispose();
  const all = median(times.get("all")!);
  return Object.fromEntries(arms.map((a) => [a.name, { ms: median(times.get(a.name)!), ratio: median(times.get(a.name)!) / all, ...count.get(a.name)! }]));
}

async function main(): Promise<void> {
  await useBackend("wasm", threadsEnv());
  const threads = await wasmThreadCount();
  // FMA's module must be in the kernel threads' pool (useBackend starts it so where FMA validates)
  const fma = await setFmaEnabled(true);
  if (threads > 1) await ensureKernelThreads(threads);
  const withFma = fma.supported === true && fmaActive();
  const arms = withFma ? ARMS : ARMS.filter((a) => a.name !== "-fma").map((a) => ({ ...a, fma: false }));
  if (!withFma) console.log(`-fma left out: relaxed SIMD is not available (${fma.reason ?? "not active"}); every arm runs mul + add`);
  console.log(`wasm, ${threads} thread(s), batch ${BATCH}, Adam; ${ROUNDS} interleaved rounds of blocks (MLP ${BLOCK.mlp}, CNN ${BLOCK.cnn} steps), medians`);
  const out: Record<string, unknown> = { bench: "levers" };
  const only = process.env["ONLY"];
  for (const kind of ["mlp", "cnn"] as const) {
    if (only && only !== kind) continue;
    const kindArms = kind === "mlp" ? arms.filter((a) => a.images !== false && a.winograd !== false) : arms;
    const r = await measure(kind, kindArms);
    console.log(`\n${kind}:`);
    printTable(
      ["arm", "ms/step", "vs all", "kernels/step", "engine ops/step", "tensors/step"],
      kindArms.map((a) => [a.name, r[a.name]!.ms.toFixed(3), `${r[a.name]!.ratio.toFixed(2)}x`, String(r[a.name]!.kernels), String(r[a.name]!.ops), String(r[a.name]!.tensors)]),
    );
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    out[kind] = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, { ...v, ms: r3(v.ms), ratio: r3(v.ratio) }]));
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
