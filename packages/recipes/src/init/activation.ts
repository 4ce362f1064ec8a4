import type { LayersModel } from "@tensorflow/tfjs-layers";
import { reluGain, type SchemeName } from "./schemes.js";

export type Layer = LayersModel["layers"][number];

/** The nonlinearity a layer's output goes through, and where that was read. */
export interface ResolvedActivation {
  /** tfjs's name (`relu`, `tanh`, `linear`, ...), `leakyRelu` for the LeakyReLU layer, `prelu` for PReLU. */
  readonly name: string;
  /** Negative slope for leakyRelu (tfjs's default 0.3), else 0. */
  readonly slope: number;
  /** `own` (the layer's `activation`), or the name of the layer after it that applies it. */
  readonly from: string;
}

type Config = Record<string, unknown>;

const configOf = (layer: Layer): Config => layer.getConfig() as Config;

/** A wrapper's inner layer: `{ className, config }` (Bidirectional, TimeDistributed). */
export function innerLayer(layer: Layer): { className: string; config: Config } | undefined {
  const inner = configOf(layer)["layer"];
  if (typeof inner !== "object" || inner === null) return undefined;
  const { className, config } = inner as { className?: unknown; config?: unknown };
  return typeof className === "string" && typeof config === "object" && config !== null ? { className, config: config as Config } : undefined;
}

/** The class whose weights a layer holds: the inner layer's for Bidirectional and TimeDistributed. */
export function effectiveClass(layer: Layer): string {
  return innerLayer(layer)?.className ?? layer.getClassName();
}

/** The layer's own `activation` (a wrapper's inner one), if it has one. */
export function ownActivation(layer: Layer): string | undefined {
  const a = (innerLayer(layer)?.config ?? configOf(layer))["activation"];
  return typeof a === "string" ? a : undefined;
}

/** Layers that apply an activation and nothing else. */
function activationLayer(layer: Layer): { name: string; slope: number } | undefined {
  const c = configOf(layer);
  switch (layer.getClassName()) {
    case "Activation":
      return typeof c["activation"] === "string" ? { name: c["activation"], slope: 0 } : undefined;
    case "ReLU":
    case "ThresholdedReLU":
      return { name: "relu", slope: 0 };
    case "LeakyReLU":
      return { name: "leakyRelu", slope: typeof c["alpha"] === "number" ? c["alpha"] : 0.3 };
    case "PReLU": // its slope is learned and starts at 0 (tfjs's default alphaInitializer)
      return { name: "prelu", slope: 0 };
    case "ELU":
      return { name: "elu", slope: 0 };
    case "Softmax":
      return { name: "softmax", slope: 0 };
    default:
      return undefined;
  }
}

/**
 * Layers between a kernel and its activation that do not change which nonlinearity follows
 * (Dense -> BatchNorm -> ReLU is the usual order; max-pooling commutes with ReLU).
 */
const PASS_THROUGH: ReadonlySet<string> = new Set([
  "BatchNormalization",
  "LayerNormalization",
  "Dropout",
  "SpatialDropout1D",
  "GaussianNoise",
  "GaussianDropout",
  "AlphaDropout",
  "Flatten",
  "Reshape",
  "Permute",
  "MaxPooling1D",
  "MaxPooling2D",
  "MaxPooling3D",
  "AveragePooling1D",
  "AveragePooling2D",
  "AveragePooling3D",
  "ZeroPadding2D",
]);

/** The one layer that consumes `layer`'s output, if exactly one does. */
function nextLayer(layer: Layer): Layer | undefined {
  const consumers = new Set(layer.outboundNodes.map((n) => n.outboundLayer));
  return consumers.size === 1 ? [...consumers][0] : undefined;
}

/**
 * What nonlinearity `layer`'s output goes through: its own `activation` unless that is `linear`,
 * else the first activation layer after it (through norms, dropout, reshapes and pooling, when each
 * has a single consumer), else `linear`.
 */
export function resolveActivation(layer: Layer): ResolvedActivation {
  const own = ownActivation(layer);
  if (own !== undefined && own !== "linear") return { name: own, slope: 0, from: "own" };
  let at = nextLayer(layer);
  for (let hops = 0; at && hops < 8; hops++) {
    const act = activationLayer(at);
    if (act) return { ...act, from: at.name };
    if (!PASS_THROUGH.has(at.getClassName())) break;
    at = nextLayer(at);
  }
  return { name: "linear", slope: 0, from: own === undefined ? "none" : "own" };
}

const RELU_LIKE: ReadonlySet<string> = new Set(["relu", "relu6", "elu", "leakyRelu", "prelu", "gelu", "gelu_new", "swish", "mish", "softplus"]);
const GLOROT_LIKE: ReadonlySet<string> = new Set(["linear", "tanh", "sigmoid", "hardSigmoid", "softmax", "logSoftmax", "softsign"]);

/**
 * The lectures' rule of thumb: ReLU and its relatives -> He (with the leaky slope in the gain);
 * SELU -> LeCun (self-normalisation assumes it); tanh, sigmoid, softmax and linear -> Glorot.
 */
export function autoScheme(act: ResolvedActivation): { scheme: SchemeName; gain: number | undefined; why: string } {
  const via = act.from === "own" ? act.name : act.from === "none" ? "linear (no activation)" : `${act.name} (layer ${act.from})`;
  if (RELU_LIKE.has(act.name)) {
    const gain = reluGain(act.slope);
    return { scheme: "he", gain, why: `${via} -> He${act.slope ? `, gain sqrt(2/(1+${act.slope}^2))` : ""}` };
  }
  if (act.name === "selu") return { scheme: "lecun", gain: undefined, why: `${via} -> LeCun` };
  if (GLOROT_LIKE.has(act.name)) return { scheme: "glorot", gain: undefined, why: `${via} -> Glorot` };
  return { scheme: "glorot", gain: undefined, why: `${via}: no rule for it -> Glorot` };
}

/** PyTorch's `calculate_gain` for an explicit orthogonal scheme (1 for linear, sigmoid and softmax). */
export function activationGain(act: ResolvedActivation): number {
  if (RELU_LIKE.has(act.name)) return reluGain(act.slope);
  if (act.name === "tanh") return 5 / 3;
  if (act.name === "selu") return 3 / 4;
  return 1;
}
