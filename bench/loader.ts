/**
 * Is the data loader ever the bottleneck? Batches/s of @fitloop/datasets' DataLoader versus training
 * steps/s of an MLP on the wasm backend, batch 64, MNIST-sized samples (the 10,000 embedded digits).
 *
 *   loader                 DataLoader over the digits, shuffled, flattened to [64, 784]: gather, tf.tensor, dispose
 *   loader+shift+noise     the same with randomShift({maxShift: 2}) and gaussianNoise({std: 0.1}) per batch
 *   ... (host)             loader+shift+noise on the host path (@fitloop/wasm's FitloopAugmentPost unregistered for
 *                          the arm): the gather and shift in JS, the noise in datasets' own module, then tf.tensor
 *   ... (1 thread)         loader+shift+noise through the kernels with the kernel threads off: every batch's whole
 *                          work on this thread. Twice its rate is what two cores could make at best (R_2core below),
 *                          and loader+shift+noise / that is the parallel efficiency
 * On wasm with @fitloop/wasm the augmenting loader makes its batches with FitloopAugmentPost/Join: posted when
 * the batch before is handed out, made by an idle kernel thread in the background, joined when asked for
 * (a loader without transforms stays on the host). These loader-only arms have no step to hide behind:
 * each batch costs its whole work (on two threads) and the JS around it.
 *   train step (wasm MLP)  784-256-128-10, Adam, sparse cross-entropy: computeGradients + applyGradients via
 *                          optimizer.minimize on a fixed batch, one `await loss.data()` per step (as the loop reads it)
 *   fit, loader+aug        (for reference) fitloop's Trainer consuming loader+shift+noise, steps/s of a whole fit
 *   fit overhead           the MLP of bench/models.ts trained by fitloop's Trainer for one epoch (156 steps) over
 *                          (a) the loader with shift+noise making each batch on the fly (prefetch on), versus
 *                          (b) the very same augmented batches made in advance (materialised as tensors once;
 *                          the source yields clones, no work per batch), and (c) as (a) on the host path.
 *                          The sources omit peekAll, so the trainer runs the same per-batch data checks in all:
 *                          the difference is the cost of making batches. FIT_ROUNDS rounds, the order rotating;
 *                          overhead = median(a time) / median(b time) - 1, target <= 5 %.
 *
 * Warm-up before any measurement: every arm runs once, the train step then runs until it has made
 * WARMUP_STEPS steps (3000: V8 compiles a training step's JS for that long, and a step measured
 * earlier is slower, which would flatter R; bench/vs-pytorch.ts has the series), each loader arm
 * makes LOADER_WARMUP_BATCHES batches (3000, whole epochs: the same holds for a loader's JS, and the
 * kernel path's post and join measured after one epoch ran at 15-17k batches/s with rounds as low as
 * 8.6k, against 19.7-20.1k once warm; journal round 15), and each fit arm trains FIT_WARMUP epochs.
 *
 * Loader arms iterate `batches()` with `for await` (the path the Trainer uses, prefetch on) and
 * dispose every batch. Arms run interleaved round by round (another process may share the 2 cores);
 * medians. R = min(loader, loader+shift+noise batches/s) / train steps/s; target R >= 20. R_2core = min(loader,
 * 2 x loader+shift+noise (1 thread)) / train steps/s: the R two cores would give if they shared the work perfectly.
 * The last line is one JSON record.
 *
 *   pnpm run bench:loader     # env: ROUNDS (7), STEPS (40), FIT_ROUNDS (9), WARMUP_STEPS (3000), LOADER_WARMUP_BATCHES (3000), FIT_WARMUP (10)
 */
import "reflect-metadata";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
// The root package does not depend on the workspace packages: import their source entries directly.
import { Trainer, resolveLoss, seeded, silentLogger, useBackend, type Batch, type DataSource } from "../packages/core/src/index.js";
import { DataLoader, gaussianNoise, randomShift } from "../packages/datasets/src/index.js";
import { AUGMENT_POST } from "../packages/datasets/src/kernel-batches.js";
import { setKernelThreadsEnabled } from "../packages/wasm/src/index.js";
import { loadEmbeddedMnist } from "../packages/datasets/src/node/index.js";
import { buildModel } from "./models.js";

const BATCH = 64;
const intEnv = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
};
const ROUNDS = intEnv("ROUNDS", 7);
const STEPS = intEnv("STEPS", 40);
const FIT_ROUNDS = intEnv("FIT_ROUNDS", 9);
const WARMUP_STEPS = intEnv("WARMUP_STEPS", 3000);
const LOADER_WARMUP_BATCHES = intEnv("LOADER_WARMUP_BATCHES", 3000);
const FIT_WARMUP = intEnv("FIT_WARMUP", 10);

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

/** Runs `fn` with @fitloop/wasm's batch kernel unregistered: the loader takes its host path. */
async function onTheHost<T>(fn: () => Promise<T>): Promise<T> {
  const post = tf.getKernel(AUGMENT_POST, tf.getBackend());
  if (!post) return fn();
  tf.unregisterKernel(AUGMENT_POST, post.backendName);
  try {
    return await fn();
  } finally {
    tf.registerKernel(post);
  }
}

interface Arm {
  name: string;
  unit: "batches/s" | "steps/s";
  /** Runs once; returns the rate. */
  run(round: number): Promise<number>;
  dispose(): void;
}

/** Runs `fn` with @fitloop/wasm's kernel threads off: a batch's work on this thread only. */
async function onOneThread<T>(fn: () => Promise<T>): Promise<T> {
  setKernelThreadsEnabled(false);
  try {
    return await fn();
  } finally {
    setKernelThreadsEnabled(true);
  }
}

/** One epoch of the loader (156 batches), every batch turned into tensors and disposed (on the host path, or on one thread). */
function loaderArm(name: string, loader: DataLoader, where: "host" | "one thread" | "" = ""): Arm {
  return {
    name,
    unit: "batches/s",
    run: (round) => (where === "host" ? onTheHost(() => epoch(round)) : where === "one thread" ? onOneThread(() => epoch(round)) : epoch(round)),
    dispose: () => loader.dispose(),
  };
  async function epoch(round: number): Promise<number> {
    const start = performance.now();
    let n = 0;
    for await (const b of loader.batches({ epoch: round, batchIndex: 0 }) as AsyncIterable<Batch>) {
      tf.dispose([b.xs, b.ys]);
      n++;
    }
    return n / ((performance.now() - start) / 1000);
  }
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

/**
 * A whole-epoch fit of the MLP (bench/models.ts, seeded init, Adam 1e-3) over `source`; returns ms.
 * A fresh Trainer per arm, the model and optimizer kept across rounds (slots exist after the warm-up).
 */
function epochFit(source: DataSource): { run(): Promise<number>; dispose(): void } {
  const model = seeded(1, () => buildModel("mlp"));
  const optimizer = tf.train.adam(1e-3);
  const trainer = new Trainer({ model, optimizer, loss: "sparseCategoricalCrossentropy", logger: silentLogger });
  return {
    async run() {
      const start = performance.now();
      const r = await trainer.fit({ epochs: 1, train: source });
      const ms = performance.now() - start;
      if (r.state.step !== source.batchesPerEpoch) throw new Error(`fit ran ${r.state.step} steps, expected ${source.batchesPerEpoch}`);
      return ms;
    },
    dispose() {
      model.dispose();
      optimizer.dispose();
    },
  };
}

/**
 * (a) the loader making epoch `epoch`'s augmented batches on the fly; (b) the same batches made in
 * advance: `loader.batch(epoch, b)` for every b up front (the same seeded order and draws, so the
 * same values), each yielded as a clone (shares the data; the loop disposes only the clone).
 */
function fitOverheadArms(loader: DataLoader, epoch: number): { onTheFly: DataSource; inAdvance: DataSource; dispose(): void } {
  const made: Batch[] = [];
  for (let b = 0; b < loader.batchesPerEpoch; b++) made.push(loader.batch(epoch, b));
  const n = loader.batchesPerEpoch;
  const onTheFly: DataSource = { batchesPerEpoch: n, batches: () => loader.batches({ epoch, batchIndex: 0 }) };
  const inAdvance: DataSource = {
    batchesPerEpoch: n,
    *batches() {
      for (const b of made) yield { xs: tf.clone(b.xs), ys: tf.clone(b.ys) };
    },
  };
  return { onTheFly, inAdvance, dispose: () => tf.dispose(made.flatMap((b) => [b.xs, b.ys])) };
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
  const step = stepArm(plain);
  const arms = [loaderArm("loader", plain), loaderArm("loader+shift+noise", aug()), loaderArm("loader+shift+noise (host)", aug(), "host"), loaderArm("loader+shift+noise (1 thread)", aug(), "one thread"), step, fitArm(aug())];

  for (const a of arms) await a.run(0); // warm-up: kernels, XNNPACK caches, optimizer slots, JIT
  for (let done = STEPS; done < WARMUP_STEPS; done += STEPS) await step.run(0); // the step's JS, compiled
  const perEpoch = Math.floor(train.size / BATCH);
  for (let done = perEpoch; done < LOADER_WARMUP_BATCHES; done += perEpoch) for (const a of arms) if (a.unit === "batches/s") await a.run(0); // the loaders' JS, compiled
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
  for (const a of arms) a.dispose();

  // fit over the loader (augmenting on the fly) vs over the same batches made in advance
  const FIT_EPOCH = 1;
  const pair = fitOverheadArms(aug(), FIT_EPOCH);
  const fitA = epochFit(pair.onTheFly);
  const fitB = epochFit(pair.inAdvance);
  const fitC = epochFit(pair.onTheFly);
  const fits = [
    { ms: [] as number[], run: () => fitA.run() },
    { ms: [] as number[], run: () => fitB.run() },
    { ms: [] as number[], run: () => onTheHost(() => fitC.run()) },
  ];
  for (let w = 0; w < FIT_WARMUP; w++) for (const f of fits) await f.run(); // warm-up
  for (let round = 1; round <= FIT_ROUNDS; round++) {
    for (let k = 0; k < fits.length; k++) {
      const f = fits[(k + round) % fits.length]!; // the order rotates
      f.ms.push(await f.run());
    }
    process.stderr.write(`fit round ${round}/${FIT_ROUNDS}: on the fly ${fits[0]!.ms.at(-1)!.toFixed(0)} ms, made in advance ${fits[1]!.ms.at(-1)!.toFixed(0)} ms, on the fly on the host ${fits[2]!.ms.at(-1)!.toFixed(0)} ms (${pair.onTheFly.batchesPerEpoch} steps)\n`);
  }
  const [msA, msB, msC] = fits.map((f) => f.ms) as [number[], number[], number[]];
  fitA.dispose();
  fitB.dispose();
  fitC.dispose();
  pair.dispose();
  const seconds = (performance.now() - started) / 1000;

  const med = (name: string) => median(rates.get(name)!);
  const steps = med("train step (wasm MLP)");
  const nSteps = pair.onTheFly.batchesPerEpoch!;
  const fitOnTheFly = median(msA);
  const fitInAdvance = median(msB);
  const fitHost = median(msC);
  const overhead = fitOnTheFly / fitInAdvance - 1;
  const overheadHost = fitHost / fitInAdvance - 1;
  const fitRow = (name: string, ms: number[]) => {
    const rates = ms.map((m) => nSteps / (m / 1000));
    return [name, (nSteps / (median(ms) / 1000)).toFixed(0), "steps/s", Math.min(...rates).toFixed(0), Math.max(...rates).toFixed(0), (median(ms) / nSteps).toFixed(3), ""];
  };
  const header = ["arm", "median", "unit", "min", "max", "ms each", "vs train step"];
  const table = arms.map((a) => {
    const v = rates.get(a.name)!;
    return [a.name, med(a.name).toFixed(0), a.unit, Math.min(...v).toFixed(0), Math.max(...v).toFixed(0), (1000 / med(a.name)).toFixed(3), a.unit === "batches/s" ? `${(med(a.name) / steps).toFixed(1)}x` : ""];
  });
  table.push(fitRow("fit epoch, loader+aug", msA), fitRow("fit epoch, made in advance", msB), fitRow("fit epoch, loader+aug (host)", msC));
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const fmt = (row: string[]) => row.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  console.log(fmt(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of table) console.log(fmt(row));
  const loaderRate = med("loader");
  const augRate = med("loader+shift+noise");
  const ratio = Math.min(loaderRate, augRate) / steps;
  const ratioHost = Math.min(loaderRate, med("loader+shift+noise (host)")) / steps;
  const oneThread = med("loader+shift+noise (1 thread)");
  const ratio2Core = Math.min(loaderRate, 2 * oneThread) / steps;
  console.log("");
  console.log(
    `fit overhead of augmenting on the fly = ${(overhead * 100).toFixed(1)} % (target <= 5 %): ${fitOnTheFly.toFixed(0)} vs ${fitInAdvance.toFixed(0)} ms per ${nSteps}-step epoch, medians of ${FIT_ROUNDS} rounds, the order rotating`,
  );
  console.log(`  on the host path (before @fitloop/wasm made the batches): ${(overheadHost * 100).toFixed(1)} % (${fitHost.toFixed(0)} ms)`);
  console.log(`R = min(loader, loader+shift+noise batches/s) / train steps/s = ${ratio.toFixed(1)} (target >= 20); on the host path ${ratioHost.toFixed(1)}`);
  console.log(
    `  two cores at best: R_2core = ${ratio2Core.toFixed(1)} (a batch's whole work on one thread: ${(1e6 / oneThread).toFixed(1)} us; twice that rate, ${(2 * oneThread).toFixed(0)} batches/s); ` +
      `the kernel threads make ${((100 * augRate) / (2 * oneThread)).toFixed(0)} % of it`,
  );
  console.log(`wasm backend, ${threads} thread${threads === 1 ? "" : "s"} (as tfjs-wasm reports), batch ${BATCH}, 784 features, medians of ${ROUNDS} interleaved rounds, ${seconds.toFixed(0)} s`);
  const r2 = (x: number) => Math.round(x * 100) / 100;
  console.log(
    JSON.stringify({ bench: "loader", ratio: r2(ratio), loader_batches_per_s: r2(loaderRate), loader_aug_batches_per_s: r2(augRate), train_steps_per_s: r2(steps), fit_aug_steps_per_s: r2(med("fit, loader+shift+noise")),
      fit_epoch_aug_ms: r2(fitOnTheFly),
      fit_epoch_in_advance_ms: r2(fitInAdvance),
      fit_aug_overhead_pct: r2(overhead * 100),
      ratio_host: r2(ratioHost),
      ratio_2core_bound: r2(ratio2Core),
      loader_aug_one_thread_batches_per_s: r2(oneThread),
      parallel_efficiency: r2(augRate / (2 * oneThread)),
      loader_aug_host_batches_per_s: r2(med("loader+shift+noise (host)")),
      fit_epoch_aug_host_ms: r2(fitHost),
      fit_aug_host_overhead_pct: r2(overheadHost * 100),
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
