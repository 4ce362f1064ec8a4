/**
 * Step time of one bench model (bench/models.ts) on the wasm backend, many steps, for interleaved
 * comparisons of thread settings: median, mean, p10/p90 of STEPS timed steps after 10 warm-up steps,
 * and the process's CPU time per wall time (2 threads that spin show ~1.8). One JSON line.
 *
 *   pnpm run bench:step-time       # env: KIND (mlp | cnn), STEPS (200), THREADS, WASM_KERNELS, THREAD_MIN_MFLOPS, DIST=1 (deciles)
 */
import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "../packages/core/src/index.js";
import { applyKernelChoice } from "./kernel-choice.js";
import { median, threadsEnv, wasmThreadCount, trainingRig } from "./models.js";

const STEPS = Number(process.env["STEPS"] ?? 200);
async function main() {
  await useBackend("wasm", threadsEnv());
  const threads = await wasmThreadCount();
  const on = applyKernelChoice();
  const kind = (process.env["KIND"] ?? "mlp") as "mlp" | "cnn";
  const rig = trainingRig(kind, 64);
  const step = rig.step;
  for (let i = 0; i < 10; i++) await step();
  const times: number[] = [];
  const c0 = process.cpuUsage(); const w0 = performance.now();
  for (let i = 0; i < STEPS; i++) { const t0 = performance.now(); await step(); times.push(performance.now() - t0); }
  const cu = process.cpuUsage(c0); const wall = performance.now() - w0;
  const s = [...times].sort((a, b) => a - b);
  if (process.env["DIST"]) console.log(s.filter((_, i) => i % 10 === 0).map((x) => x.toFixed(1)).join(" "));
  console.log(JSON.stringify({ gate: on.filter((k) => k.startsWith("Thread")).join(""), threads, kind, median: +median(times).toFixed(3), mean: +(times.reduce((a,b)=>a+b,0)/times.length).toFixed(3), p10: +s[Math.floor(s.length * 0.1)]!.toFixed(3), p90: +s[Math.floor(s.length * 0.9)]!.toFixed(3), tensors: tf.memory().numTensors, cpuPerWall: +((cu.user + cu.system) / 1000 / wall).toFixed(2) }));
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
