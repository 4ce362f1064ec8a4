import type * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { OptionsError, type OptionIssue } from "@fitloop/core";

type Layer = LayersModel["layers"][number];
type LayerVariable = LayersModel["trainableWeights"][number];

/** One trainable variable as a selection rule sees it. */
export interface DecayCandidate {
  /** The variable's unique name (tfjs adds `_1` to a second model's: `head/kernel_1`). */
  readonly name: string;
  /** The name of the layer that owns it (the innermost one, inside nested models). */
  readonly layer: string;
  /** That layer's class: `Dense`, `Conv2D`, `LSTM`, `Bidirectional`, `BatchNormalization`, ... */
  readonly layerClass: string;
  /** The name the layer gave the weight: `kernel`, `recurrent_kernel`, `bias`, `gamma`, `embeddings`, ... */
  readonly role: string;
  readonly shape: readonly number[];
}

/** A layer name or variable name (with or without tfjs's `_1` counter), or a RegExp tested against both. */
export type NamePattern = string | RegExp;

export interface SelectionOptions {
  /** Replaces the default rule (kernels only): `true` decays the variable. */
  readonly predicate?: ((v: DecayCandidate) => boolean) | undefined;
  /** Variables that decay whatever the rule says. */
  readonly include?: readonly NamePattern[] | undefined;
  /** Variables that do not decay whatever the rule or `include` say. */
  readonly exclude?: readonly NamePattern[] | undefined;
}

export interface DecayEntry extends DecayCandidate {
  readonly variable: tf.Variable;
  /** Number of parameters. */
  readonly size: number;
  readonly decays: boolean;
  /** Why it does or does not decay, for `formatSelection`. */
  readonly why: string;
}

export interface DecaySelection {
  /** Every trainable variable, in the model's order. */
  readonly entries: readonly DecayEntry[];
  /** The variables that decay. */
  readonly decayed: readonly tf.Variable[];
  readonly parameters: number;
  readonly decayedParameters: number;
}

/** Weight roles that are matrices applied to the input (or the state): they decay. */
const KERNEL_ROLES: ReadonlySet<string> = new Set(["kernel", "recurrent_kernel", "depthwise_kernel", "pointwise_kernel"]);

/**
 * Roles that do not decay, and why. Biases and normalization gains/shifts have no scale to regularize
 * (decay only pulls them toward 0: a gamma of 0 switches the channel off); an embedding table decays
 * every row every step while only the rows of the tokens in the batch get gradients, so rare tokens
 * fade toward 0 (PyTorch users exempt a `padding_idx` row or the table; tfjs's Embedding has no
 * padding index, so the table is left alone, as minGPT does).
 */
const KEPT_ROLES: ReadonlyMap<string, string> = new Map([
  ["bias", "bias"],
  ["gamma", "normalization scale (gamma)"],
  ["beta", "normalization shift (beta)"],
  ["embeddings", "embedding table (rare tokens would fade)"],
  ["alpha", "PReLU slope"],
]);

/** The default rule: kernels decay; biases, norm gains and shifts, embeddings do not; other roles by rank. */
export function defaultRule(v: DecayCandidate): { decays: boolean; why: string } {
  if (KERNEL_ROLES.has(v.role)) return { decays: true, why: `${v.layerClass} ${v.role}` };
  const kept = KEPT_ROLES.get(v.role);
  if (kept !== undefined) return { decays: false, why: kept };
  // a custom layer's weight: a matrix is a kernel (the rank rule of minGPT/nanoGPT), a vector a bias or gain
  return v.shape.length >= 2 ? { decays: true, why: `"${v.role}" of ${v.layerClass}, rank ${v.shape.length}: a kernel` } : { decays: false, why: `"${v.role}" of ${v.layerClass}, rank ${v.shape.length}: a bias or gain` };
}

/** Leaf layers (nested models opened up), so a weight's owner is the layer that made it. */
function leafLayers(layers: readonly Layer[]): Layer[] {
  return layers.flatMap((l) => {
    const inner = (l as { layers?: unknown }).layers;
    return Array.isArray(inner) ? leafLayers(inner as Layer[]) : [l];
  });
}

interface Found {
  readonly candidate: DecayCandidate;
  readonly originalName: string;
  readonly variable: tf.Variable;
}

/** Every trainable variable of `model` with its layer and role (the name the layer gave it in `addWeight`). */
function candidates(model: LayersModel): Found[] {
  const owner = new Map<string, Layer>();
  for (const layer of leafLayers(model.layers)) for (const w of layer.trainableWeights) owner.set(w.name, layer);
  return model.trainableWeights.map((w: LayerVariable) => {
    const layer = owner.get(w.name);
    // originalName is the scope plus the addWeight name, before tfjs appends `_1` for a clash
    const originalName = w.originalName ?? w.name;
    const variable = w.read() as tf.Variable;
    const candidate: DecayCandidate = {
      name: w.name,
      layer: layer?.name ?? "?",
      layerClass: layer?.getClassName() ?? "?",
      role: originalName.split("/").pop()!,
      shape: [...variable.shape],
    };
    return { candidate, originalName, variable };
  });
}

function matches(p: NamePattern, f: Found): boolean {
  const names = [f.candidate.name, f.originalName, f.candidate.layer];
  if (typeof p === "string") return names.includes(p);
  const re = new RegExp(p.source, p.flags.replace(/[gy]/g, "")); // no lastIndex carried between tests
  return names.some((n) => re.test(n));
}

const show = (p: NamePattern) => (typeof p === "string" ? JSON.stringify(p) : String(p));

/**
 * Which trainable variables of `model` decay: `predicate` (default: kernels only, see `defaultRule`),
 * then `include` adds, then `exclude` removes. A pattern that matches nothing, or a predicate that
 * does not answer true or false, is an `OptionsError` (naming the option and listing the variables).
 */
export function selectDecayed(model: LayersModel, options: SelectionOptions = {}, owner = "WeightDecay"): DecaySelection {
  const found = candidates(model);
  const include = options.include ?? [];
  const exclude = options.exclude ?? [];
  const issues: OptionIssue[] = [];
  const available = `the trainable variables: ${found.map((f) => f.candidate.name).join(", ") || "(none)"}; layers: ${[...new Set(found.map((f) => f.candidate.layer))].join(", ") || "(none)"}`;
  for (const [key, list] of [["include", include], ["exclude", exclude]] as const) {
    list.forEach((p, i) => {
      if (!found.some((f) => matches(p, f))) issues.push({ path: `${key}.${i}`, message: `${show(p)} matches no layer or trainable variable; ${available}` });
    });
  }
  const entries = found.map((f): DecayEntry => {
    let rule: { decays: boolean; why: string };
    if (options.predicate) {
      const answer: unknown = options.predicate(f.candidate);
      if (typeof answer !== "boolean" && !issues.some((i) => i.path === "predicate")) issues.push({ path: "predicate", message: `must return true or false, returned ${String(answer)} for ${f.candidate.name}` });
      rule = { decays: answer === true, why: "predicate" };
    } else {
      rule = defaultRule(f.candidate);
    }
    const inc = include.find((p) => matches(p, f));
    const exc = exclude.find((p) => matches(p, f));
    if (exc !== undefined) rule = { decays: false, why: `exclude ${show(exc)}` };
    else if (inc !== undefined) rule = { decays: true, why: `include ${show(inc)}` };
    return { ...f.candidate, variable: f.variable, size: f.variable.size, ...rule };
  });
  if (issues.length) throw new OptionsError(owner, issues);
  const decayedEntries = entries.filter((e) => e.decays);
  return {
    entries,
    decayed: decayedEntries.map((e) => e.variable),
    parameters: entries.reduce((s, e) => s + e.size, 0),
    decayedParameters: decayedEntries.reduce((s, e) => s + e.size, 0),
  };
}

const count = (n: number) => n.toLocaleString("en-US");

/** "3 of 8 variables decay (1,230 of 1,300 parameters)". */
export function summarizeSelection(s: DecaySelection): string {
  return `${s.decayed.length} of ${s.entries.length} variables decay (${count(s.decayedParameters)} of ${count(s.parameters)} parameters)`;
}

/** A plain-text table: variable, shape, parameters, decays yes/no and why; then the summary line. */
export function formatSelection(s: DecaySelection): string {
  const rows = [["variable", "shape", "params", "decays", "why"], ...s.entries.map((e) => [e.name, e.shape.join("x") || "scalar", count(e.size), e.decays ? "yes" : "no", e.why])];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  "));
  return [...lines, summarizeSelection(s)].join("\n");
}
