import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { OptionsError, seeded } from "@fitloop/core";
import { expectNoLeaks } from "@fitloop/core/testing";
import { initialize, type InitEntry } from "./index.js";
import { expectVariance, gramError } from "./stats.fixture.js";

type Model = tfl.LayersModel;
const sequential = (...layers: tfl.layers.Layer[]): Model =>
  seeded(1, () => {
    const m = tfl.sequential();
    for (const l of layers) m.add(l);
    return m;
  });
const valuesOf = (m: Model, name: string) => m.weights.find((w) => w.name === name)!.read();
const entry = (entries: readonly InitEntry[], layer: string, role: string) => entries.find((e) => e.layer === layer && e.role === role)!;
// tfjs 4.22's own orthogonal initializer needs tfjs's chained ops, which tfjs-core alone does not register
const rnn = { recurrentInitializer: "zeros" } as const;

describe("initialize: the variance of every kernel is its formula's, over several layer types and shapes", () => {
  it("Dense, Conv1D/2D/3D, DepthwiseConv2D, SeparableConv2D, LSTM, GRU: fans as Keras/PyTorch, std from the scheme", () => {
    const models = [
      sequential(tfl.layers.dense({ name: "d1", inputShape: [512], units: 256, activation: "relu" }), tfl.layers.dense({ name: "d2", units: 128, activation: "tanh" }), tfl.layers.dense({ name: "d3", units: 64, activation: "selu" })),
      sequential(tfl.layers.conv1d({ name: "c1", inputShape: [16, 64], kernelSize: 7, filters: 128, activation: "relu" })),
      sequential(tfl.layers.conv2d({ name: "c2", inputShape: [8, 8, 64], kernelSize: 3, filters: 96 }), tfl.layers.activation({ activation: "relu" })),
      sequential(tfl.layers.conv3d({ name: "c3", inputShape: [4, 4, 4, 16], kernelSize: 3, filters: 48, activation: "sigmoid" })),
      sequential(tfl.layers.depthwiseConv2d({ name: "dw", inputShape: [8, 8, 64], kernelSize: 5, depthMultiplier: 4, activation: "relu" })),
      sequential(tfl.layers.separableConv2d({ name: "sep", inputShape: [8, 8, 32], kernelSize: 3, filters: 256, depthMultiplier: 2, activation: "relu" })),
      sequential(tfl.layers.lstm({ name: "lstm", inputShape: [5, 64], units: 64, ...rnn }), tfl.layers.dense({ name: "out", units: 3, activation: "softmax" })),
      sequential(tfl.layers.gru({ name: "gru", inputShape: [5, 96], units: 32, ...rnn })),
    ];
    const entries = models.flatMap((m, i) => initialize(m, { seed: 10 + i }).entries.map((e) => ({ e, m })));
    const expected: Record<string, [string, number, number]> = {
      "d1/kernel": ["he", 512, 2 / 512],
      "d2/kernel": ["glorot", 256, 2 / (256 + 128)],
      "d3/kernel": ["lecun", 128, 1 / 128],
      "c1/kernel": ["he", 7 * 64, 2 / (7 * 64)],
      "c2/kernel": ["he", 9 * 64, 2 / (9 * 64)], // relu from the Activation layer after it
      "c3/kernel": ["glorot", 27 * 16, 2 / (27 * 16 + 27 * 48)],
      "dw/depthwise_kernel": ["he", 25, 2 / 25],
      "sep/depthwise_kernel": ["glorot", 9, 2 / (9 + 18)], // linear: the pointwise kernel follows it
      "sep/pointwise_kernel": ["he", 64, 2 / 64],
      "lstm/kernel": ["glorot", 64, 2 / (64 + 256)], // tanh cell
      "out/kernel": ["glorot", 64, 2 / 67],
      "gru/kernel": ["glorot", 96, 2 / (96 + 96)],
    };
    for (const [key, [scheme, fanIn, variance]] of Object.entries(expected)) {
      const [layer, role] = key.split("/") as [string, string];
      const found = entries.find(({ e }) => e.layer === layer && e.role === role)!;
      expect(found, key).toBeDefined();
      expect(found.e.init, key).toBe(scheme);
      expect(found.e.fanIn, key).toBe(fanIn);
      expect(found.e.std! ** 2, key).toBeCloseTo(variance, 12);
      expectVariance(valuesOf(found.m, found.e.variable), variance, key);
    }
    models.forEach((m) => m.dispose());
  });

  it("recurrent kernels: one orthogonal block per gate (W_g^T W_g = I); biases 0, an LSTM's forget gate 1 with unitForgetBias", () => {
    const m = sequential(tfl.layers.lstm({ name: "l", inputShape: [4, 8], units: 16, returnSequences: true, unitForgetBias: true, ...rnn }), tfl.layers.gru({ name: "g", units: 12, ...rnn }));
    const report = initialize(m, { seed: 3 });
    for (const [layer, units, gates] of [["l", 16, 4], ["g", 12, 3]] as const) {
      const e = entry(report.entries, layer, "recurrent_kernel");
      expect(e.init).toBe("orthogonal");
      const w = valuesOf(m, e.variable);
      for (let g = 0; g < gates; g++) {
        const block = tf.tidy(() => tf.slice(w, [0, g * units], [units, units]).dataSync());
        expect(gramError(block, units, units), `${layer} gate ${g}`).toBeLessThan(1e-5);
      }
    }
    const lstmBias = Array.from(valuesOf(m, entry(report.entries, "l", "bias").variable).dataSync());
    expect(lstmBias).toEqual([...Array(16).fill(0), ...Array(16).fill(1), ...Array(32).fill(0)]);
    expect(Array.from(valuesOf(m, entry(report.entries, "g", "bias").variable).dataSync()).every((v) => v === 0)).toBe(true);
    m.dispose();
    // wrappers hold their inner layer's weights: Bidirectional(SimpleRNN) both directions, TimeDistributed(Dense relu)
    const wrapped = sequential(
      tfl.layers.bidirectional({ name: "bi", layer: tfl.layers.simpleRNN({ units: 8, returnSequences: true, ...rnn }) as unknown as tfl.RNN, inputShape: [5, 4] }),
      tfl.layers.timeDistributed({ name: "td", layer: tfl.layers.dense({ units: 6, activation: "relu" }) }),
    );
    const w = initialize(wrapped, { seed: 4 }).entries;
    expect(w.filter((e) => e.layer === "bi").map((e) => `${e.layerClass} ${e.role} ${e.init}`)).toEqual([
      "Bidirectional(SimpleRNN) kernel glorot",
      "Bidirectional(SimpleRNN) recurrent_kernel orthogonal",
      "Bidirectional(SimpleRNN) bias zeros",
      "Bidirectional(SimpleRNN) kernel glorot",
      "Bidirectional(SimpleRNN) recurrent_kernel orthogonal",
      "Bidirectional(SimpleRNN) bias zeros",
    ]);
    for (const e of w.filter((x) => x.role === "recurrent_kernel")) expect(gramError(valuesOf(wrapped, e.variable).dataSync(), 8, 8)).toBeLessThan(1e-5);
    expect(entry(w, "td", "kernel")).toMatchObject({ layerClass: "TimeDistributed(Dense)", init: "he", fanIn: 16 });
    wrapped.dispose();
  });

  it("He keeps the activation variance of a 10-layer ReLU MLP roughly constant; Glorot halves it every layer", () => {
    const depth = 10;
    const width = 256;
    const build = () => sequential(...Array.from({ length: depth }, (_, i) => tfl.layers.dense({ ...(i === 0 ? { inputShape: [width] } : {}), units: width, activation: "relu" })));
    const x = seeded(5, () => tf.randomNormal([256, width]));
    const preActivationVariance = (m: Model) =>
      tf.tidy(() => {
        const out: number[] = [];
        let h: tf.Tensor = x;
        for (const layer of m.layers) {
          const [kernel, bias] = layer.getWeights() as [tf.Tensor2D, tf.Tensor1D];
          const z = tf.add(tf.matMul(h as tf.Tensor2D, kernel), bias);
          out.push(tf.moments(z).variance.dataSync()[0]!);
          h = tf.relu(z);
        }
        return out;
      });
    const he = build();
    const heReport = initialize(he, { seed: 1 }); // auto: relu -> He
    expect(heReport.entries.filter((e) => e.role === "kernel").every((e) => e.init === "he")).toBe(true);
    const heVar = preActivationVariance(he);
    const glorot = build();
    initialize(glorot, { seed: 1, scheme: "glorot" });
    const glorotVar = preActivationVariance(glorot);
    for (const v of heVar) expect(v / heVar[0]!).toBeGreaterThan(0.5);
    for (const v of heVar) expect(v / heVar[0]!).toBeLessThan(2);
    expect(glorotVar[depth - 1]! / glorotVar[0]!).toBeLessThan(0.01); // ~2^-9
    tf.dispose([x]);
    he.dispose();
    glorot.dispose();
  });
});

describe("initialize: what it picks, and the report", () => {
  it("auto looks at the next layer: Dense -> BatchNorm -> ReLU is He, Dense -> LeakyReLU(0.1) is He with sqrt(2/1.01), softmax output Glorot", () => {
    const m = sequential(
      tfl.layers.dense({ name: "a", inputShape: [32], units: 64, useBias: false }),
      tfl.layers.batchNormalization({ name: "bn" }),
      tfl.layers.reLU(),
      tfl.layers.dense({ name: "b", units: 64 }),
      tfl.layers.leakyReLU({ alpha: 0.1 }),
      tfl.layers.dense({ name: "c", units: 64 }), // no activation: linear
      tfl.layers.layerNormalization({ name: "ln" }),
      tfl.layers.dense({ name: "out", units: 4, activation: "softmax" }),
    );
    const { entries } = initialize(m, { seed: 2, distribution: "uniform" });
    expect(entry(entries, "a", "kernel")).toMatchObject({ init: "he", distribution: "uniform", fanIn: 32 });
    expect(entry(entries, "a", "kernel").why).toMatch(/relu \(layer re_lu/);
    expect(entry(entries, "b", "kernel").gain).toBeCloseTo(Math.sqrt(2 / 1.01), 12);
    expect(entry(entries, "c", "kernel").init).toBe("glorot");
    expect(entry(entries, "out", "kernel").init).toBe("glorot");
    for (const [role, value] of [["gamma", 1], ["beta", 0], ["moving_mean", 0], ["moving_variance", 1]] as const) {
      expect(Array.from(valuesOf(m, entry(entries, "bn", role).variable).dataSync()).every((v) => v === value), role).toBe(true);
    }
    expect(entry(entries, "ln", "gamma").init).toBe("ones");
    m.dispose();
  });

  it("an explicit scheme applies to every kernel; orthogonal takes the activation's gain; embeddings are kept and listed", () => {
    const m = sequential(tfl.layers.embedding({ name: "emb", inputDim: 50, outputDim: 16, inputLength: 4 }), tfl.layers.flatten(), tfl.layers.dense({ name: "h", units: 64, activation: "relu" }), tfl.layers.dense({ name: "o", units: 2, activation: "tanh" }));
    const before = Array.from(valuesOf(m, m.weights[0]!.name).dataSync());
    const { entries } = initialize(m, { seed: 4, scheme: "orthogonal" });
    expect(entry(entries, "emb", "embeddings")).toMatchObject({ init: "kept" });
    expect(Array.from(valuesOf(m, m.weights[0]!.name).dataSync())).toEqual(before);
    expect(entry(entries, "h", "kernel")).toMatchObject({ init: "orthogonal", gain: Math.SQRT2 });
    expect(entry(entries, "o", "kernel").gain).toBeCloseTo(5 / 3, 12);
    expect(gramError(valuesOf(m, entry(entries, "h", "kernel").variable).dataSync(), 64, 64, Math.SQRT2)).toBeLessThan(1e-5);
    const lecun = initialize(m, { seed: 4, scheme: "lecun", only: ["h"] });
    expect(lecun.entries.map((e) => `${e.role}:${e.init}`)).toEqual(["kernel:lecun", "bias:zeros"]);
    m.dispose();
  });

  it("is deterministic, and a layer's values do not depend on which other layers were selected", () => {
    const build = () => sequential(tfl.layers.dense({ name: "p", inputShape: [20], units: 30, activation: "relu" }), tfl.layers.dense({ name: "q", units: 10 }));
    const [a, b, c] = [build(), build(), build()];
    initialize(a, { seed: 7 });
    initialize(b, { seed: 7 });
    const qBefore = Array.from(c.getWeights()[2]!.dataSync());
    initialize(c, { seed: 7, exclude: ["q"] });
    expect(a.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(b.getWeights().map((w) => Array.from(w.dataSync())));
    expect(Array.from(c.getWeights()[0]!.dataSync())).toEqual(Array.from(a.getWeights()[0]!.dataSync()));
    expect(Array.from(c.getWeights()[2]!.dataSync())).toEqual(qBefore);
    initialize(b, { seed: 8 });
    expect(Array.from(b.getWeights()[0]!.dataSync())).not.toEqual(Array.from(a.getWeights()[0]!.dataSync()));
    [a, b, c].forEach((m) => m.dispose());
  });

  it("prints a table: one line per variable with scheme, fans, std and why", () => {
    const m = sequential(tfl.layers.conv2d({ name: "conv", inputShape: [8, 8, 3], kernelSize: 3, filters: 8, activation: "relu" }), tfl.layers.flatten(), tfl.layers.dense({ name: "head", units: 10, activation: "softmax" }));
    const text = String(initialize(m, { seed: 1 }));
    expect(text.split("\n")).toHaveLength(2 + 4);
    expect(text).toMatch(/^initialize: scheme auto, seed 1: 4 of 4 variables set in 2 layers$/m);
    expect(text).toMatch(/conv\/kernel\s+3x3x3x8\s+he normal\s+27\/72\s+0\.2722\s+relu -> He/);
    expect(text).toMatch(/head\/bias\s+10\s+zeros\s+bias: 0/);
    m.dispose();
  });

  it("bad options: an OptionsError naming each (unknown scheme, unknown layer names, no seed, unknown keys)", () => {
    const m = sequential(tfl.layers.dense({ name: "only", inputShape: [4], units: 2 }));
    const issues = (o: unknown) => {
      try {
        initialize(m, o as Parameters<typeof initialize>[1]);
      } catch (e) {
        expect(e).toBeInstanceOf(OptionsError);
        return (e as OptionsError).issues.map((i) => `${i.path}: ${i.message}`).join("\n");
      }
      throw new Error("accepted");
    };
    expect(issues({ seed: 1, scheme: "kaiming" })).toMatch(/^scheme: must be "auto"/);
    expect(issues({ seed: 1, only: ["nope"], exclude: ["gone"] })).toMatch(/only\.0: no layer named "nope"; the model's layers: only\nexclude\.0: no layer named "gone"/);
    expect(issues({})).toMatch(/^seed: /);
    expect(issues({ seed: 1, distributon: "normal" })).toMatch(/did you mean "distribution"/);
    m.dispose();
  });

  it("leaks no tensor", async () => {
    const m = sequential(tfl.layers.lstm({ inputShape: [3, 4], units: 4, ...rnn }), tfl.layers.dense({ units: 2 }));
    await expectNoLeaks(() => initialize(m, { seed: 1 }));
    m.dispose();
  });
});
