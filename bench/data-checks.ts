/**
 * What core's per-batch data checks cost (`dataChecks: { every: 1 }`, the default, versus
 * `{ every: 0 }`): the wasm MLP (784-256-128-10, batch 64, Adam 1e-3) trained from a streaming
 * source (no `peekCoversBatches`, as a loader with augmentation is), so every batch is checked for
 * NaN/Inf inputs and labels out of range on the device, with the flags riding in the step's read.
 * The checks do not change the arithmetic, so both arms follow the same trajectory: the difference
 * is the checks' cost alone.
 *
 * Interleaved rounds (one whole fit of STEPS steps per arm and round, the order rotating); the paired
 * ratio of fit step times, and directly the median time of one step inside the loop (a timer plugin
 * first in beforeBatch and last in afterBatch). The last line is JSON.
 *
 *   pnpm run bench:data-checks     # env: ROUNDS (21), STEPS (96), MODEL (mlp | cnn)
 */
import "reflect-metadata";
import * as tf from "@tensorflow/tfjs-core";
import { Trainer, tensorData, useBackend, type Callback, type DataSource } from "../packages/core/src/index.js";
import { BatchChecker } from "../packages/core/src/batch-checks.js";
import { BATCH, buildModel, intEnv, median, printTable, randomData, type ModelKind } from "./models.js";

const ROUNDS = intEnv("ROUNDS", 21);
const STEPS = intEnv("STEPS", 96);
const MODEL = (process.env["MODEL"] ?? "mlp") as ModelKind;
const ARMS = ["off", "on"] as const;
type Arm = (typeof ARMS)[number];

async function main(): Promise<void> {
  const backend = await useBackend("wasm");
  process.stderr.write(`backend ${backend}, tfjs ${tf.version_core}, ${MODEL}, batch ${BATCH}, ${STEPS} steps per round, ${ROUNDS} rounds\n`);
  const { xs, ys } = randomData(MODEL, BATCH * STEPS);
  const inner = tensorData(xs, ys, { batchSize: BATCH, shuffle: false });
  // a streaming source: the same batches, but nothing tells the trainer the pre-flight covered them
  const streaming: DataSource = { batchesPerEpoch: inner.batchesPerEpoch!, batches: (c) => inner.batches(c) };
  const models = Object.fromEntries(ARMS.map((a) => [a, { model: buildModel(MODEL), optimizer: tf.train.adam(1e-3) as tf.Optimizer }])) as Record<Arm, { model: ReturnType<typeof buildModel>; optimizer: tf.Optimizer }>;
  models.on.model.setWeights(models.off.model.getWeights());
  const stepTimes: Record<Arm, number[]> = { off: [], on: [] };
  const bracket = (arm: Arm): Callback => {
    let start = 0;
    return { name: "StepTimer", order: -1e9, beforeBatch: () => void (start = performance.now()), afterBatch: () => void stepTimes[arm].push(performance.now() - start) };
  };
  const run = async (arm: Arm): Promise<number> => {
    const { model, optimizer } = models[arm];
    const start = performance.now();
    await new Trainer({ model, optimizer, loss: "sparseCategoricalCrossentropy", callbacks: [bracket(arm)], dataChecks: { every: arm === "on" ? 1 : 0 } }).fit({ epochs: 1, train: streaming });
    return (performance.now() - start) / STEPS;
  };
  for (const a of ARMS) await run(a);
  for (const a of ARMS) stepTimes[a].length = 0;
  const perRound: Record<Arm, number[]> = { off: [], on: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ARMS : ([...ARMS].reverse() as Arm[]);
    for (const a of order) perRound[a].push(await run(a));
    process.stderr.write(`round ${round + 1}/${ROUNDS}: ${ARMS.map((a) => `${a} ${perRound[a].at(-1)!.toFixed(3)}`).join(", ")} ms/step\n`);
  }
  // directly: one check of one batch (the flags' kernel dispatch; their read rides in the step's)
  const checker = new BatchChecker(models.on.model, "sparseCategoricalCrossentropy", "train", 1, false);
  const first = (inner.batches({ epoch: 0, batchIndex: 0 }) as Iterable<{ xs: tf.Tensor; ys: tf.Tensor }>)[Symbol.iterator]().next().value!;
  const outShape = [BATCH, 10];
  const checkTimes: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const start = performance.now();
    tf.dispose(checker.flags(first, outShape));
    if (i >= 200) checkTimes.push(performance.now() - start);
  }
  tf.dispose([first.xs, first.ys]);
  const checkUs = median(checkTimes) * 1000;
  const same = models.on.model.getWeights().every((w, i) => tf.tidy(() => tf.all(tf.equal(w, models.off.model.getWeights()[i]!)).dataSync()[0] === 1));
  for (const a of Object.values(models)) {
    a.model.dispose();
    a.optimizer.dispose();
  }
  tf.dispose([xs, ys]);

  const paired = median(perRound.on.map((v, i) => v / perRound.off[i]!)) - 1;
  const step = (a: Arm) => median(stepTimes[a]);
  const direct = (step("on") - step("off")) / step("off");
  const rows = ARMS.map((a) => [a === "on" ? "checks every batch" : "checks off (every: 0)", median(perRound[a]).toFixed(3), Math.min(...perRound[a]).toFixed(3), Math.max(...perRound[a]).toFixed(3), step(a).toFixed(3)]);
  const header = ["arm", "fit ms/step (median)", "min", "max", "one step in the loop (median)"];
  printTable(header, rows);
  console.log("");
  console.log(`checks: ${(100 * paired).toFixed(2)} % per fit (paired), ${((step("on") - step("off")) * 1000).toFixed(0)} us = ${(100 * direct).toFixed(2)} % per step inside the loop; same weights after every round: ${same}`);
  console.log(`one batch's check alone (${BATCH} samples): ${checkUs.toFixed(1)} us = ${((100 * checkUs) / 1000 / step("off")).toFixed(2)} % of a step`);
  const r4 = (x: number) => Math.round(x * 10_000) / 10_000;
  console.log(JSON.stringify({ bench: "data-checks", model: MODEL, slowdown: r4(paired), step_direct: r4(direct), step_us: Math.round((step("on") - step("off")) * 1000), check_us: Math.round(checkUs * 10) / 10, same_weights: same }));
}

await main();
process.exit(0);
