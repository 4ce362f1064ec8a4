import { backend_util, Conv2D, Conv2DBackpropInput, Reverse, Transpose, type Conv2DBackpropInputAttrs, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core";
import { asKernelFunc, runWasm, withTemps, WASM, type KernelArgs } from "./wasm-util.js";

/** Padding of the forward Conv2D that computes an input gradient, or null when it does not apply. */
export function planInputGradConv(
  inputShape: readonly [number, number, number, number],
  filterShape: readonly [number, number, number, number],
  dyShape: readonly number[],
  attrs: Pick<Conv2DBackpropInputAttrs, "strides" | "pad" | "dimRoundingMode" | "dataFormat">,
): [[0, 0], [number, number], [number, number], [0, 0]] | null {
  if (attrs.dataFormat === "NCHW") return null;
  const info = backend_util.computeConv2DInfo([...inputShape], [...filterShape], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, "channelsLast");
  if (info.strideHeight !== 1 || info.strideWidth !== 1) return null;
  if (dyShape[1] !== info.outHeight || dyShape[2] !== info.outWidth) return null;
  const top = info.filterHeight - 1 - info.padInfo.top;
  const left = info.filterWidth - 1 - info.padInfo.left;
  const bottom = info.inHeight - info.outHeight - top + info.filterHeight - 1;
  const right = info.inWidth - info.outWidth - left + info.filterWidth - 1;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) return null;
  return [[0, 0], [top, bottom], [left, right], [0, 0]];
}

/**
 * With stride 1, dx = conv2d(dy, W'), where W'[i,j,co,ci] = W[fh-1-i, fw-1-j, ci, co] (the filter
 * rotated by 180° with its channel axes swapped) and padding fh-1-top (top), fw-1-left (left), and
 * what makes the output as large as x. tfjs-wasm's own Conv2DBackpropInput is a scalar loop; this
 * runs on XNNPACK's SIMD convolution. Strided convolutions (and NCHW) use the stock kernel.
 */
export function wasmConv2DBackpropInput({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, filter } = inputs;
  if (!dy || !filter) throw new Error("fitloop wasm Conv2DBackpropInput: inputs dy and filter are required");
  const a = attrs as unknown as Conv2DBackpropInputAttrs;
  const pad =
    dy.shape.length === 4 && filter.shape.length === 4 && a.inputShape.length === 4 && dy.dtype === "float32" && filter.dtype === "float32"
      ? planInputGradConv(a.inputShape, filter.shape as [number, number, number, number], dy.shape, a)
      : null;
  if (!pad) return runWasm(Conv2DBackpropInput, backend, inputs, attrs);
  return withTemps(backend, (keep) => {
    const flipped = keep(runWasm(Reverse, backend, { x: filter }, { dims: [0, 1] }));
    const swapped = keep(runWasm(Transpose, backend, { x: flipped }, { perm: [0, 1, 3, 2] }));
    return runWasm(Conv2D, backend, { x: dy, filter: swapped }, { strides: [1, 1], dilations: [1, 1], pad, dataFormat: "NHWC" });
  });
}

export const wasmConv2DBackpropInputConfig: KernelConfig = { kernelName: Conv2DBackpropInput, backendName: WASM, kernelFunc: asKernelFunc(wasmConv2DBackpropInput) };
