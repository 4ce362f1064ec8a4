/**
 * Per-step time series of one bench model (bench/models.ts) on the wasm backend from the very first
 * step: medians over step ranges (0-3, 3-23, 23-50, 50-100, 100-STEPS), to see warm-up (JIT tiers).
 * One JSON line. TIMEK=1 also times every wasm kernel call (medians of the matmuls' and of all
 * kernels' time per step); TIMEK=2 adds the slowest kernels in steps 3-23 vs 100+; SHAPES=n (with
 * TIMEK) lists the n costliest kernel+input-shape pairs of steps 100+; ALL=1 prints every step's time.
 *
 *   npx tsx --conditions=@fitloop/source bench/step-series.ts   # env: KIND (mlp | cnn), STEPS (300), THREADS, WASM_KERNELS, WASM_SIMD_MATMUL, ...
 */
import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "../packages/core/src/index.js";
import { applyKernelChoice } from "./kernel-choice.js";
import { median, threadsEnv, trainingRig } from "./models.js";

const STEPS = Number(process.env["STEPS"] ?? 300);
async function main() {
  await useBackend("wasm", threadsEnv());
  applyKernelChoice();
  const kind = (process.env["KIND"] ?? "mlp") as "mlp" | "cnn";
  const rig = trainingRig(kind, 64);
  const step = rig.step;
  // TIMEK=1: time every wasm kernel call (the kernels are synchronous): per step, the matmuls' time and all kernels' time.
  let kMat = 0;
  let kAll = 0;
  let stepNo = 0;
  const byName = new Map<string, number>();
  const byNameLate = new Map<string, number>();
  const byShape = new Map<string, number>();
  if (process.env["TIMEK"]) {
    for (const cfg of tf.getKernelsForBackend("wasm")) {
      const inner = cfg.kernelFunc;
      const isMat = cfg.kernelName === "BatchMatMul" || cfg.kernelName === "_FusedMatMul";
      (cfg as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
        const t0 = performance.now();
        try {
          return inner(args);
        } finally {
          const dt = performance.now() - t0;
          kAll += dt;
          if (stepNo >= 3 && stepNo < 23) byName.set(cfg.kernelName, (byName.get(cfg.kernelName) ?? 0) + dt / 20);
          if (process.env["SHAPES"] && stepNo >= 100) {
            const key = `${cfg.kernelName} ${Object.values(args.inputs).map((t) => (t ? `${t.dtype}[${t.shape}]` : "-")).join(" ")}`;
            byShape.set(key, (byShape.get(key) ?? 0) + dt / (STEPS - 100));
          }
          if (stepNo >= 100) byNameLate.set(cfg.kernelName, (byNameLate.get(cfg.kernelName) ?? 0) + dt / (STEPS - 100));
          if (isMat) kMat += dt;
        }
      };
    }
  }
  const mats: number[] = [];
  const kernels: number[] = [];
  const times: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const t0 = performance.now();
    kMat = kAll = 0;
    stepNo = i;
    await step();
    times.push(performance.now() - t0);
    mats.push(kMat);
    kernels.push(kAll);
  }
  const ranges: [number, number][] = [[0, 3], [3, 23], [23, 50], [50, 100], [100, STEPS]];
  const out: Record<string, number> = {};
  for (const [a, b] of ranges) if (b > a && a < STEPS) out[`${a}-${b}`] = +median(times.slice(a, b)).toFixed(2);
  if (process.env["TIMEK"]) {
    for (const [a, b] of ranges) if (b > a && a < STEPS) out[`mat ${a}-${b}`] = +median(mats.slice(a, b)).toFixed(2);
    for (const [a, b] of ranges) if (b > a && a < STEPS) out[`kern ${a}-${b}`] = +median(kernels.slice(a, b)).toFixed(2);
  }
  if (process.env["TIMEK"] === "2")
    for (const [n, t] of [...byName].sort((x, y) => y[1] - x[1]).slice(0, 12)) console.log(`${n}: steps 3-23 ${t.toFixed(2)} ms/step, 100+ ${(byNameLate.get(n) ?? 0).toFixed(2)}`);
  for (const [n, t] of [...byShape].sort((x, y) => y[1] - x[1]).slice(0, Number(process.env["SHAPES"]))) console.log(`${n}: ${(1000 * t).toFixed(0)} us/step`);
  out["first60"] = +times.slice(3, 63).reduce((s, x) => s + x, 0).toFixed(1);
  if (process.env["ALL"]) console.log(times.map((x) => x.toFixed(1)).join(" "));
  console.log(JSON.stringify({ kind, simdMatMul: process.env["WASM_SIMD_MATMUL"] !== "false", flags: process.execArgv.filter((f) => f.startsWith("--") && !f.startsWith("--conditions") && !f.includes("tsx")).join(" "), ...out }));
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
