/**
 * Time to accuracy: the demo's CNN and training recipe in fitloop on wasm versus the same architecture
 * and recipe in PyTorch on the CPU, on the same data split with the same epochs: the wall time from the
 * start of training until the held-out accuracy first reaches TARGET, and the final held-out accuracy.
 *
 *   fitloop  apps/demo's own modules: `loadData` (the 10,000 embedded MNIST digits split 8,000 / 2,000,
 *            stratified and seeded; random shift + per-channel normalisation fitted on the training split),
 *            `buildModel("cnn", seed)`, and @fitloop/recipes' `classification` preset as the demo wires
 *            it (1cycle at the max LR), on `useBackend('wasm')`; the demo's `heldOutAccuracy` at the end
 *   PyTorch  bench/time-to-accuracy.py under Debian's /usr/bin/python3 (python3-torch, as bench:vs-pytorch;
 *            this bench does not install it), torch.set_num_threads(TORCH_THREADS), OPENBLAS_NUM_THREADS=1;
 *            a long-lived child (torch's import is not timed), idle while fitloop trains
 *
 * The timed part is `trainer.fit(...)` (fitloop) and the epoch loop (PyTorch): every training step and
 * the held-out evaluation after every epoch (val_loss and val_acc, as the demo's fit does), early
 * stopping's weight copies and its restore at the end. Not timed, on either side: building the model,
 * loading the data, the LR finder, the final accuracy. Left out of the fitloop run because they are not
 * training (they write files or draw): the demo's sanity checks, checkpoints, metrics.csv, the HTML
 * report, TensorBoard, the confusion matrix and the progress bar. Kept: the whole training recipe,
 * i.e. the preset's Scheduler (1cycle), GradClip, WeightDecay, TerminateOnNaN and EarlyStopping, and
 * the demo's Normalizer plugin.
 *
 * The recipe on both sides (the numbers are read from the preset and sent to the Python side):
 *   Adam beta1 0.9 (cycled), beta2 0.999, epsilon 1e-8, decoupled weight decay 0.01 on conv and dense
 *   kernels only (AdamW: w <- w(1 - lr wd) before the update; PyTorch: AdamW with two param groups);
 *   1cycle / OneCycleLR over EPOCHS x 125 steps: pct_start 0.3, div_factor 25, final_div_factor 1e4,
 *   cosine annealing, beta1 cycled 0.95 -> 0.85 -> 0.95; gradient clipping at global norm 1
 *   (clip_grad_norm_); a non-finite loss stops the run; batch 64, shuffled every epoch; random integer
 *   shift of up to SHIFT px per axis with zero fill, then (x - mean) / std; dropout 0.3; BatchNorm
 *   momentum 0.9 in Keras terms (PyTorch momentum 0.1) and epsilon 1e-3 (Keras'; PyTorch's default is
 *   1e-5); Keras' initialisation in PyTorch (glorot_uniform kernels, zero biases: not kaiming_uniform);
 *   softmax + sparse cross-entropy (fitloop) = CrossEntropyLoss on logits (PyTorch).
 *   Early stopping: the demo's (val_loss, min_delta 0, patience 10 by the preset's dataset-size rule for
 *   8,000 samples, restoring the best epoch's weights at the end), Keras' rule implemented identically in
 *   the Python side, so the final accuracy on both sides is the one the demo prints (the best epoch's
 *   by val_loss). It cannot change the time to the target unless it stops before reaching it (then the
 *   side reports null). EARLY_STOPPING=false turns it off on both sides (a fixed EPOCHS, final accuracy
 *   = the last epoch's).
 * The max LR (the 1cycle peak) is the same on both sides: MAX_LR, or else fitloop's LR finder (the
 * demo's `runLrFinder`, untimed, once) and the demo's rule (its suggestion when the verdict is "ok",
 * else 3e-3). Known differences that remain: tfjs' Adam bias correction multiplies the cycled beta1s
 * (1 - prod beta1_i) where PyTorch uses 1 - beta1_t^t; Keras BN's moving variance uses the biased batch
 * variance (PyTorch the unbiased one, a factor 43264/43263); PyTorch's clip divides by norm + 1e-6;
 * tfjs clips softmax probabilities at 1e-7 in the loss; the random streams (init, order, shifts,
 * dropout) differ.
 *
 * The sides run one after the other, never together. Prints the per-epoch accuracy of each side on
 * stderr, a table, and last {"bench":"time-to-accuracy","fitloop_s":A,"pytorch_s":B,"ratio":B/A,
 * "fitloop_acc":X,"pytorch_acc":Y} (seconds to TARGET, medians over ROUNDS; ratio > 1: fitloop got there
 * first; null where a side never reached TARGET). Without torch it says so and exits 0 with no JSON line.
 *
 *   pnpm run bench:time-to-accuracy   # env: EPOCHS (30, the demo's default), TARGET (0.98), MAX_LR (unset:
 *                                     # the LR finder), ROUNDS (1; medians), ORDER (fitloop-first |
 *                                     # pytorch-first | alternate), EARLY_STOPPING (true | false), SEED (42),
 *                                     # BATCH (64), SHIFT (2), PYTHON (/usr/bin/python3), TORCH_THREADS (2),
 *                                     # THREADS (fitloop's wasm threads; unset: all cores), WASM_KERNELS
 *                                     # (as bench:vs-pytorch)
 */
import "reflect-metadata";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER as HOOK_ORDER, Trainer, silentLogger, useBackend, type Callback } from "../packages/core/src/index.js";
import { loadData, type DemoData } from "../apps/demo/src/data.js";
import { runLrFinder } from "../apps/demo/src/lr-find.js";
import { buildModel } from "../apps/demo/src/model.js";
import { applyKernelChoice } from "./kernel-choice.js";
import { intEnv, median, printTable, threadsEnv, wasmThreadCount } from "./models.js";
import { startPythonChild } from "./python-child.js";

/*
 * The preset (and the demo's train.ts) import @fitloop/checkpoint, whose parameter decorators need
 * `experimentalDecorators`. tsx reads the tsconfig of the working directory, and the root tsconfig.json
 * has no compilerOptions; so without TSX_TSCONFIG_PATH this file runs itself again with the root
 * tsconfig.check.json (which extends tsconfig.base.json, as every package does), in a child process
 * the parent only waits for. Those two modules are imported dynamically, after that check, for that reason.
 */
const TSCONFIG = fileURLToPath(new URL("../tsconfig.check.json", import.meta.url));
const relaunch = process.env["TSX_TSCONFIG_PATH"] === undefined;
if (relaunch) {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit", env: { ...process.env, TSX_TSCONFIG_PATH: TSCONFIG } });
  process.exit(r.status ?? 1);
}
const { ONE_CYCLE, classification } = await import("../packages/recipes/src/index.js");
const { LOSS, heldOutAccuracy } = await import("../apps/demo/src/train.js");

/** The demo's fallback when the LR finder's verdict is not "ok" (apps/demo/src/train.ts). */
const FALLBACK_MAX_LR = 3e-3;
/** The demo model's dropout rate and BatchNorm settings (apps/demo/src/model.ts; tfjs-layers' epsilon 1e-3). */
const DROPOUT = 0.3;
const BN = { momentum: 0.9, epsilon: 1e-3 };

const numEnv = (name: string, fallback: number, ok: (v: number) => boolean, what: string): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!ok(v)) throw new Error(`${name} must be ${what}, got ${raw}`);
  return v;
};
const EPOCHS = intEnv("EPOCHS", 30);
const ROUNDS = intEnv("ROUNDS", 1);
const TARGET = numEnv("TARGET", 0.98, (v) => v > 0 && v <= 1, "in (0, 1]");
const SEED = numEnv("SEED", 42, (v) => Number.isInteger(v) && v >= 0, "an integer >= 0");
const BATCH = intEnv("BATCH", 64);
const SHIFT = numEnv("SHIFT", 2, (v) => Number.isInteger(v) && v >= 0 && v < 28, "an integer in [0, 27]");
const MAX_LR_ENV = process.env["MAX_LR"] ? numEnv("MAX_LR", 0, (v) => v > 0 && Number.isFinite(v), "a number > 0") : undefined;
const EARLY_STOPPING = process.env["EARLY_STOPPING"] !== "false";
const RUN_ORDER = process.env["ORDER"] ?? "fitloop-first";
if (!["fitloop-first", "pytorch-first", "alternate"].includes(RUN_ORDER)) throw new Error(`ORDER must be fitloop-first, pytorch-first or alternate, got ${RUN_ORDER}`);
const PYTHON = process.env["PYTHON"] ?? "/usr/bin/python3";
const TORCH_THREADS = intEnv("TORCH_THREADS", 2);

type Side = "fitloop" | "pytorch";

/** One side's run. */
interface SideResult {
  /** Seconds from the start of training until val_acc first reached TARGET; null when it never did. */
  reachedS: number | null;
  reachedEpoch: number | null;
  /** Held-out accuracy at the end (after early stopping restored the best weights). */
  finalAcc: number;
  epochsRun: number;
  /** The whole timed run, seconds. */
  trainS: number;
  /** Why it ended before EPOCHS, if it did. */
  stop: string | undefined;
}

/** The demo's preset (apps/demo/src/train.ts) without its files and terminal plugins (no `dir`, the browser-safe entry). */
const demoPreset = (data: DemoData, maxLr: number) => classification({ epochs: EPOCHS, data: data.trainData, maxLr, schedule: "1cycle", seed: SEED, ...(EARLY_STOPPING ? {} : { earlyStopping: false }) });

/** The recipe as the preset builds it, for the Python side: every number read from the preset's plugins. */
function recipeOf(data: DemoData, maxLr: number) {
  const preset = demoPreset(data, maxLr);
  try {
    const p = preset.plugins;
    const adam = preset.optimizer.getConfig() as { beta2: number; epsilon: number };
    const wd = p.weightDecay!.options.weightDecay;
    if (typeof wd !== "number") throw new Error("a scheduled weight decay is not mirrored in PyTorch");
    if (p.gradClip!.options.by !== "globalNorm") throw new Error(`clipping by ${p.gradClip!.options.by} is not mirrored in PyTorch`);
    const total = EPOCHS * data.trainData.batchesPerEpoch;
    const es = p.earlyStopping?.options;
    if (es && (es.monitor !== "val_loss" || es.minDeltaMode !== "absolute" || es.baseline !== undefined || es.startFromEpoch !== 0 || es.stoppingThreshold !== undefined || es.divergenceThreshold !== undefined || !es.checkFinite)) {
      throw new Error("the preset's early stopping changed: update bench/time-to-accuracy.py's rule");
    }
    return {
      max_lr: maxLr,
      beta1: p.scheduler!.momentum!(0),
      beta2: adam.beta2,
      epsilon: adam.epsilon,
      weight_decay: wd,
      clip: p.gradClip!.options.max,
      pct_start: ONE_CYCLE.pctStart,
      div_factor: ONE_CYCLE.divFactor,
      final_div_factor: ONE_CYCLE.finalDivFactor,
      anneal: "cos",
      max_momentum: p.scheduler!.momentum!(0),
      base_momentum: 0.85, // oneCycleLR's default, checked against the schedule by the probes
      early_stopping: es ? { patience: es.patience, min_delta: es.minDelta, restore: es.restoreBestWeights } : null,
      probe_steps: [0, 1, Math.floor(ONE_CYCLE.pctStart * total) - 1, Math.floor(total / 2), total - 1],
      schedule: (t: number) => ({ lr: p.scheduler!.lr!(t), beta1: p.scheduler!.momentum!(t) }),
    };
  } finally {
    preset.dispose();
  }
}

/** The fitloop side: the demo's model and preset, trained with validation after every epoch. */
async function runFitloop(data: DemoData, maxLr: number): Promise<SideResult> {
  const model = buildModel("cnn", SEED);
  const preset = demoPreset(data, maxLr);
  let t0 = 0;
  let reachedS: number | null = null;
  let reachedEpoch: number | null = null;
  const clock: Callback = {
    name: "TargetClock",
    order: HOOK_ORDER.LAST, // after early stopping's decision and weight copy
    afterEpoch(ctx) {
      const acc = ctx.logs["val_acc"];
      if (typeof acc !== "number") throw new Error(`no val_acc in the epoch's logs (${Object.keys(ctx.logs).join(", ")})`);
      const t = (performance.now() - t0) / 1000;
      if (reachedS === null && acc >= TARGET) [reachedS, reachedEpoch] = [t, ctx.state.epoch + 1];
      process.stderr.write(`  fitloop epoch ${ctx.state.epoch + 1}/${EPOCHS}: val_acc ${(100 * acc).toFixed(2)} %, val_loss ${Number(ctx.logs["val_loss"]).toFixed(4)}, ${t.toFixed(1)} s\n`);
    },
  };
  const trainer = new Trainer({ model, loss: LOSS, metrics: ["acc"], ...preset.trainer, callbacks: [data.norm, ...preset.trainer.callbacks, clock], logger: silentLogger });
  try {
    t0 = performance.now();
    const { outcome, state } = await trainer.fit({ epochs: EPOCHS, train: data.trainData, validation: data.heldOutData });
    const trainS = (performance.now() - t0) / 1000;
    const finalAcc = heldOutAccuracy(model, data.heldOutData);
    return { reachedS, reachedEpoch, finalAcc, epochsRun: state.history.length, trainS, stop: outcome.status === "completed" ? undefined : `${outcome.status}${outcome.reason ? `: ${outcome.reason}` : ""}` };
  } finally {
    preset.dispose();
    model.dispose();
  }
}

interface Torch {
  info: { torch: string; threads: number };
  run(config: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): void;
}

/** Starts the PyTorch child; `{missing}` (with the reason) when python or torch is missing. */
async function startTorch(): Promise<Torch | { missing: string }> {
  const py = await startPythonChild(PYTHON, fileURLToPath(new URL("./time-to-accuracy.py", import.meta.url)), { OPENBLAS_NUM_THREADS: "1", THREADS: String(TORCH_THREADS) });
  if ("missing" in py) return py;
  const { child, first, next } = py;
  return {
    info: { torch: String(first["torch"]), threads: Number(first["threads"]) },
    async run(config) {
      child.stdin.write(JSON.stringify(config) + "\n");
      for (;;) {
        const r = await next();
        if (r["done"] === true) {
          if (typeof r["error"] === "string") throw new Error(`PyTorch side: ${r["error"]}`);
          return r;
        }
        process.stderr.write(`  PyTorch epoch ${Number(r["epoch"]) + 1}/${EPOCHS}: val_acc ${(100 * Number(r["val_acc"])).toFixed(2)} %, val_loss ${Number(r["val_loss"]).toFixed(4)}, ${Number(r["t"]).toFixed(1)} s\n`);
      }
    },
    close() {
      child.stdin.end("quit\n");
    },
  };
}

/** The split as raw little-endian files for numpy.fromfile: train_x.f32 [n,28,28], train_y.i32, val_*. */
function writeSplit(data: DemoData, dir: string): void {
  const write = (name: string, a: Float32Array | Int32Array) => writeFileSync(join(dir, name), Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  for (const [name, ds] of [["train", data.train], ["val", data.heldOut]] as const) {
    if (ds.sampleShape.join("x") !== "28x28x1") throw new Error(`expected 28x28x1 images, got ${ds.sampleShape.join("x")}`);
    if (!(ds.y instanceof Int32Array)) throw new Error("expected class-index labels");
    write(`${name}_x.f32`, ds.x);
    write(`${name}_y.i32`, ds.y);
  }
}

async function main(): Promise<void> {
  const torch = await startTorch();
  if ("missing" in torch) {
    console.log(`PyTorch is not available (${torch.missing.split("\n")[0]}); install Debian's python3-torch to run this bench. Skipped.`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "fitloop-time-to-accuracy-"));
  try {
    const backend = await useBackend("wasm", threadsEnv());
    const threads = await wasmThreadCount();
    const replaced = applyKernelChoice();
    const data = loadData({ dataset: "mnist", seed: SEED, flatten: false, batchSize: BATCH, maxShift: SHIFT });
    writeSplit(data, dir);
    console.log(`fitloop: tfjs ${tf.version_core} ${backend} backend (${threads} thread${threads > 1 ? "s" : ""}; ${replaced.length ? `fitloop kernels: ${replaced.join(", ")}` : "WASM_KERNELS=added"}); PyTorch ${torch.info.torch}, ${torch.info.threads} threads, OPENBLAS_NUM_THREADS=1`);
    console.log(`data: ${data.description}; batch ${BATCH}, random shift ${SHIFT} px, per-channel normalisation (mean ${data.norm.mean[0]!.toFixed(4)}, std ${data.norm.std[0]!.toFixed(4)})`);

    let maxLr: number;
    if (MAX_LR_ENV !== undefined) {
      maxLr = MAX_LR_ENV;
      console.log(`max LR ${maxLr} (MAX_LR), both sides`);
    } else {
      const finderModel = buildModel("cnn", SEED);
      const t = performance.now();
      const found = await runLrFinder(finderModel, data, SEED);
      finderModel.dispose();
      const trusted = found.lr !== undefined && found.confidence.verdict === "ok";
      maxLr = trusted ? found.lr! : FALLBACK_MAX_LR;
      console.log(`max LR ${maxLr.toExponential(2)} from fitloop's LR finder (${trusted ? "valley" : `verdict ${found.confidence.verdict}: the demo's fallback`}; ${((performance.now() - t) / 1000).toFixed(0)} s, untimed), both sides`);
    }

    const recipe = recipeOf(data, maxLr);
    const { schedule, ...sent } = recipe;
    const es = recipe.early_stopping;
    console.log(
      `recipe, both sides: ${EPOCHS} epochs x ${data.trainData.batchesPerEpoch} steps; Adam(W) beta2 ${recipe.beta2}, epsilon ${recipe.epsilon}, weight decay ${recipe.weight_decay} (kernels); ` +
        `1cycle peak ${maxLr.toExponential(2)}, pct_start ${recipe.pct_start}, div ${recipe.div_factor}, final div ${recipe.final_div_factor}, beta1 ${recipe.max_momentum} -> ${recipe.base_momentum}; ` +
        `clip global norm ${recipe.clip}; NaN guard; ${es ? `early stopping on val_loss, patience ${es.patience}, restoring the best weights` : "no early stopping (EARLY_STOPPING=false)"}; target val_acc ${TARGET}`,
    );
    const config = {
      ...sent,
      dir,
      seed: SEED,
      epochs: EPOCHS,
      steps_per_epoch: data.trainData.batchesPerEpoch,
      batch: BATCH,
      max_shift: SHIFT,
      train_size: data.train.size,
      val_size: data.heldOut.size,
      mean: Array.from(data.norm.mean),
      inv_std: Array.from(data.norm.std, (s) => Math.fround(1 / s)),
      target: TARGET,
      dropout: DROPOUT,
      bn_momentum_keras: BN.momentum,
      bn_epsilon: BN.epsilon,
    };

    const results: Record<Side, SideResult[]> = { fitloop: [], pytorch: [] };
    let scheduleChecked = false;
    for (let round = 0; round < ROUNDS; round++) {
      const pytorchFirst = RUN_ORDER === "pytorch-first" || (RUN_ORDER === "alternate" && round % 2 === 1);
      const sides: Side[] = pytorchFirst ? ["pytorch", "fitloop"] : ["fitloop", "pytorch"];
      for (const side of sides) {
        process.stderr.write(`round ${round + 1}/${ROUNDS}, ${side}:\n`);
        if (side === "fitloop") {
          results.fitloop.push(await runFitloop(data, maxLr));
          continue;
        }
        const r = await torch.run(config);
        if (!scheduleChecked) {
          // the PyTorch optimizer's lr and beta1 at a few steps against fitloop's schedule
          let worst = 0;
          for (const [step, lr, beta1] of r["probe"] as [number, number, number][]) {
            const f = schedule(step);
            worst = Math.max(worst, Math.abs(lr - f.lr) / f.lr, Math.abs(beta1 - f.beta1) / f.beta1);
          }
          if (worst > 1e-6) throw new Error(`the PyTorch schedule differs from fitloop's (relative ${worst.toExponential(2)}): ${JSON.stringify(r["probe"])}`);
          console.log(`schedules agree: PyTorch's lr and beta1 at steps ${(r["probe"] as number[][]).map((p) => p[0]).join(", ")} match fitloop's (max relative difference ${worst.toExponential(1)})`);
          scheduleChecked = true;
        }
        const stop = r["stop"];
        results.pytorch.push({
          reachedS: r["reached_s"] as number | null,
          reachedEpoch: r["reached_epoch"] as number | null,
          finalAcc: Number(r["final_acc"]),
          epochsRun: Number(r["epochs_run"]),
          trainS: Number(r["train_s"]),
          stop: typeof stop === "string" ? stop : undefined,
        });
      }
    }

    // medians over rounds; a round that never reached the target counts as +Infinity (null if the median is)
    const medianOrNull = (v: (number | null)[]) => {
      const m = median(v.map((x) => x ?? Number.POSITIVE_INFINITY));
      return Number.isFinite(m) ? m : null;
    };
    const summary = (side: Side) => {
      const r = results[side];
      const reached = r.filter((x) => x.reachedS !== null).length;
      return {
        s: medianOrNull(r.map((x) => x.reachedS)),
        epochs: medianOrNull(r.map((x) => x.reachedEpoch)),
        reached,
        acc: median(r.map((x) => x.finalAcc)),
        epochsRun: median(r.map((x) => x.epochsRun)),
        trainS: median(r.map((x) => x.trainS)),
        rate: median(r.map((x) => (x.epochsRun * data.train.size) / x.trainS)),
        stops: [...new Set(r.map((x) => x.stop).filter((x): x is string => x !== undefined))],
      };
    };
    const f = summary("fitloop");
    const p = summary("pytorch");
    console.log("");
    const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
    printTable(
      ["side", `time to ${pct(TARGET)} (s)`, "epochs to target", "final acc", "epochs run", "training time (s)", "samples/s"],
      (
        [
          ["fitloop wasm", f],
          [`PyTorch ${torch.info.torch} CPU`, p],
        ] as const
      ).map(([name, s]) => [
        name,
        s.s === null ? `never reached${ROUNDS > 1 ? ` (${s.reached}/${ROUNDS} rounds)` : ""}` : `${s.s.toFixed(1)}${ROUNDS > 1 && s.reached < ROUNDS ? ` (${s.reached}/${ROUNDS} rounds)` : ""}`,
        s.epochs === null ? "-" : String(s.epochs),
        pct(s.acc),
        String(s.epochsRun),
        s.trainS.toFixed(1),
        s.rate.toFixed(0),
      ]),
    );
    for (const [name, s] of [["fitloop", f], ["PyTorch", p]] as const) for (const stop of s.stops) console.log(`${name} ended early: ${stop}`);
    const ratio = f.s !== null && p.s !== null ? p.s / f.s : null;
    console.log(
      `\n${ROUNDS > 1 ? `medians of ${ROUNDS} rounds` : "one round"} (${RUN_ORDER}); time to target = wall time from the start of training (evaluation after every epoch included) to the first epoch with held-out accuracy >= ${TARGET}; ` +
        `final acc = held-out accuracy at the end${es ? " (the best epoch by val_loss, restored)" : ""}; samples/s = training samples of the epochs run / training time (evaluation included)` +
        (ratio === null ? `; ${f.s === null ? "fitloop" : ""}${f.s === null && p.s === null ? " and " : ""}${p.s === null ? "PyTorch" : ""} never reached the target: ratio null` : `; ratio PyTorch / fitloop = ${ratio.toFixed(3)} (> 1: fitloop reached the target first)`),
    );
    const r3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);
    const r4 = (x: number) => Math.round(x * 10000) / 10000;
    console.log(JSON.stringify({ bench: "time-to-accuracy", fitloop_s: r3(f.s), pytorch_s: r3(p.s), ratio: r3(ratio), fitloop_acc: r4(f.acc), pytorch_acc: r4(p.acc) }));
  } finally {
    torch.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
