import {
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  engine,
  FusedConv2D,
  getGradient,
  getKernel,
  registerGradient,
  registerKernel,
  reshape,
  sum,
  tidy,
  Variable,
  type GradConfig,
  type KernelConfig,
  type NamedAttrMap,
  type Tensor,
  type TensorInfo,
} from "@tensorflow/tfjs-core";
import { asKernelFunc, type KernelArgs, layerPrototype, runWasm, WASM } from "./wasm-util.js";
import { im2colConv2D } from "./wasm-conv2d-im2col.js";
import { RELU_GRAD, RELU_GRAD_BIAS_SUM, reluGradBiasSumFused } from "./wasm-relu-grad.js";
import { CONV_FILTER_GRAD_RELU, filterGradReluApplies, wasmConvReluFilterGradConfig } from "./wasm-conv-filter-grad-relu.js";

/**
 * A convolution layer with bias and ReLU in training, as one forward kernel.
 *
 * tfjs-core fuses conv2d + bias + activation only outside a gradient tape (`shouldFuse`), so in
 * training tfjs-layers' `Conv2D` with `activation: 'relu'` runs Conv2D, a broadcast Add of the bias
 * and Relu: three full passes over the activation (~2 ms per step for a small MNIST CNN on wasm).
 * Here the forward is the wasm `FusedConv2D` kernel (bias and ReLU applied while the output is
 * written) under a kernel of our own, `FitloopConv2DBiasRelu`, whose registered gradient is the one
 * tfjs-core gives FusedConv2D: dz = dy * step(y) (one pass, `FitloopReluGrad`), then the input and
 * filter gradients of the convolution and sum(dz) for the bias, each computed only when needed.
 *
 * Used through `Conv2D.call` of tfjs-layers (patched by `registerWasmKernels()`): under a gradient
 * tape, on the wasm backend, for float32 NHWC 2-D convolutions with bias, ReLU and dilation 1;
 * everything else runs tfjs-layers' own code. Pinned to tfjs-layers 4.22 (layer fields).
 */
export const CONV_BIAS_RELU = "FitloopConv2DBiasRelu";

interface ConvAttrs {
  strides: [number, number];
  pad: "valid" | "same";
}

/** The forward kernel: FusedConv2D with bias and relu (Winograd or im2col + GEMM where they apply, `im2colConv2D`; else XNNPACK). */
function wasmConvBiasRelu(args: KernelArgs): TensorInfo {
  const attrs = { ...(args.attrs ?? {}), dataFormat: "NHWC", dilations: [1, 1], activation: "relu" } as NamedAttrMap;
  const fused = { ...args, attrs };
  return im2colConv2D(fused, FusedConv2D) ?? runWasm(FusedConv2D, args.backend, args.inputs, attrs);
}

export const wasmConvBiasReluConfig: KernelConfig = { kernelName: CONV_BIAS_RELU, backendName: WASM, kernelFunc: asKernelFunc(wasmConvBiasRelu) };

const run = (name: string, inputs: Record<string, Tensor>, attrs: NamedAttrMap = {}): Tensor => engine().runKernel(name, inputs as never, attrs) as unknown as Tensor;

export const convBiasReluGradConfig: GradConfig = {
  kernelName: CONV_BIAS_RELU,
  inputsToSave: ["x", "filter"],
  outputsToSave: [true],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x, filter, y] = saved as [Tensor, Tensor, Tensor];
    const { strides, pad } = attrs as unknown as ConvAttrs;
    // relu'(z) = step(z) = step(y) for y = relu(z) (NaN stays NaN), as tfjs's fused gradient. Outside
    // an outer tape, dz and the bias gradient come from one pass (FitloopReluGradBiasSum: no gradient
    // of its own); under one, ReluGrad then a Sum, both differentiable.
    const e = engine();
    const common = { strides, pad, dataFormat: "NHWC", dimRoundingMode: undefined } as unknown as NamedAttrMap;
    const untaped = e.state.gradientDepth === 0 && e.backendName === WASM;
    // a layer on the data (its input needs no gradient, as a rule): dW and the bias from dy and y with
    // the ReLU gradient folded in, dz never written whole; an input gradient, if asked, makes its own dz
    if (untaped && (attrs as { inputIsData?: boolean }).inputIsData === true && getKernel(CONV_FILTER_GRAD_RELU, WASM) && filterGradReluApplies(e.backend, x, filter.shape)) {
      const [dw, dbias] = e.runKernel(CONV_FILTER_GRAD_RELU, { x, dy: dy as Tensor, y }, { strides, pad, filterShape: filter.shape } as unknown as NamedAttrMap) as unknown as [Tensor, Tensor];
      return {
        x: () => run(Conv2DBackpropInput, { dy: run(RELU_GRAD, { dy: dy as Tensor, x: y }), filter }, { ...common, inputShape: x.shape } as NamedAttrMap),
        filter: () => dw,
        bias: () => dbias,
      };
    }
    const onePass = untaped && getKernel(RELU_GRAD_BIAS_SUM, WASM) !== undefined && reluGradBiasSumFused(e.backend, filter.shape[3]!);
    const [dz, db] = onePass ? (e.runKernel(RELU_GRAD_BIAS_SUM, { dy: dy as Tensor, x: y }, {}) as unknown as [Tensor, Tensor]) : [run(RELU_GRAD, { dy: dy as Tensor, x: y }), undefined];
    return {
      x: () => run(Conv2DBackpropInput, { dy: dz, filter }, { ...common, inputShape: x.shape } as NamedAttrMap),
      filter: () => run(Conv2DBackpropFilter, { x, dy: dz }, { ...common, filterShape: filter.shape } as NamedAttrMap),
      bias: () => db ?? reshape(sum(dz, [0, 1, 2]), [filter.shape[3]!]),
    };
  },
};

/** The fields of tfjs-layers 4.22's Conv2D used here. */
interface ConvLayer {
  rank: number;
  strides: number[];
  padding: string;
  dataFormat: string;
  dilationRate: number[];
  kernel: { read(): Tensor };
  bias: { read(): Tensor } | null;
  activation: { getClassName(): string } | null;
}
type CallFn = (this: ConvLayer, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>) => Tensor | Tensor[];

const conv2dPrototype = (): { call: CallFn } | undefined => layerPrototype<"call", CallFn>("Conv2D", "call");

/** Whether this call takes the fused path (else tfjs-layers' own code runs). */
function fusable(layer: ConvLayer, input: Tensor | undefined): input is Tensor {
  if (!input || input.dtype !== "float32" || input.rank !== 4 || layer.rank !== 2 || !layer.bias) return false;
  if (layer.activation?.getClassName() !== "relu" || layer.dataFormat !== "channelsLast") return false;
  if (layer.padding !== "valid" && layer.padding !== "same") return false;
  if (layer.dilationRate.some((d) => d !== 1)) return false;
  const e = engine();
  // outside a tape tfjs-core fuses by itself
  return e.state.gradientDepth > 0 && e.backendName === WASM && getKernel(CONV_BIAS_RELU, WASM) !== undefined && getKernel(RELU_GRAD, WASM) !== undefined;
}

/**
 * Whether `input` is data to the gradient being recorded: no op on the active tape made it and it is
 * not a variable (a first layer's batch). Its gradient is then rarely asked for (a gradient with
 * respect to the input still works, computed separately). Conservative: a first conv after any
 * recorded op (a Rescaling or Reshape layer) is not "data" and keeps the separate path.
 */
function isData(input: Tensor): boolean {
  if (input instanceof Variable) return false;
  const tape = (engine().state as unknown as { activeTape?: { outputs: Tensor[] }[] }).activeTape ?? [];
  return !tape.some((node) => node.outputs.some((o) => o.id === input.id));
}

/** tfjs-layers' own call (inherited from Conv), kept when the patch is installed. */
let stockCall: CallFn | undefined;
function fusedCall(this: ConvLayer, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>): Tensor | Tensor[] {
  const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
  if (!fusable(this, input)) return stockCall!.call(this, inputs, kwargs);
  return tidy(() =>
    run(CONV_BIAS_RELU, { x: input, filter: this.kernel.read(), bias: this.bias!.read() }, { strides: [this.strides[0]!, this.strides[1]!], pad: this.padding, inputIsData: isData(input) } as unknown as NamedAttrMap),
  );
}

/** Registers the kernel and its gradient, and routes tfjs-layers' Conv2D (bias + relu) training calls on wasm through them. Idempotent. */
export function enableConvBiasRelu(): void {
  if (!getKernel(CONV_BIAS_RELU, WASM)) registerKernel(wasmConvBiasReluConfig);
  if (!getKernel(CONV_FILTER_GRAD_RELU, WASM)) registerKernel(wasmConvReluFilterGradConfig);
  if (!getGradient(CONV_BIAS_RELU)) registerGradient(convBiasReluGradConfig);
  const proto = conv2dPrototype();
  // Conv2D inherits `call` from Conv; an own property on Conv2D.prototype shadows it and is removed to undo.
  if (!proto || Object.prototype.hasOwnProperty.call(proto, "call")) return;
  stockCall = proto.call;
  Object.defineProperty(proto, "call", { value: fusedCall, writable: true, configurable: true });
}

/** Puts back tfjs-layers' own Conv2D.call (the kernel stays registered, unused). */
export function disableConvBiasRelu(): void {
  const proto = conv2dPrototype();
  if (proto && Object.prototype.hasOwnProperty.call(proto, "call") && (proto as { call: CallFn }).call === fusedCall) delete (proto as { call?: CallFn }).call;
}

export const isConvBiasReluEnabled = (): boolean => conv2dPrototype()?.call === fusedCall;
