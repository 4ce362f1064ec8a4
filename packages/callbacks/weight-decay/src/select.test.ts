import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { OptionsError, Trainer, silentLogger, tensorData, type Callback } from "@fitloop/core";
import { expectRefused } from "@fitloop/core/testing";
import { WeightDecay, defaultRule, formatSelection, selectDecayed, type DecayCandidate } from "./index.js";

/** Embedding -> LSTM -> Conv2D -> BatchNorm -> SeparableConv2D -> LayerNorm -> Dense, named layers, on integer tokens. */
function zoo(): tfl.LayersModel {
  const tokens = tfl.input({ shape: [6] });
  let x = tfl.layers.embedding({ inputDim: 10, outputDim: 4, name: "emb" }).apply(tokens) as tfl.SymbolicTensor;
  x = tfl.layers.lstm({ units: 4, returnSequences: true, recurrentInitializer: "glorotNormal", name: "lstm" }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reshape({ targetShape: [6, 4, 1] }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 2, kernelSize: 3, name: "conv" }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: "bn" }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.separableConv2d({ filters: 2, kernelSize: 1, name: "sep" }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.layerNormalization({ name: "ln" }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3, name: "head" }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: tokens, outputs: out });
}

/** `layer/role` of the variables that decay (variable names carry tfjs's counters, which grow with every model built). */
const decayedNames = (m: tfl.LayersModel, o?: Parameters<typeof selectDecayed>[1]) => selectDecayed(m, o).entries.filter((e) => e.decays).map((e) => `${e.layer}/${e.role}`);
const trainableParams = (m: tfl.LayersModel) => m.trainableWeights.reduce((s, w) => s + w.read().size, 0);

describe("which variables decay", () => {
  it("by default exactly the kernels (Dense, Conv2D, LSTM kernel and recurrent kernel, separable depthwise and pointwise)", () => {
    const m = zoo();
    const s = selectDecayed(m);
    expect(s.entries.map((e) => `${e.layer}/${e.role} ${e.decays ? "yes" : "no"}`)).toEqual([
      "emb/embeddings no",
      "lstm/kernel yes",
      "lstm/recurrent_kernel yes",
      "lstm/bias no",
      "conv/kernel yes",
      "conv/bias no",
      "bn/gamma no",
      "bn/beta no",
      "sep/depthwise_kernel yes",
      "sep/pointwise_kernel yes",
      "sep/bias no",
      "ln/gamma no",
      "ln/beta no",
      "head/kernel yes",
      "head/bias no",
    ]);
    expect(s.decayed).toEqual(s.entries.filter((e) => e.decays).map((e) => e.variable));
    expect(s.decayed.every((v) => v instanceof tf.Variable)).toBe(true);
    expect(s.parameters).toBe(trainableParams(m)); // the moving mean and variance are not trainable
    expect(s.decayedParameters).toBe(64 + 64 + 18 + 2 + 4 + 16 * 3);
    m.dispose();
  });

  it("a second model's renamed variables (head/kernel_1) are selected the same; a string names a variable with or without the counter", () => {
    const first = zoo();
    const second = zoo();
    const [k1, k2] = [first, second].map((m) => m.getLayer("head").trainableWeights[0]!.name);
    expect(k2).not.toBe(k1);
    expect(k2).toMatch(/^head\/kernel_\d+$/);
    const kernels = ["lstm/kernel", "lstm/recurrent_kernel", "conv/kernel", "sep/depthwise_kernel", "sep/pointwise_kernel", "head/kernel"];
    expect(decayedNames(second)).toEqual(kernels);
    expect(selectDecayed(second).decayed.map((v) => v.name)).toEqual(selectDecayed(second).entries.filter((e) => kernels.includes(`${e.layer}/${e.role}`)).map((e) => e.name));
    expect(decayedNames(second, { exclude: ["head/kernel", "lstm"] })).toEqual(["conv/kernel", "sep/depthwise_kernel", "sep/pointwise_kernel"]);
    expect(decayedNames(second, { exclude: [k2!] })).not.toContain("head/kernel");
    first.dispose();
    second.dispose();
  });

  it("predicate replaces the rule; include adds, exclude removes and wins; the table says why", () => {
    const m = zoo();
    const seen: DecayCandidate[] = [];
    expect(decayedNames(m, { predicate: (v) => (seen.push(v), v.role === "bias") })).toEqual(["lstm/bias", "conv/bias", "sep/bias", "head/bias"]);
    const pw = m.getLayer("sep").trainableWeights[1]!.name;
    expect(seen.find((v) => v.name === pw)).toEqual({ name: pw, layer: "sep", layerClass: "SeparableConv2D", role: "pointwise_kernel", shape: [1, 1, 2, 2] });
    expect(decayedNames(m, { include: ["head", /^emb/], exclude: [/kernel(_\d+)?$/, "lstm/kernel"] })).toEqual(["emb/embeddings", "head/bias"]);
    const table = formatSelection(selectDecayed(m, { include: ["head"], exclude: [/^conv/] })).split("\n");
    expect(table[0]).toMatch(/^variable\s+shape\s+params\s+decays\s+why$/);
    expect(table).toContainEqual(expect.stringMatching(/^emb\/embeddings(_\d+)?\s+10x4\s+40\s+no\s+embedding table \(rare tokens would fade\)$/));
    expect(table).toContainEqual(expect.stringMatching(/^lstm\/recurrent_kernel(_\d+)?\s+4x16\s+64\s+yes\s+LSTM recurrent_kernel$/));
    expect(table).toContainEqual(expect.stringMatching(/^conv\/kernel(_\d+)?\s+3x3x1x2\s+18\s+no\s+exclude \/\^conv\/$/));
    expect(table).toContainEqual(expect.stringMatching(/^bn\/gamma(_\d+)?\s+2\s+2\s+no\s+normalization scale \(gamma\)$/));
    expect(table).toContainEqual(expect.stringMatching(/^head\/bias(_\d+)?\s+3\s+3\s+yes\s+include "head"$/));
    expect(table.at(-1)).toBe("6 of 15 variables decay (185 of 299 parameters)");
    m.dispose();
  });

  it("a pattern that matches nothing, or a predicate that does not answer true/false: one OptionsError naming each and listing the variables", () => {
    const m = zoo();
    const err = expectRefused(() => selectDecayed(m, { include: ["head", "Head"], exclude: [/^nothing/], predicate: (v) => (v.role === "bias" ? 1 : false) as boolean }), OptionsError, "INVALID_OPTIONS", [
      /include\.1: "Head" matches no layer or trainable variable; the trainable variables: emb\/embeddings(_\d+)?, lstm\/kernel(_\d+)?, /,
      "exclude.0: /^nothing/ matches no layer",
      "layers: emb, lstm, conv, bn, sep, ln, head",
      /predicate: must return true or false, returned 1 for lstm\/bias/,
    ]);
    expect(err.issues.map((i) => i.path)).toEqual(["include.1", "exclude.0", "predicate"]);
    m.dispose();
  });

  it("frozen layers are not listed; a nested model's weights belong to its inner layers; a global RegExp works on every variable", () => {
    const inner = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [3], units: 2, name: "inner_dense" }), tfl.layers.batchNormalization({ name: "inner_bn" })] });
    const frozen = tfl.layers.dense({ units: 2, name: "frozen", trainable: false });
    const input = tfl.input({ shape: [3] });
    const out = tfl.layers.dense({ units: 1, name: "out" }).apply(frozen.apply(inner.apply(input)) as tfl.SymbolicTensor) as tfl.SymbolicTensor;
    const m = tfl.model({ inputs: input, outputs: out });
    const s = selectDecayed(m, { exclude: [/kernel/g] });
    expect(s.entries.map((e) => [e.name, e.layer, e.layerClass, e.decays])).toEqual([
      ["inner_dense/kernel", "inner_dense", "Dense", false],
      ["inner_dense/bias", "inner_dense", "Dense", false],
      ["inner_bn/gamma", "inner_bn", "BatchNormalization", false],
      ["inner_bn/beta", "inner_bn", "BatchNormalization", false],
      ["out/kernel", "out", "Dense", false],
      ["out/bias", "out", "Dense", false],
    ]);
    expect(s.entries.map((e) => e.why)).toContain("exclude /kernel/g");
    m.dispose();
  });

  it("the default rule for a custom layer's weights: a matrix is a kernel, a vector a bias or gain", () => {
    const c = (role: string, shape: number[]): DecayCandidate => ({ name: `my/${role}`, layer: "my", layerClass: "MyLayer", role, shape });
    expect(defaultRule(c("w", [3, 4]))).toEqual({ decays: true, why: '"w" of MyLayer, rank 2: a kernel' });
    expect(defaultRule(c("scale", [4]))).toEqual({ decays: false, why: '"scale" of MyLayer, rank 1: a bias or gain' });
    expect(defaultRule(c("alpha", [3, 4]))).toEqual({ decays: false, why: "PReLU slope" });
  });
});

describe("in a run", () => {
  it("describe(model) prints the table; at beforeFit the info line counts what decays; only those variables change by the factor", async () => {
    const m = zoo();
    const decay = new WeightDecay({ weightDecay: 0.1 });
    expect(decay.describe(m)).toBe(formatSelection(selectDecayed(m)));
    const xs = tf.tensor2d([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [0, 0, 1, 1, 2, 2], [9, 8, 7, 9, 8, 7]]);
    const ys = tf.tensor2d([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]]);
    const info: string[] = [];
    // zero gradients: only the decay moves anything (SGD's own step is 0), by 1 - 0.5 * 0.1
    const zeroGrad: Callback = { name: "ZeroGrad", afterGradients: (ctx) => Object.fromEntries(Object.entries(ctx.grads!).map(([k, g]) => [k, tf.zerosLike(g)])) };
    const before = new Map(m.trainableWeights.map((w) => [w.name, Array.from(w.read().dataSync())]));
    await new Trainer({ model: m, optimizer: tf.train.sgd(0.5), loss: "meanSquaredError", logger: { ...silentLogger, info: (s: string) => void info.push(s) }, callbacks: [decay, zeroGrad] }).fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 4 }) });
    expect(info).toEqual([expect.stringMatching(/^WeightDecay: 6 of 15 variables decay \(200 of 299 parameters\); weight decay 0\.1 x the step's learning rate/)]);
    for (const w of m.trainableWeights) {
      const now = Array.from(w.read().dataSync());
      const was = before.get(w.name)!;
      const decays = selectDecayed(m).decayed.some((v) => v.name === w.name);
      now.forEach((v, i) => expect(v, w.name).toBeCloseTo(decays ? was[i]! * 0.95 : was[i]!, 6));
    }
    tf.dispose([xs, ys]);
    m.dispose();
  });
});
