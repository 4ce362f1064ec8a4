/**
 * Per-kernel profile of one training step of the bench models (bench/models.ts) on the wasm
 * backend, the way fitloop's loop runs it: `optimizer.computeGradients` of the loss of
 * `model.apply(x, {training: true})`, then `applyGradients` (Adam), one `await loss.data()`.
 * Prints ms/step without profiling (median), engine ops, kernels and new tensors per step, then kernel time per step under tf.profile (mean over
 * PROFILE_STEPS), by kernel. The last line is one JSON record.
 *
 *   pnpm run bench:profile-step      # env: STEPS (timed, 20), WARMUP (MLP steps before timing, 300; the CNN a 15th), PROFILE_STEPS (5), WASM_KERNELS (below),
 *                                    # THREADS (unset: all cores; `false`: single-threaded, as before threads),
 *                                    # WASM_SIMD (`false`: JS loops instead of fitloop's SIMD kernels),
 *                                    # KERNEL_THREADS / SPLIT_MEMORY_BOUND (`false`: see bench/kernel-choice.ts),
 *                                    # SHAPES (`1`: one row per kernel and input shapes), TOP (rows, 14)
 *
 * WASM_KERNELS: `all` (default), `added` (before fitloop replaced stock kernels) or a list such as
 * `BatchMatMul,Tile` (see bench/kernel-choice.ts).
 */
import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "../packages/core/src/index.js";
import { applyKernelChoice } from "./kernel-choice.js";
import { simdKernelsEnabled } from "../packages/wasm/src/index.js";
import { BATCH, intEnv, median, threadsEnv, wasmThreadCount, type ModelKind, trainingRig } from "./models.js";

const STEPS = intEnv("STEPS", 20);
const PROFILE_STEPS = intEnv("PROFILE_STEPS", 5);
const TOP = intEnv("TOP", 14);
const WARMUP_MLP = intEnv("WARMUP", 300);
const WARMUP_CNN = Math.max(3, Math.round(WARMUP_MLP / 15));
/** SHAPES=1: one row per kernel and input shapes (which call of a kernel is slow). */
const BY_SHAPES = process.env["SHAPES"] === "1";

interface Profile {
  msPerStep: number;
  kernelMsPerStep: number;
  byKernel: [string, number, number][]; // name, ms per step, calls per step
  /** Per step: kernel calls, engine ops (kernels other than Identity/Reshape, which share buffers), new tensors. */
  kernels: number;
  ops: number;
  tensors: number;
}

async function profileModel(kind: ModelKind): Promise<Profile> {
  const rig = trainingRig(kind, BATCH);
  const step = rig.step;
  // V8 keeps optimising the step's JS for the first few hundred MLP steps: time it warm
  for (let i = 0; i < (kind === "mlp" ? WARMUP_MLP : WARMUP_CNN); i++) await step();
  const times: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  const acc = new Map<string, [number, number]>();
  let [kernels, ops, tensors] = [0, 0, 0];
  for (let i = 0; i < PROFILE_STEPS; i++) {
    const info = await tf.profile(() => step());
    kernels += info.kernels.length;
    ops += info.kernels.filter((k) => k.name !== "Identity" && k.name !== "Reshape").length;
    tensors += info.kernels.reduce((n, k) => n + k.outputShapes.length, 0); // tensors the kernels made
    for (const k of info.kernels) {
      const key = BY_SHAPES ? `${k.name} ${JSON.stringify(k.inputShapes)}` : k.name;
      const prev = acc.get(key) ?? [0, 0];
      acc.set(key, [prev[0] + (typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0), prev[1] + 1]);
    }
  }
  rig.dispose();
  const byKernel = [...acc].map(([n, [ms, c]]) => [n, ms / PROFILE_STEPS, c / PROFILE_STEPS] as [string, number, number]).sort((a, b) => b[1] - a[1]);
  const per = (n: number) => Math.round((10 * n) / PROFILE_STEPS) / 10;
  return { msPerStep: median(times), kernelMsPerStep: byKernel.reduce((s, k) => s + k[1], 0), byKernel, kernels: per(kernels), ops: per(ops), tensors: per(tensors) };
}

async function main(): Promise<void> {
  const backend = await useBackend("wasm", threadsEnv());
  const threads = await wasmThreadCount();
  const on = applyKernelChoice();
  console.log(`backend ${backend} (${threads} thread${threads > 1 ? "s" : ""}), tfjs ${tf.version_core}, batch ${BATCH}, Adam; ${STEPS} timed steps (median), ${PROFILE_STEPS} profiled steps (mean)`);
  console.log(`fitloop wasm kernels: Conv2DBackpropFilter (added)${on.length ? `, replaced: ${on.join(", ")}` : ", no stock kernel replaced"}; WebAssembly SIMD kernels ${simdKernelsEnabled() ? "on" : "off (WASM_SIMD=false)"}`);
  const out: Record<string, unknown> = { bench: "profile-step", threads, replaced: on, simd: simdKernelsEnabled() };
  for (const kind of ["mlp", "cnn"] as const) {
    const p = await profileModel(kind);
    console.log(`\n${kind}: ${p.msPerStep.toFixed(1)} ms/step unprofiled (${((1000 * BATCH) / p.msPerStep).toFixed(0)} samples/s); kernel time under tf.profile ${p.kernelMsPerStep.toFixed(1)} ms/step`);
    console.log(`per step: ${p.ops} engine ops (kernels other than Identity/Reshape, which share buffers), ${p.kernels} kernels, ${p.tensors} tensors made by kernels`);
    console.log(`| kernel | ms/step | % | calls/step |`);
    console.log(`|---|---:|---:|---:|`);
    for (const [name, ms, calls] of p.byKernel.slice(0, TOP)) console.log(`| ${name} | ${ms.toFixed(2)} | ${((100 * ms) / p.kernelMsPerStep).toFixed(1)} | ${calls} |`);
    const rest = p.byKernel.slice(TOP).reduce((s, k) => s + k[1], 0);
    if (rest > 0) console.log(`| (${p.byKernel.length - TOP} others) | ${rest.toFixed(2)} | ${((100 * rest) / p.kernelMsPerStep).toFixed(1)} | |`);
    const r2 = (x: number) => Math.round(x * 100) / 100;
    out[`${kind}_ms_per_step`] = r2(p.msPerStep);
    out[`${kind}_samples_per_s`] = Math.round((1000 * BATCH) / p.msPerStep);
    out[`${kind}_ops_per_step`] = p.ops;
    out[`${kind}_kernels_per_step`] = p.kernels;
    out[`${kind}_tensors_per_step`] = p.tensors;
    out[`${kind}_kernels_ms`] = Object.fromEntries(p.byKernel.slice(0, 6).map(([n, ms]) => [n, r2(ms)]));
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
