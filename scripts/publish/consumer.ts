/**
 * A user's project outside the repo: `npm init`, an npmrc that takes `@fitloop/*` from the test's
 * registry (everything else from the user's normal registry), `npm install` of the packages the
 * READMEs name, and a plain .mjs program (no TypeScript, no build) that trains with them.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mustRun, type Env } from "./proc.js";

/** What the user installs: core, one plugin, and the tfjs packages they peer-depend on (cpu backend). */
export const CONSUMER_DEPS = [
  "@fitloop/core",
  "@fitloop/early-stopping",
  "@tensorflow/tfjs-core",
  "@tensorflow/tfjs-layers",
  "@tensorflow/tfjs-backend-cpu",
];

export const MAX_EPOCHS = 150;

/**
 * The program: the early-stopping README's example (a small model that overfits 60 points, judged
 * on 300 validation points) on the cpu backend, plus a plugin of the user's own: a class with an
 * `afterEpoch` hook that prints a line per epoch. No `import "reflect-metadata"`: core must bring
 * what it needs. The last line of stdout is the JSON result.
 */
export const PROGRAM = `
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, ORDER, seeded, tensorData, useBackend } from "@fitloop/core";
import { EarlyStopping } from "@fitloop/early-stopping";

/** A user's own plugin: counts the epochs it saw and prints one line each. */
class EpochCounter {
  name = "epochCounter";
  order = ORDER.LOG;
  seen = 0;
  afterEpoch(ctx) {
    this.seen++;
    console.log("epoch " + ctx.state.epoch + " val_loss " + ctx.logs.val_loss.toFixed(4));
  }
}

await useBackend("cpu");

const blobs = (n, seed) =>
  seeded(seed, () => {
    const ys = tf.tensor1d(Array.from({ length: n }, (_, i) => i % 3));
    const xs = tf.add(tf.mul(tf.oneHot(tf.cast(ys, "int32"), 8), 2), tf.randomNormal([n, 8]));
    return { xs, ys };
  });
const train = blobs(60, 1);
const val = blobs(300, 2);
const model = seeded(3, () => {
  const m = tfl.sequential();
  m.add(tfl.layers.dense({ inputShape: [8], units: 64, activation: "relu" }));
  m.add(tfl.layers.dense({ units: 3, activation: "softmax" }));
  return m;
});

const counter = new EpochCounter();
const early = new EarlyStopping({ monitor: "val_loss", patience: 5, restoreBestWeights: true });
const trainer = new Trainer({
  model,
  optimizer: tf.train.adam(0.005),
  loss: "sparseCategoricalCrossentropy",
  metrics: ["acc"],
  seed: 4,
  callbacks: [early, counter],
});
const { outcome, state } = await trainer.fit({
  epochs: ${MAX_EPOCHS},
  train: tensorData(train.xs, train.ys, { batchSize: 16, seed: 5 }),
  validation: tensorData(val.xs, val.ys, { batchSize: 100 }),
});
early.dispose();
console.log(JSON.stringify({
  backend: tf.getBackend(),
  status: outcome.status,
  reason: outcome.reason,
  stoppedBy: outcome.stopRequests.map((r) => r.by),
  stopped: early.result.stopped,
  epochsRun: state.history.length,
  maxEpochs: ${MAX_EPOCHS},
  counted: counter.seen,
  bestEpoch: early.result.bestEpoch,
  stoppedEpoch: early.result.stoppedEpoch,
}));
`;

export interface ConsumerResult {
  backend: string;
  status: string;
  reason?: string;
  stoppedBy: string[];
  stopped: boolean;
  epochsRun: number;
  maxEpochs: number;
  counted: number;
  bestEpoch: number;
  stoppedEpoch: number;
}

/** `npm init -y`, `"type": "module"`, an npmrc scoping `@fitloop` to `registryUrl`, then `npm install`. */
export async function installConsumer(dir: string, registryUrl: string, env: Env): Promise<{ installMs: number }> {
  await mustRun("npm", ["init", "-y"], { cwd: dir, env, timeoutMs: 60_000 });
  const pkgPath = join(dir, "package.json");
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as Record<string, unknown>;
  writeFileSync(pkgPath, JSON.stringify({ ...pkg, type: "module" }, null, 2) + "\n");
  writeFileSync(join(dir, ".npmrc"), `@fitloop:registry=${registryUrl}\n`);
  const r = await mustRun("npm", ["install", "--no-audit", "--no-fund", ...CONSUMER_DEPS], { cwd: dir, env, timeoutMs: 240_000 });
  return { installMs: r.ms };
}

/** Runs the program in `dir`; returns its JSON result and its whole stdout. */
export async function runConsumer(dir: string, env: Env): Promise<{ result: ConsumerResult; out: string; ms: number }> {
  writeFileSync(join(dir, "train.mjs"), PROGRAM);
  const r = await mustRun(process.execPath, ["train.mjs"], { cwd: dir, env, timeoutMs: 120_000 });
  const last = r.out.trim().split("\n").filter((l) => l.startsWith("{")).at(-1);
  if (!last) throw new Error(`train.mjs printed no JSON result:\n${r.out}`);
  return { result: JSON.parse(last) as ConsumerResult, out: r.out, ms: r.ms };
}
