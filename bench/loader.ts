/**
 * Is the data loader ever the bottleneck? Batches/s of @fitloop/datasets' DataLoader versus training
 * steps/s of an MLP on the wasm backend, batch 64, MNIST-sized samples (the 10,000 embedded digits).
 *
 *   loader                 DataLoader over the digits, shuffled, flattened to [64, 784]: gather, tf.tensor, dispose
 *   loader+shift+noise     the same with randomShift({maxShift: 2}) and gaussianNoise({std: 0.1}) per batch
 *   train step (wasm MLP)  784-256-128-10, Adam, sparse cross-entropy: computeGradients + applyGradients via
 *                          optimizer.minimize on a fixed batch, one `await loss.data()` per step (as the loop reads it)
 *   fit, loader+aug        (for reference) fitloop's Trainer consuming loader+shift+noise, steps/s of a whole fit
 *
 * Loader arms iterate `batches()` with `for await` (the path the Trainer uses, prefetch on) and
 * dispose every batch. Arms run interleaved round by round (another process may share the 2 cores);
 * medians. R = min(loader, loader+shift+noise batches/s) / train steps/s; target R >= 20.
 * The last line is one JSON record.
 *
 *   pnpm run bench:loader     # env: ROUNDS (7), STEPS (40)
 */
import "reflect-metadata";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
// The root package does not depend on the workspace packages: import their source entries directly.
import { Trainer, resolveLoss, seeded, silentLogger, useBackend, type Batch, type DataSource } from "../packages/core/src/index.js";
import { DataLoader, gaussianNoise, randomShift } from "../packages/datasets/src/index.js";
import { loadEmbeddedMnist } from "../packages/datasets/src/node/index.js";

const BATCH = 64;
const intEnv = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
};
const ROUNDS = intEnv("ROUNDS", 7);
const STEPS = intEnv("STEPS", 40);

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function mlp(): tfl.LayersModel {
  return seeded(1, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [784], units: 256, activation: "relu" }));
    m.add(tfl.layers.dense({ units: 128, activation: "relu" }));
    m.add(tfl.layers.dense({ units: 10, activation: "softmax" }));
    return m;
  });
}

interface Arm {
  name: string;
  unit: "batches/s" | "steps/s";
  /** Runs once; returns the rate. */
  run(round: number): Promise<number>;
  dispose(): void;
}

/** One epoch of the loader (156 batches), every batch turned into tensors and disposed. */
function loaderArm(name: string, loader: DataLoader): Arm {
  return {
    name,
    unit: "batches/s",
    async run(round) {
      const start = performance.now();
      let n = 0;
      for await (const b of loader.batches({ epoch: round, batchIndex: 0 }) as AsyncIterable<Batch>) {
        tf.dispose([b.xs, b.ys]);
        n++;
      }
      return n / ((performance.now() - start) / 1000);
    },
    dispose: () => loader.dispose(),
  };
}

function stepArm(loader: DataLoader): Arm {
  const model = mlp();
  const optimizer = tf.train.adam(1e-3);
  const loss = resolveLoss("sparseCategoricalCrossentropy");
  const { xs, ys } = loader.batch(0, 0);
  return {
    name: "train step (wasm MLP)",
    unit: "steps/s",
    async run() {
      const start = performance.now();
      for (let s = 0; s < STEPS; s++) {
        const value = optimizer.minimize(() => tf.mean(loss(ys, model.apply(xs, { training: true }) as tf.Tensor)) as tf.Scalar, true)!;
        await value.data();
        value.dispose();
      }
      return STEPS / ((performance.now() - start) / 1000);
    },
    dispose() {
      tf.dispose([xs, ys]);
      model.dispose();
      optimizer.dispose();
    },
  };
}

/** Reference: a whole Trainer.fit over 32 batches of loader+shift+noise. */
function fitArm(loader: DataLoader): Arm {
  const model = mlp();
  const optimizer = tf.train.adam(1e-3);
  const trainer = new Trainer({ model, optimizer, loss: "sparseCategoricalCrossentropy", logger: silentLogger });
  const source: DataSource = { batchesPerEpoch: 32, batches: (c) => limit(loader.batches(c) as AsyncIterable<Batch>, 32) };
  return {
    name: "fit, loader+shift+noise",
    unit: "steps/s",
    async run() {
      const start = performance.now();
      const r = await trainer.fit({ epochs: 1, train: source });
      return r.state.step / ((performance.now() - start) / 1000);
    },
    dispose() {
      model.dispose();
      optimizer.dispose();
    },
  };
}

async function* limit(it: AsyncIterable<Batch>, n: number): AsyncGenerator<Batch> {
  let i = 0;
  for await (const b of it) {
    yield b;
    if (++i === n) break;
  }
}

async function main(): Promise<void> {
  const backend = await useBackend("wasm");
  const threads = (await import("@tensorflow/tfjs-backend-wasm")).getThreadsCount();
  const t0 = performance.now();
  const train = loadEmbeddedMnist();
  process.stderr.write(`backend ${backend} (${threads} thread${threads === 1 ? "" : "s"}), tfjs ${tf.version_core}, batch ${BATCH}, ${train.size} embedded digits loaded in ${(performance.now() - t0).toFixed(0)} ms\n`);
  const plain = new DataLoader(train, { batchSize: BATCH, seed: 1, flatten: true, dropLast: true });
  const aug = () => new DataLoader(train, { batchSize: BATCH, seed: 1, flatten: true, dropLast: true, transforms: [randomShift({ maxShift: 2 }), gaussianNoise({ std: 0.1, clip: [0, 1] })] });
  const arms = [loaderArm("loader", plain), loaderArm("loader+shift+noise", aug()), stepArm(plain), fitArm(aug())];

  for (const a of arms) await a.run(0); // warm-up: kernels, XNNPACK caches, optimizer slots, JIT
  const rates = new Map<string, number[]>(arms.map((a) => [a.name, []]));
  const started = performance.now();
  for (let round = 1; round <= ROUNDS; round++) {
    const line: string[] = [];
    for (const a of arms) {
      const r = await a.run(round);
      rates.get(a.name)!.push(r);
      line.push(`${a.name} ${r.toFixed(0)}`);
    }
    process.stderr.write(`round ${round}/${ROUNDS}: ${line.join(", ")}\n`);
  }
  const seconds = (performance.now() - started) / 1000;
  for (const a of arms) a.dispose();

  const med = (name: string) => median(rates.get(name)!);
  const steps = med("train step (wasm MLP)");
  const header = ["arm", "median", "unit", "min", "max", "ms each", "vs train step"];
  const table = arms.map((a) => {
    const v = rates.get(a.name)!;
    return [a.name, med(a.name).toFixed(0), a.unit, Math.min(...v).toFixed(0), Math.max(...v).toFixed(0), (1000 / med(a.name)).toFixed(3), a.unit === "batches/s" ? `${(med(a.name) / steps).toFixed(1)}x` : ""];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const fmt = (row: string[]) => row.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  console.log(fmt(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of table) console.log(fmt(row));
  const loaderRate = med("loader");
  const augRate = med("loader+shift+noise");
  const ratio = Math.min(loaderRate, augRate) / steps;
  console.log("");
  console.log(`R = min(loader, loader+shift+noise batches/s) / train steps/s = ${ratio.toFixed(1)} (target >= 20)`);
  console.log(`wasm backend, ${threads} thread${threads === 1 ? "" : "s"} (as tfjs-wasm reports), batch ${BATCH}, 784 features, medians of ${ROUNDS} interleaved rounds, ${seconds.toFixed(0)} s`);
  const r2 = (x: number) => Math.round(x * 100) / 100;
  console.log(
    JSON.stringify({ bench: "loader", ratio: r2(ratio), loader_batches_per_s: r2(loaderRate), loader_aug_batches_per_s: r2(augRate), train_steps_per_s: r2(steps), fit_aug_steps_per_s: r2(med("fit, loader+shift+noise")) }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
