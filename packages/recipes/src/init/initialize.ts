import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { OptionsError, mixSeed, parseOptions, type OptionIssue } from "@fitloop/core";
import { z } from "zod";
import { activationGain, autoScheme, effectiveClass, innerLayer, resolveActivation, type Layer, type ResolvedActivation } from "./activation.js";
import { computeFans, orthogonalValues, reluGain, sampleValues, schemeStd, type Distribution, type Fans, type SchemeName } from "./schemes.js";
import { formatInitReport } from "./report.js";

type LayerVariable = LayersModel["weights"][number];

export type InitScheme = "auto" | SchemeName;

const optionsSchema = z.strictObject({
  scheme: z.enum(["auto", "he", "glorot", "lecun", "orthogonal"], { message: 'must be "auto" (by each layer\'s activation), "he", "glorot", "lecun" or "orthogonal"' }).default("auto"),
  distribution: z.enum(["normal", "uniform"], { message: 'must be "normal" or "uniform"' }).default("normal"),
  seed: z.number({ message: "must be an integer (the same seed gives the same weights)" }).int({ message: "must be an integer" }),
  only: z.array(z.string().min(1), { message: "must be an array of layer names" }).optional(),
  exclude: z.array(z.string().min(1), { message: "must be an array of layer names" }).default([]),
  recurrent: z.enum(["orthogonal", "same"], { message: 'must be "orthogonal" (each gate\'s block) or "same" (the kernels\' scheme)' }).default("orthogonal"),
});

export interface InitializeOptions {
  /** `auto` (default): by each layer's activation (ReLU family -> He, SELU -> LeCun, tanh/sigmoid/softmax/linear -> Glorot). */
  scheme?: InitScheme;
  /** For he, glorot and lecun: `normal` (default, PyTorch's `*_normal_`: untruncated) or `uniform` (the same variance). */
  distribution?: Distribution;
  /** Required: every variable's values follow from it, the layer's position and the weight's position. */
  seed: number;
  /** Layer names to initialise (default all). A nested model's name selects its layers. */
  only?: readonly string[];
  /** Layer names to leave as they are; wins over `only`. */
  exclude?: readonly string[];
  /** Recurrent kernels: `orthogonal` (default; one orthogonal block per gate) or `same` as the kernels. */
  recurrent?: "orthogonal" | "same";
}

/** What was done to one variable. */
export interface InitEntry {
  readonly layer: string;
  /** The layer's class (a wrapper's inner class: `Bidirectional(LSTM)` holds LSTM weights). */
  readonly layerClass: string;
  readonly variable: string;
  /** The name the layer gave the weight: `kernel`, `recurrent_kernel`, `bias`, `gamma`, ... */
  readonly role: string;
  readonly shape: readonly number[];
  /** A scheme, a constant, or `kept` (no rule for this weight: left as it was). */
  readonly init: SchemeName | "zeros" | "ones" | "zeros, forget gate ones" | "kept";
  readonly distribution?: Distribution;
  readonly fanIn?: number;
  readonly fanOut?: number;
  /** The standard deviation the scheme gives each entry. */
  readonly std?: number;
  readonly gain?: number;
  readonly why: string;
}

export interface InitReport {
  readonly seed: number;
  readonly scheme: InitScheme;
  readonly entries: readonly InitEntry[];
  /** The report as a table, one variable a line. */
  toString(): string;
}

const KERNEL_CLASSES: ReadonlySet<string> = new Set(["Dense", "Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "Conv3DTranspose", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D"]);
const RNN_GATES: ReadonlyMap<string, number> = new Map([
  ["LSTM", 4],
  ["GRU", 3],
  ["SimpleRNN", 1],
]);
const NORM_CLASSES: ReadonlySet<string> = new Set(["BatchNormalization", "LayerNormalization"]);
const NORM_CONSTANTS: ReadonlyMap<string, 0 | 1> = new Map([
  ["gamma", 1],
  ["beta", 0],
  ["moving_mean", 0],
  ["moving_variance", 1],
]);

/** Leaf layers (nested models opened up), and the container names that select them. */
function leafLayers(layers: readonly Layer[], containers: readonly string[] = []): { layer: Layer; names: string[] }[] {
  return layers.flatMap((l) => {
    const inner = (l as { layers?: unknown }).layers;
    return Array.isArray(inner) ? leafLayers(inner as Layer[], [...containers, l.name]) : [{ layer: l, names: [...containers, l.name] }];
  });
}

const roleOf = (w: LayerVariable): string => (w.originalName ?? w.name).split("/").pop()!;

interface Plan {
  readonly entry: InitEntry;
  /** The new values; `undefined` keeps the variable. */
  readonly values: (() => tf.Tensor) | undefined;
}

/** A kernel of a scheme (orthogonal: the flattened weight as one matrix). */
function kernelPlan(base: Omit<InitEntry, "init" | "why">, scheme: SchemeName, gain: number | undefined, fans: Fans, distribution: Distribution, seed: number, why: string): Plan {
  const shape = base.shape;
  if (scheme === "orthogonal") {
    const g = gain ?? 1;
    const cols = shape[shape.length - 1]!;
    const rows = shape.reduce((a, b) => a * b, 1) / cols;
    return { entry: { ...base, init: "orthogonal", ...fans, std: g / Math.sqrt(Math.max(rows, cols)), gain: g, why }, values: () => tf.tensor(orthogonalValues(rows, cols, seed, g), [...shape], "float32") };
  }
  const std = schemeStd(scheme, fans, gain);
  return {
    entry: { ...base, init: scheme, distribution, ...fans, std, ...(gain !== undefined ? { gain } : {}), why },
    values: () => tf.tensor(sampleValues(shape.reduce((a, b) => a * b, 1), std, distribution, seed), [...shape], "float32"),
  };
}

/** A recurrent kernel `[units, gates * units]`: one orthogonal `units x units` block per gate (each gate's recurrence keeps norms). */
function recurrentPlan(base: Omit<InitEntry, "init" | "why">, gates: number, seed: number): Plan {
  const [units, width] = base.shape as [number, number];
  const why = `recurrent: orthogonal per gate (${gates} block${gates > 1 ? "s" : ""} of ${units}x${units})`;
  return {
    entry: { ...base, init: "orthogonal", ...computeFans(base.shape), std: 1 / Math.sqrt(units), gain: 1, why },
    values: () => {
      const out = new Float32Array(units * width);
      for (let g = 0; g < gates; g++) {
        const block = orthogonalValues(units, units, mixSeed(seed, g), 1);
        for (let r = 0; r < units; r++) for (let c = 0; c < units; c++) out[r * width + g * units + c] = block[r * units + c]!;
      }
      return tf.tensor(out, [units, width], "float32");
    },
  };
}

function constantPlan(base: Omit<InitEntry, "init" | "why">, value: 0 | 1, why: string): Plan {
  return { entry: { ...base, init: value ? "ones" : "zeros", why }, values: () => tf.fill([...base.shape], value, "float32") };
}

/** The plan for one weight of a selected layer. */
function planFor(layer: Layer, cls: string, w: LayerVariable, act: ResolvedActivation, o: z.output<typeof optionsSchema>, seed: number): Plan {
  const role = roleOf(w);
  const base = { layer: layer.name, layerClass: cls === layer.getClassName() ? cls : `${layer.getClassName()}(${cls})`, variable: w.name, role, shape: [...w.shape] as number[] };
  const keep = (why: string): Plan => ({ entry: { ...base, init: "kept", why }, values: undefined });
  if (NORM_CLASSES.has(cls)) {
    const value = NORM_CONSTANTS.get(role);
    return value === undefined ? keep(`no rule for ${role} of ${cls}`) : constantPlan(base, value, `${cls} ${role}: ${value}`);
  }
  const gates = RNN_GATES.get(cls);
  if (!KERNEL_CLASSES.has(cls) && gates === undefined) return keep(`no rule for ${cls}: left as it was`);
  if (role === "bias") {
    const cfg = innerLayer(layer)?.config ?? (layer.getConfig() as Record<string, unknown>);
    if (cls === "LSTM" && cfg["unitForgetBias"] === true) {
      // Jozefowicz et al. 2015, Keras' unit_forget_bias: the forget gate starts open
      const units = base.shape[0]! / 4;
      return { entry: { ...base, init: "zeros, forget gate ones", why: "LSTM unitForgetBias: forget gate 1, others 0" }, values: () => tf.concat([tf.zeros([units]), tf.ones([units]), tf.zeros([2 * units])]) };
    }
    return constantPlan(base, 0, "bias: 0");
  }
  if (role === "recurrent_kernel" && gates !== undefined && o.recurrent === "orthogonal" && base.shape.length === 2) return recurrentPlan(base, gates, seed);
  if (!["kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel"].includes(role)) return keep(`no rule for ${role} of ${cls}`);
  // a separable conv's depthwise kernel is followed by the pointwise one, not by the activation
  const linearPart = cls.startsWith("Separable") && role === "depthwise_kernel";
  const a: ResolvedActivation = linearPart ? { name: "linear", slope: 0, from: "own" } : gates !== undefined ? { name: act.name, slope: 0, from: "own" } : act;
  const fans = computeFans(base.shape, role === "depthwise_kernel");
  const what = linearPart ? "depthwise part (linear)" : a.name;
  if (o.scheme === "auto") {
    const pick = autoScheme(a);
    return kernelPlan(base, pick.scheme, pick.gain, fans, o.distribution, seed, linearPart ? `${what} -> Glorot` : pick.why);
  }
  const gain = o.scheme === "orthogonal" ? activationGain(a) : o.scheme === "he" ? reluGain(a.name === "leakyRelu" ? a.slope : 0) : undefined;
  return kernelPlan(base, o.scheme, gain, fans, o.distribution, seed, `scheme ${o.scheme} (activation ${what})`);
}

/**
 * Re-initialises `model`'s weights in place by layer type and activation, and says what it did:
 * kernels of Dense, Conv1D/2D/3D, DepthwiseConv2D, SeparableConv2D and the recurrent layers
 * (LSTM, GRU, SimpleRNN, also inside Bidirectional and TimeDistributed) by `scheme`, with fans as
 * Keras and PyTorch compute them; recurrent kernels orthogonal per gate; biases 0 (an LSTM's forget
 * gate 1 with `unitForgetBias`); BatchNormalization and LayerNormalization gamma 1, beta 0 and moving
 * statistics 0 and 1. Other weights (embeddings, custom layers) are kept and listed. Deterministic:
 * each variable's values follow from `seed` and its position in the model.
 */
export function initialize(model: LayersModel, options: InitializeOptions): InitReport {
  const o = parseOptions("initialize", optionsSchema, options);
  if (typeof model !== "object" || model === null || !Array.isArray((model as { layers?: unknown }).layers)) {
    throw new OptionsError("initialize", [{ path: "model", message: "must be a tfjs-layers model (tf.sequential() or tf.model())" }]);
  }
  const leaves = leafLayers(model.layers);
  const known = new Set(leaves.flatMap((l) => l.names));
  const issues: OptionIssue[] = [];
  for (const key of ["only", "exclude"] as const) {
    (o[key] ?? []).forEach((name, i) => {
      if (!known.has(name)) issues.push({ path: `${key}.${i}`, message: `no layer named "${name}"; the model's layers: ${[...known].join(", ")}` });
    });
  }
  if (issues.length) throw new OptionsError("initialize", issues);
  const only = o.only ? new Set(o.only) : undefined;
  const exclude = new Set(o.exclude);
  const plans: (Plan & { readonly target: LayerVariable })[] = [];
  leaves.forEach(({ layer, names }, li) => {
    if (only && !names.some((n) => only.has(n))) return;
    if (names.some((n) => exclude.has(n))) return;
    const cls = effectiveClass(layer);
    const act = resolveActivation(layer);
    layer.weights.forEach((w, wi) => plans.push({ ...planFor(layer, cls, w, act, o, mixSeed(o.seed, li, wi)), target: w }));
  });
  // all values are made before any is written: a failure leaves the model as it was
  const made = new Map<Plan, tf.Tensor>();
  try {
    for (const p of plans) if (p.values) made.set(p, tf.tidy(p.values));
    for (const p of plans) {
      const t = made.get(p);
      if (t) p.target.write(t);
    }
  } finally {
    tf.dispose([...made.values()]);
  }
  const entries = plans.map((p) => p.entry);
  return { seed: o.seed, scheme: o.scheme, entries, toString: () => formatInitReport(entries, o.scheme, o.seed) };
}
