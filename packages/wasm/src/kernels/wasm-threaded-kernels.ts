import { Conv2D, DepthwiseConv2dNative, FusedConv2D, FusedDepthwiseConv2D, _FusedMatMul, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { asKernelFunc, runWasm, WASM, type KernelArgs } from "./wasm-util.js";
import { simdMatMul } from "./wasm-matmul-simd.js";
import { im2colConv2D } from "./wasm-conv2d-im2col.js";

/**
 * The stock tfjs-wasm matmul and convolution kernels that fitloop does not otherwise replace, run
 * through the thread gate (`wasm-threadpool.ts`, via `runWasm`): tfjs-wasm's thread pool for
 * operations of at least the gate's minimum work, the calling thread for smaller ones. Same kernel,
 * same results (XNNPACK's partitioning does not change the arithmetic of an output element).
 */
const gated = (kernelName: string): KernelConfig => ({
  kernelName,
  backendName: WASM,
  kernelFunc: asKernelFunc(({ inputs, backend, attrs }: KernelArgs): TensorInfo => runWasm(kernelName, backend, inputs, attrs)),
});

/** Conv2D and FusedConv2D on fitloop's SIMD GEMM where it applies (Winograd, or im2col + GEMM: `wasm-conv2d-im2col.ts`), else the gated stock kernel. */
const gatedConv = (kernelName: string): KernelConfig => ({
  kernelName,
  backendName: WASM,
  kernelFunc: asKernelFunc((args: KernelArgs): TensorInfo => im2colConv2D(args, kernelName) ?? runWasm(kernelName, args.backend, args.inputs, args.attrs)),
});
export const wasmGatedConv2DConfig = gatedConv(Conv2D);
export const wasmGatedFusedConv2DConfig = gatedConv(FusedConv2D);
/** _FusedMatMul: fitloop's SIMD GEMM (`wasm-matmul-simd.ts`) where it applies, else the gated stock kernel. */
export const wasmGatedFusedMatMulConfig: KernelConfig = {
  kernelName: _FusedMatMul,
  backendName: WASM,
  kernelFunc: asKernelFunc((args: KernelArgs): TensorInfo => simdMatMul(args, _FusedMatMul) ?? runWasm(_FusedMatMul, args.backend, args.inputs, args.attrs)),
};
export const wasmGatedDepthwiseConv2dConfig = gated(DepthwiseConv2dNative);
export const wasmGatedFusedDepthwiseConv2DConfig = gated(FusedDepthwiseConv2D);
export const wasmGatedKernelConfigs = [wasmGatedConv2DConfig, wasmGatedFusedConv2DConfig, wasmGatedFusedMatMulConfig, wasmGatedDepthwiseConv2dConfig, wasmGatedFusedDepthwiseConv2DConfig];
