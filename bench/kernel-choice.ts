/**
 * Which of fitloop's wasm kernel replacements a bench runs with, from the WASM_KERNELS env variable:
 * `all` (default: what useBackend('wasm') registers); `added` (only the kernels tfjs-wasm lacks, i.e.
 * stock tfjs-wasm plus Conv2DBackpropFilter: the state before fitloop replaced stock kernels); or a
 * comma-separated list of replaced kernels to enable, e.g. `BatchMatMul,Tile` (`BatchNorm` = the fused
 * BatchNormalization training kernels, `ReluGrad` = the one-kernel ReLU gradient, `Adam` = the fused Adam update, `ThreadGate` = threads only
 * for large matmuls/convolutions, with Conv2D, FusedConv2D, _FusedMatMul and the depthwise convolutions). Call after useBackend.
 * `ConvBiasRelu` = tfjs-layers' Conv2D with bias + ReLU in training as one fused forward kernel.
 * `Dense` = tfjs-layers' Dense as one fused forward and one fused backward kernel (`wasm-dense.ts`).
 * THREAD_MIN_MFLOPS sets the gate's threshold (default 100).
 * KERNEL_THREADS=false runs fitloop's own kernels on the calling thread only (no kernel worker
 * threads); SPLIT_MEMORY_BOUND=false splits only compute-bound work (GEMMs, im2col, col2im) over them.
 * WASM_SIMD=false runs the JS loops instead of fitloop's WebAssembly SIMD kernels (BatchNorm,
 * MaxPoolGrad, ReluGrad: the state before they existed; also turns off the SIMD matmul).
 * WASM_SIMD_MATMUL=false keeps XNNPACK for every BatchMatMul/_FusedMatMul (fitloop's SIMD GEMM,
 * `SimdMatMul` in the list, off: the state before round 5).
 * Returns the names of the replaced kernels in effect.
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  enableFusedAdam,
  enableFusedBatchNorm,
  isFusedAdamEnabled,
  enableReluGrad,
  isFusedBatchNormEnabled,
  isReluGradEnabled,
  replacedWasmKernelConfigs,
  replaceWasmKernel,
  restoreWasmKernels,
  setSimdKernelsEnabled,
  setSimdMatMulEnabled,
  simdKernelsEnabled,
  simdMatMulEnabled,
  setWasmThreadGate,
  wasmGatedKernelConfigs,
  wasmThreadGateEnabled,
  wasmThreadMinFlops,
  setKernelThreadsEnabled,
  setMemoryBoundSplit,
  enableConvBiasRelu,
  isConvBiasReluEnabled,
  enableFusedDense,
  isFusedDenseEnabled,
  kernelThreadPool,
  kernelThreadsEnabled,
  memoryBoundSplitEnabled,
} from "../packages/wasm/src/index.js";

export function applyKernelChoice(choice = process.env["WASM_KERNELS"] ?? "all"): string[] {
  setSimdKernelsEnabled(process.env["WASM_SIMD"] !== "false");
  setSimdMatMulEnabled(process.env["WASM_SIMD_MATMUL"] !== "false");
  if (process.env["KERNEL_THREADS"] === "false") setKernelThreadsEnabled(false); // fitloop's own kernels on the calling thread only
  const split = process.env["SPLIT_MEMORY_BOUND"];
  if (split) setMemoryBoundSplit(split !== "false"); // BatchNorm/ReLU-gradient passes over the kernel threads too (default on)
  const mflops = process.env["THREAD_MIN_MFLOPS"];
  if (mflops) setWasmThreadGate(wasmThreadGateEnabled(), { minFlops: Number(mflops) * 1e6 });
  if (choice !== "all") {
    restoreWasmKernels();
    const wanted = choice === "added" ? [] : choice.split(",").map((k) => k.trim());
    for (const name of wanted) {
      if (name === "BatchNorm") {
        enableFusedBatchNorm();
        continue;
      }
      if (name === "ReluGrad") {
        enableReluGrad();
        continue;
      }
      if (name === "Adam") {
        enableFusedAdam();
        continue;
      }
      if (name === "ConvBiasRelu") {
        enableConvBiasRelu();
        continue;
      }
      if (name === "Dense") {
        enableFusedDense();
        continue;
      }
      if (name === "ThreadGate") {
        setWasmThreadGate(true);
        for (const config of wasmGatedKernelConfigs) replaceWasmKernel(config);
        continue;
      }
      const config = replacedWasmKernelConfigs.find((c) => c.kernelName === name);
      if (!config) throw new Error(`WASM_KERNELS: no fitloop kernel '${name}'; have ${replacedWasmKernelConfigs.map((c) => c.kernelName).join(", ")}`);
      replaceWasmKernel(config);
    }
  }
  const gated = new Set(wasmGatedKernelConfigs);
  const on = replacedWasmKernelConfigs.filter((c) => !gated.has(c) && tf.getKernel(c.kernelName, "wasm")?.kernelFunc === c.kernelFunc).map((c) => c.kernelName);
  const gate = wasmThreadGateEnabled() ? [`ThreadGate(>=${wasmThreadMinFlops() / 1e6} MFLOP)`] : [];
  const ours = (name: string) => [...replacedWasmKernelConfigs].some((c) => c.kernelName === name && tf.getKernel(name, "wasm")?.kernelFunc === c.kernelFunc);
  const simdMatMul = simdMatMulEnabled() && simdKernelsEnabled() && (ours("BatchMatMul") || ours("_FusedMatMul")) ? ["SimdMatMul"] : [];
  const pool = kernelThreadPool();
  const threads = pool?.ready() && kernelThreadsEnabled() ? [`KernelThreads(${pool.threads}${memoryBoundSplitEnabled() ? "" : ", compute-bound only"})`] : [];
  return [...on, ...simdMatMul, ...(isFusedBatchNormEnabled() ? ["BatchNorm"] : []), ...(isReluGradEnabled() ? ["ReluGrad"] : []), ...(isFusedAdamEnabled() ? ["Adam"] : []), ...(isConvBiasReluEnabled() ? ["ConvBiasRelu"] : []), ...(isFusedDenseEnabled() ? ["Dense"] : []), ...gate, ...threads];
}
