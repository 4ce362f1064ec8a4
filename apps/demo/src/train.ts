import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, useBackend, type BackendName, type Callback, type TrainState } from "@fitloop/core";
import { resumeFrom } from "@fitloop/checkpoint";
import { FileStore } from "@fitloop/checkpoint/node";
import type { DataLoader } from "@fitloop/datasets";
import type { RangeTestResult } from "@fitloop/lr-finder";
import { sanityCheck } from "@fitloop/recipes";
import { classification } from "@fitloop/recipes/node";
import { LiveDashboard, RunHistory } from "@fitloop/report";
import { TensorBoard } from "@fitloop/tensorboard";
import { ConfusionMatrix } from "./callbacks/confusion-matrix.js";
import { loadData, type DemoData } from "./data.js";
import { runLrFinder } from "./lr-find.js";
import { buildModel, type ModelKind } from "./model.js";

export const LOSS = "sparseCategoricalCrossentropy";
/** Used when the LR finder's curve cannot be trusted (its verdict is not "ok"). */
const FALLBACK_MAX_LR = 3e-3;

/** What a run is; written to `<run>/run.json` so `resume` rebuilds exactly the same run. */
export interface RunConfig {
  model: ModelKind;
  epochs: number;
  seed: number;
  batchSize: number;
  maxShift: number;
  dataDir?: string | undefined;
  dataset: "mnist" | "fashion";
  /** The 1cycle peak (the LR finder's suggestion); set once the finder has run. */
  maxLr?: number;
  createdAt: string;
}

export interface SessionOptions {
  backend: BackendName;
  dashboard: boolean;
  /** Stop (as Ctrl-C does: checkpoint, then stop) after this many epochs in total; for tests. */
  stopAfter?: number | undefined;
}

export const runFiles = (dir: string) => ({
  config: join(dir, "run.json"),
  checkpoints: join(dir, "checkpoints"),
  csv: join(dir, "metrics.csv"),
  tensorboard: join(dir, "tensorboard"),
  report: join(dir, "report"),
  reportHtml: join(dir, "report", "report.html"),
  history: join(dir, "history.json"),
  lrFinder: join(dir, "lr-finder.json"),
  confusion: join(dir, "confusion.json"),
});

/** Where `resume` without a directory looks for the last run (relative to the working directory). */
export const LAST_RUN_POINTER = join("runs", ".last-run");

export async function setup(config: RunConfig, backendName: BackendName): Promise<{ backend: string; data: DemoData; model: tfl.LayersModel }> {
  const backend = await useBackend(backendName);
  const data = loadData({ dataDir: config.dataDir, dataset: config.dataset, seed: config.seed, flatten: config.model === "mlp", batchSize: config.batchSize, maxShift: config.maxShift });
  const model = buildModel(config.model, config.seed);
  return { backend, data, model };
}

/** `train`: sanity checks and the data report, the LR finder, then the full recipe. */
export async function train(config: RunConfig, runDir: string, session: SessionOptions): Promise<void> {
  const started = performance.now();
  // the backend and the data first: a missing package or IDX file fails before anything is written
  const { backend, data, model } = await setup(config, session.backend);
  mkdirSync(runDir, { recursive: true });
  mkdirSync("runs", { recursive: true });
  writeFileSync(LAST_RUN_POINTER, resolve(runDir) + "\n");
  console.log(`fitloop demo: ${data.description}; backend ${backend}, model ${config.model} (${model.countParams()} parameters), ${config.epochs} epochs, batch ${config.batchSize}`);
  console.log(`run directory: ${resolve(runDir)}`);

  // 1. Look at the data, and check the model can learn it at all, before spending minutes on it.
  console.log("\n== sanity checks (the model is left as it was) ==");
  const checks = await sanityCheck(model, { train: data.train, validation: data.heldOut }, { loss: LOSS, printReport: true, seed: config.seed });
  if (checks.status === "fail") throw new Error("a sanity check failed (see the table above); not training");

  // 2. The learning rate: the range test's suggestion becomes the 1cycle peak.
  console.log("\n== LR finder ==");
  const found = await runLrFinder(model, data, config.seed);
  writeFileSync(runFiles(runDir).lrFinder, JSON.stringify(found));
  const trusted = found.lr !== undefined && found.confidence.verdict === "ok";
  config.maxLr = trusted ? found.lr! : FALLBACK_MAX_LR;
  console.log(trusted ? `max LR for 1cycle: ${config.maxLr.toExponential(2)} (valley)` : `the finder's curve is not trustworthy (${found.confidence.verdict}); max LR ${FALLBACK_MAX_LR}`);
  writeFileSync(runFiles(runDir).config, JSON.stringify(config, null, 2));

  console.log("\n== training ==");
  await fitRun(config, runDir, session, { backend, data, model, lrFinder: found, started });
}

/** `resume`: the same run rebuilt from `run.json`, continued from its latest checkpoint. */
export async function resume(runDir: string, session: SessionOptions): Promise<void> {
  const started = performance.now();
  const files = runFiles(runDir);
  if (!existsSync(files.config)) throw new Error(`${resolve(runDir)} is not a demo run (no run.json)`);
  const config = JSON.parse(readFileSync(files.config, "utf8")) as RunConfig;
  if (config.maxLr === undefined) throw new Error(`${resolve(runDir)} stopped before training started; run train again`);
  const { backend, data, model } = await setup(config, session.backend);
  const lrFinder = existsSync(files.lrFinder) ? (JSON.parse(readFileSync(files.lrFinder, "utf8")) as RangeTestResult) : undefined;
  const snapshot = await resumeFrom(new FileStore(files.checkpoints));
  const { cursor, step } = snapshot.trainer.train;
  console.log(`fitloop demo: resuming ${resolve(runDir)} at epoch ${cursor.epoch + 1}/${config.epochs}${cursor.batchIndex > 0 ? ` batch ${cursor.batchIndex + 1}` : ""} (step ${step}); ${data.description}; backend ${backend}, model ${config.model}`);
  await fitRun(config, runDir, session, { backend, data, model, lrFinder, started, snapshot });
}

interface FitInputs {
  backend: string;
  data: DemoData;
  model: tfl.LayersModel;
  lrFinder: RangeTestResult | undefined;
  started: number;
  snapshot?: Awaited<ReturnType<typeof resumeFrom>>;
}

async function fitRun(config: RunConfig, runDir: string, session: SessionOptions, inputs: FitInputs): Promise<void> {
  const { data, model, lrFinder, snapshot } = inputs;
  const files = runFiles(runDir);
  const history = new RunHistory({ config: { model: config.model, seed: config.seed, data: data.description, maxLr: config.maxLr!, augmentation: `random shift ${config.maxShift} px` } });
  // The recipe: Adam + decoupled weight decay, 1cycle at the finder's rate, clipping at global norm 1,
  // a NaN guard, early stopping restoring the best weights, checkpoints (also on Ctrl-C), metrics.csv,
  // the HTML report and the progress bar.
  const preset = classification({
    epochs: config.epochs,
    data: data.trainData,
    maxLr: config.maxLr!,
    schedule: "1cycle",
    dir: runDir,
    seed: config.seed,
    checkpoint: { saveOnSignal: true },
    report: { title: `fitloop demo: ${config.model} on ${config.dataDir ? config.dataset : "embedded MNIST"}`, history, ...(lrFinder ? { lrFinder } : {}) },
  });
  if (!snapshot) console.log(preset.describe());
  const progress = preset.plugins.progress;
  const callbacks: Callback[] = [
    data.norm,
    history,
    ...preset.trainer.callbacks,
    new TensorBoard({ logDir: files.tensorboard, every: { steps: 25 } }),
    new ConfusionMatrix({ classes: 10, path: files.confusion, ...(data.train.classNames ? { classNames: data.train.classNames } : {}) }),
  ];
  if (session.dashboard) callbacks.push(new LiveDashboard({ history, title: "fitloop demo" }));
  if (session.stopAfter !== undefined) callbacks.push(stopAfter(session.stopAfter));
  const trainer = new Trainer({ model, loss: LOSS, metrics: ["acc"], ...preset.trainer, callbacks, ...(progress ? { logger: progress.logger() } : {}) });

  const fitStarted = performance.now();
  const { outcome, state } = await trainer.fit({ epochs: config.epochs, train: data.trainData, validation: data.heldOutData, ...(snapshot ? { resumeFrom: snapshot } : {}) });
  const fitSeconds = (performance.now() - fitStarted) / 1000;
  writeFileSync(files.history, JSON.stringify(history.data()));

  const best = preset.plugins.earlyStopping?.result;
  const accuracy = heldOutAccuracy(model, data.heldOutData);
  const interrupted = outcome.status !== "completed" && !outcome.stopRequests?.some((r) => r.by === "EarlyStopping");
  console.log(`\n${progressLine(outcome.status, state, config.epochs)}${outcome.reason ? ` (${outcome.reason})` : ""}`);
  if (best?.bestEpoch !== undefined) console.log(`best epoch ${best.bestEpoch + 1} by val_loss ${best.bestValue!.toFixed(4)} (its weights restored)`);
  console.log(`held-out accuracy ${(100 * accuracy).toFixed(2)} % on ${data.heldOut.size} ${config.dataDir && config.dataset === "fashion" ? "images" : "digits"}`);
  console.log(`training time ${fitSeconds.toFixed(1)} s (whole command ${((performance.now() - inputs.started) / 1000).toFixed(1)} s)`);
  console.log(`report:      ${resolve(files.reportHtml)}`);
  console.log(`csv log:     ${resolve(files.csv)}`);
  console.log(`tensorboard: ${resolve(files.tensorboard)}  (tensorboard --logdir ${resolve(files.tensorboard)})`);
  console.log(`checkpoints: ${resolve(files.checkpoints)}`);
  console.log(`confusion:   ${resolve(files.confusion)}`);
  if (interrupted) console.log(`interrupted: continue with \`resume ${resolve(runDir)}\` (or \`resume\` for the last run)`);
  preset.dispose();
}

/**
 * How far the run got: "completed after 2 of 2 epochs", or for a run stopped in the middle of an
 * epoch (Ctrl-C saves where it is), "stopped in epoch 2 of 3 after 40 of 125 batches (1 full epoch)".
 * Read from the cursor (the next batch to train), not from the history: a stop mid-epoch still
 * validates and records the part it trained, so the history counts the cut epoch as one.
 */
export function progressLine(status: string, state: Pick<TrainState, "cursor" | "batchesPerEpoch">, epochs: number): string {
  const { epoch, batchIndex } = state.cursor;
  if (batchIndex === 0) return `${status} after ${epoch} of ${epochs} epochs`;
  const full = `${epoch} full epoch${epoch === 1 ? "" : "s"}`;
  return `${status} in epoch ${epoch + 1} of ${epochs} after ${batchIndex}${state.batchesPerEpoch !== undefined ? ` of ${state.batchesPerEpoch}` : ""} batches (${full})`;
}

/** Accuracy of the model as it is now (after early stopping restored the best weights). */
export function heldOutAccuracy(model: tfl.LayersModel, loader: DataLoader): number {
  let correct = 0;
  let total = 0;
  for (let b = 0; b < loader.batchesPerEpoch; b++) {
    const batch = loader.batch(0, b);
    const hits = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(model.predict(batch.xs) as tf.Tensor, -1), tf.cast(tf.reshape(batch.ys, [-1]), "int32")), "float32")));
    correct += hits.dataSync()[0]!;
    total += batch.xs.shape[0]!;
    hits.dispose();
    batch.xs.dispose();
    batch.ys.dispose();
  }
  return correct / total;
}

/** Stops the run after `epochs` epochs the way Ctrl-C does (the checkpoint plugin saves where it stopped). */
function stopAfter(epochs: number): Callback {
  return { name: "StopAfter", afterEpoch: (ctx) => void (ctx.state.epoch + 1 >= epochs && ctx.requestStop(`--stop-after ${epochs}`)) };
}
