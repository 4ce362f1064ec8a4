/**
 * What the logging sinks cost per step on the wasm MLP (784-256-128-10, batch 64, Adam 1e-3),
 * against the bare loop, measured by bench/overhead.ts (interleaved rounds; paired fit ratio, one
 * step inside the loop, time in the plugins' hooks):
 *
 *   epoch     ProgressBar (bar mode on a terminal-like stream to /dev/null, redraws included),
 *             CSVLogger (a row per epoch), TensorBoard (epoch scalars): what most runs use
 *   per-step  the same with a CSV row and TensorBoard batch scalars every step (incl. the gradient
 *             norm TensorBoard adds to the step's read), plus JSONL every step
 *
 * Target (issue 13): <= 2 % of a wasm MLP step for progress + CSV + TensorBoard: the "batch hooks"
 * column (their per-step work; opening files and writing rows happen per fit and per epoch, which
 * the other columns include over short STEPS-step epochs). The last line is JSON.
 *
 *   pnpm run bench:sinks     # env: ROUNDS (21), STEPS (96)
 */
import "reflect-metadata";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Callback } from "../packages/core/src/index.js";
import { ProgressBar } from "../packages/callbacks/progress/src/index.js";
import { CSVLogger, JSONLLogger } from "../packages/callbacks/csv-logger/src/index.js";
import { TensorBoard } from "../packages/callbacks/tensorboard/src/index.js";
import { intEnv } from "./models.js";
import { measureOverhead, printOverhead, r4, startWasmBench } from "./overhead.js";

const ROUNDS = intEnv("ROUNDS", 21);
const STEPS = intEnv("STEPS", 96);
const dir = mkdtempSync(join(tmpdir(), "fitloop-bench-sinks-"));
// a terminal as far as the bar can tell (bar mode, redraws), whose bytes go nowhere
const terminal = Object.assign(createWriteStream("/dev/null"), { isTTY: true, columns: 120 });
delete process.env["CI"];

const sinks = (perStep: boolean): Callback[] => [
  new ProgressBar({ stream: terminal }),
  new CSVLogger({ path: join(dir, perStep ? "steps.csv" : "epochs.csv"), ...(perStep ? { every: { steps: 1 } } : {}) }),
  new TensorBoard({ logDir: join(dir, perStep ? "tb-steps" : "tb-epochs"), ...(perStep ? { every: { steps: 1 } } : {}) }),
  ...(perStep ? [new JSONLLogger({ path: join(dir, "steps.jsonl"), every: { steps: 1 } })] : []),
];

await startWasmBench(ROUNDS, STEPS);
const results = await measureOverhead({
  rounds: ROUNDS,
  steps: STEPS,
  arms: [
    { name: "bare", plugins: () => [] },
    { name: "epoch", plugins: () => sinks(false) },
    { name: "per-step", plugins: () => sinks(true) },
  ],
});
rmSync(dir, { recursive: true, force: true });
printOverhead(results);
const [, epoch, perStep] = results as [unknown, (typeof results)[number], (typeof results)[number]];
for (const r of [epoch, perStep]) console.log(`${r.name}: ${(100 * r.batchHookShare).toFixed(2)} % of a step in the sinks' batch hooks (${(100 * r.hookShare).toFixed(2)} % with the per-fit and per-epoch work of ${STEPS}-step epochs), ${(100 * r.direct).toFixed(2)} % per step in the loop, ${(100 * r.paired).toFixed(2)} % per fit (target <= 2 %)`);
console.log(JSON.stringify({ bench: "sinks", epoch_batch_hooks: r4(epoch.batchHookShare), per_step_batch_hooks: r4(perStep.batchHookShare), epoch_hooks: r4(epoch.hookShare), epoch_step_direct: r4(epoch.direct), epoch_paired: r4(epoch.paired), per_step_hooks: r4(perStep.hookShare), per_step_step_direct: r4(perStep.direct), per_step_paired: r4(perStep.paired) }));
process.exit(0);
