/**
 * fitloop's loop versus tfjs-layers' `model.fit`, on the wasm backend, for an MLP and a small CNN.
 *
 *   (a) model.fit        compiled model, `fit(xs, ys, {batchSize: 64, epochs: 1, shuffle: false, verbose: 0})`
 *   (b) fitloop          `new Trainer({model, optimizer, loss, metrics: ['acc']}).fit({epochs: 1, train: tensorData(...)})`
 *   (c) fitloop+20 no-op (b) with 20 plugins, each with an empty function on every one of the 18 events
 *
 * Same data and batch size for every arm, sparse categorical cross-entropy, Adam, accuracy on every
 * arm (model.fit computes it when compiled with `metrics: ['acc']`). Each arm has its own model copy
 * (identically initialised) and its own optimizer. One warm-up epoch per arm, then interleaved
 * rounds (a, b, c | b, c, a | c, a, b | ...: the starting arm rotates so no arm always follows the
 * same one); medians of samples/s over whole `fit` calls (setup included). The table also shows the
 * median of the per-round (paired) ratios, which is less sensitive to drift of the machine.
 * The last line is one JSON record (ratios from the medians of samples/s).
 *
 *   pnpm run bench:loop-vs-fit     # env: MLP_ROUNDS (15), CNN_ROUNDS (11), MLP_SAMPLES (2048), CNN_SAMPLES (512)
 */
import "reflect-metadata";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
// The root package does not depend on @fitloop/core, so the bare specifier does not resolve from
// bench/; import the source entry directly (what the `@fitloop/source` condition would pick).
import { EVENTS, Trainer, tensorData, useBackend, type Callback } from "../packages/core/src/index.js";
import { printTable } from "./models.js";

const BATCH = 64;
const CLASSES = 10;
const PLUGINS = 20;
const intEnv = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
};

type ModelKind = "mlp" | "cnn";
type ArmName = "model.fit" | "fitloop" | `fitloop+${number} no-op plugins`;

interface Spec {
  kind: ModelKind;
  samples: number;
  rounds: number;
  inputShape: number[];
  build(): tfl.LayersModel;
}

const SPECS: Spec[] = [
  {
    kind: "mlp",
    samples: intEnv("MLP_SAMPLES", 2048),
    rounds: intEnv("MLP_ROUNDS", 15),
    inputShape: [784],
    build() {
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ inputShape: [784], units: 256, activation: "relu" }));
      m.add(tfl.layers.dropout({ rate: 0.2 }));
      m.add(tfl.layers.dense({ units: 128, activation: "relu" }));
      m.add(tfl.layers.dense({ units: CLASSES, activation: "softmax" }));
      return m;
    },
  },
  {
    kind: "cnn",
    samples: intEnv("CNN_SAMPLES", 512),
    rounds: intEnv("CNN_ROUNDS", 11),
    inputShape: [28, 28, 1],
    build() {
      const m = tfl.sequential();
      m.add(tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: "relu" }));
      m.add(tfl.layers.batchNormalization());
      m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
      m.add(tfl.layers.conv2d({ filters: 64, kernelSize: 3, activation: "relu" }));
      m.add(tfl.layers.batchNormalization());
      m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
      m.add(tfl.layers.flatten());
      m.add(tfl.layers.dense({ units: 128, activation: "relu" }));
      m.add(tfl.layers.dense({ units: CLASSES, activation: "softmax" }));
      return m;
    },
  },
];

/** 20 plugins, each an object with an empty function on every event and a unique name. */
function noopPlugins(n: number): Callback[] {
  const out: Callback[] = [];
  for (let i = 0; i < n; i++) {
    const p: Record<string, unknown> = { name: `noop-${i}` };
    for (const event of EVENTS) p[event] = () => {};
    out.push(p as Callback);
  }
  return out;
}

/** A fresh model with the same weights as `source` (weights are copied, so the copies start identical). */
function copyOf(spec: Spec, source: tfl.LayersModel): tfl.LayersModel {
  const m = spec.build();
  m.setWeights(source.getWeights());
  return m;
}

interface Arm {
  name: ArmName;
  run(): Promise<void>;
  dispose(): void;
}

function arms(spec: Spec, xs: tf.Tensor, ys: tf.Tensor): Arm[] {
  const base = spec.build();
  const fitModel = copyOf(spec, base);
  fitModel.compile({ optimizer: tf.train.adam(1e-3), loss: "sparseCategoricalCrossentropy", metrics: ["acc"] });

  const loopArm = (name: ArmName, callbacks: Callback[]): Arm => {
    const model = copyOf(spec, base);
    const optimizer = tf.train.adam(1e-3);
    return {
      name,
      async run() {
        const trainer = new Trainer({ model, optimizer, loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks });
        const r = await trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: BATCH, shuffle: false }) });
        if (r.outcome.status !== "completed") throw new Error(`${name}: fit ${r.outcome.status}`);
      },
      dispose() {
        model.dispose();
        optimizer.dispose();
      },
    };
  };

  const list: Arm[] = [
    {
      name: "model.fit",
      async run() {
        const h = await fitModel.fit(xs, ys, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
        if (!Number.isFinite(h.history["loss"]?.[0] as number)) throw new Error("model.fit: no finite loss");
      },
      dispose() {
        fitModel.optimizer.dispose();
        fitModel.dispose();
      },
    },
    loopArm("fitloop", []),
    loopArm(`fitloop+${PLUGINS} no-op plugins`, noopPlugins(PLUGINS)),
  ];
  base.dispose();
  return list;
}

/** Random but fixed inputs in [0, 1) and integer labels of shape [n, 1] (float32, as model.fit takes them). */
function data(spec: Spec): { xs: tf.Tensor; ys: tf.Tensor } {
  const xs = tf.randomUniform([spec.samples, ...spec.inputShape], 0, 1, "float32", 1);
  const ys = tf.tidy(() => tf.cast(tf.floor(tf.randomUniform([spec.samples, 1], 0, CLASSES, "float32", 2)), "float32"));
  return { xs, ys };
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Row {
  kind: ModelKind;
  arm: ArmName;
  median: number;
  samples: number[];
}

async function benchModel(spec: Spec): Promise<Row[]> {
  const { xs, ys } = data(spec);
  const list = arms(spec, xs, ys);
  const rates = new Map<ArmName, number[]>(list.map((a) => [a.name, []]));
  const t0 = performance.now();
  for (const a of list) await a.run(); // warm-up: kernels, XNNPACK caches, optimizer slots
  process.stderr.write(`${spec.kind}: warm-up ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  for (let round = 0; round < spec.rounds; round++) {
    const line: string[] = [];
    const order = list.map((_, i) => list[(i + round) % list.length]!);
    for (const a of order) {
      const start = performance.now();
      await a.run();
      const rate = spec.samples / ((performance.now() - start) / 1000);
      rates.get(a.name)!.push(rate);
      line.push(`${a.name} ${rate.toFixed(0)}`);
    }
    process.stderr.write(`${spec.kind} round ${round + 1}/${spec.rounds}: ${line.join(", ")} samples/s\n`);
  }
  for (const a of list) a.dispose();
  tf.dispose([xs, ys]);
  return list.map((a) => ({ kind: spec.kind, arm: a.name, median: median(rates.get(a.name)!), samples: rates.get(a.name)! }));
}

/**
 * The same two fitloop arms on a tiny model (dense 4->2, batch 8), where the loop itself is most of
 * the step: what 20 no-op plugins cost per step, in microseconds, without the noise of a real model.
 */
async function dispatchCost(): Promise<{ baseUs: number; pluggedUs: number; deltaUs: number }> {
  const n = 2048;
  const steps = n / 8;
  const xs = tf.randomUniform([n, 4], 0, 1, "float32", 3);
  const ys = tf.tidy(() => tf.floor(tf.randomUniform([n, 1], 0, 2, "float32", 4)));
  const model = tfl.sequential();
  model.add(tfl.layers.dense({ inputShape: [4], units: 2, activation: "softmax" }));
  const optimizer = tf.train.adam(1e-3);
  const plugins = noopPlugins(PLUGINS);
  const run = async (callbacks: Callback[]): Promise<number> => {
    const start = performance.now();
    await new Trainer({ model, optimizer, loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks }).fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8, shuffle: false }) });
    return ((performance.now() - start) * 1000) / steps;
  };
  await run([]);
  await run(plugins);
  const base: number[] = [];
  const plugged: number[] = [];
  const deltas: number[] = [];
  for (let round = 0; round < 21; round++) {
    let b: number;
    let c: number;
    if (round % 2 === 0) {
      b = await run([]);
      c = await run(plugins);
    } else {
      c = await run(plugins);
      b = await run([]);
    }
    base.push(b);
    plugged.push(c);
    deltas.push(c - b);
  }
  model.dispose();
  optimizer.dispose();
  tf.dispose([xs, ys]);
  return { baseUs: median(base), pluggedUs: median(plugged), deltaUs: median(deltas) };
}

async function main(): Promise<void> {
  const backend = await useBackend("wasm");
  process.stderr.write(`backend ${backend}, tfjs ${tf.version_core}, batch ${BATCH}\n`);
  const rows: Row[] = [];
  const started = performance.now();
  for (const spec of SPECS) rows.push(...(await benchModel(spec)));
  const dispatch = await dispatchCost();
  const seconds = (performance.now() - started) / 1000;

  const get = (kind: ModelKind, arm: ArmName): number => rows.find((r) => r.kind === kind && r.arm === arm)!.median;
  const plugged: ArmName = `fitloop+${PLUGINS} no-op plugins`;
  const ratio = (kind: ModelKind) => get(kind, "fitloop") / get(kind, "model.fit");
  const overhead = (kind: ModelKind) => 1 - get(kind, plugged) / get(kind, "fitloop");
  const mlpRatio = ratio("mlp");
  const cnnRatio = ratio("cnn");
  const fMlp = overhead("mlp");
  const fCnn = overhead("cnn");
  const fMean = (fMlp + fCnn) / 2;

  // Paired: the ratio of the two arms within each round, then the median over rounds.
  const rateOf = (kind: ModelKind, arm: ArmName) => rows.find((r) => r.kind === kind && r.arm === arm)!.samples;
  const paired = (kind: ModelKind, num: ArmName, den: ArmName) => median(rateOf(kind, num).map((v, i) => v / rateOf(kind, den)[i]!));

  const header = ["model", "arm", "median samples/s", "min", "max", "ratio (of medians)", "paired ratio"];
  const table = rows.map((r) => {
    if (r.arm === "model.fit") return [r.kind, r.arm, r.median.toFixed(0), Math.min(...r.samples).toFixed(0), Math.max(...r.samples).toFixed(0), "1.000 (base)", ""];
    const den: ArmName = r.arm === "fitloop" ? "model.fit" : "fitloop";
    const rel = r.arm === "fitloop" ? `${ratio(r.kind).toFixed(3)} vs model.fit` : `${(r.median / get(r.kind, "fitloop")).toFixed(3)} vs fitloop, F=${overhead(r.kind).toFixed(4)}`;
    return [r.kind, r.arm, r.median.toFixed(0), Math.min(...r.samples).toFixed(0), Math.max(...r.samples).toFixed(0), rel, paired(r.kind, r.arm, den).toFixed(3)];
  });
  printTable(header, table);
  console.log("");
  console.log(`ratio = fitloop / model.fit samples/s (target: mlp >= 1.05, cnn >= 0.98)`);
  console.log(`overhead_20_noop_plugins = F = 1 - (fitloop+${PLUGINS} no-op) / fitloop, reported as the MEAN of MLP and CNN: ${fMean.toFixed(4)} (MLP ${fMlp.toFixed(4)}, CNN ${fCnn.toFixed(4)}; target <= 0.01)`);
  const mlpStepUs = (BATCH / get("mlp", "fitloop")) * 1e6;
  console.log(
    `  direct estimate (tiny model, batch 8, paired): fitloop ${dispatch.baseUs.toFixed(0)} us/step, +${PLUGINS} no-op plugins ${dispatch.pluggedUs.toFixed(0)} us/step, ` +
      `difference ${dispatch.deltaUs.toFixed(1)} us/step = ${((100 * dispatch.deltaUs) / mlpStepUs).toFixed(3)} % of an MLP step (${(mlpStepUs / 1000).toFixed(1)} ms); ` +
      `the end-to-end F above is within its noise (per-round spread, min..max, is several %)`,
  );
  console.log(`wasm backend (single-threaded), batch ${BATCH}, MLP ${SPECS[0]!.samples} / CNN ${SPECS[1]!.samples} random samples, medians of ${SPECS[0]!.rounds} / ${SPECS[1]!.rounds} interleaved rounds, ${seconds.toFixed(0)} s`);
  const r4 = (x: number) => Math.round(x * 10_000) / 10_000;
  console.log(JSON.stringify({ bench: "loop-vs-fit", mlp_ratio: r4(mlpRatio), cnn_ratio: r4(cnnRatio), overhead_20_noop_plugins: r4(fMean) }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
