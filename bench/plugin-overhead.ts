/**
 * What the training-dynamics plugins cost: the wasm MLP (784-256-128-10, batch 64, Adam 1e-3)
 * trained by the bare loop versus the loop with a schedule, gradient clipping, early stopping and
 * the NaN guard (the set a user turns on together).
 *
 *   bare        new Trainer({ model, optimizer, loss }).fit({ epochs: 1, train })
 *   plugins     + Scheduler(oneCycleLR on lr and beta1, every step), GradClip({ max: 1 }) (global
 *               norm; engages on most steps here), EarlyStopping({ monitor: "loss" }), TerminateOnNaN()
 *   same-path   the same four plugins doing all their work, but on the bare run's exact trajectory:
 *               constant schedules at Adam's own lr and beta1, and a clipping limit never reached
 *               (the gradients are multiplied by exactly 1). Its difference to bare is the plugins'
 *               cost alone; `plugins` also trains differently (other weights, other clipped
 *               gradients), which can move kernel times a little either way.
 *
 * Measured with bench/overhead.ts (interleaved rounds; paired fit ratio, one step inside the loop,
 * time in the hooks). S = median over rounds of the paired (plugins / bare) step-time ratio - 1.
 * The last line is JSON.
 *
 *   pnpm run bench:plugin-overhead     # env: ROUNDS (31), STEPS (96)
 */
import "reflect-metadata";
import type { Callback } from "../packages/core/src/index.js";
import { Scheduler, constant, oneCycleLR } from "../packages/callbacks/lr-schedule/src/index.js";
import { GradClip } from "../packages/callbacks/grad-clip/src/index.js";
import { EarlyStopping } from "../packages/callbacks/early-stopping/src/index.js";
import { TerminateOnNaN } from "../packages/callbacks/terminate-on-nan/src/index.js";
import { intEnv } from "./models.js";
import { measureOverhead, printOverhead, r4, startWasmBench } from "./overhead.js";

const ROUNDS = intEnv("ROUNDS", 31);
const STEPS = intEnv("STEPS", 96);

function plugins(samePath: boolean): Callback[] {
  return [
    samePath ? new Scheduler({ lr: constant(1e-3), momentum: constant(0.9) }) : new Scheduler(oneCycleLR({ maxLr: 1e-3, totalSteps: (ROUNDS + 2) * STEPS })),
    new GradClip({ max: samePath ? 1e30 : 1 }),
    new EarlyStopping({ monitor: "loss", patience: 1000 }),
    new TerminateOnNaN(),
  ];
}

await startWasmBench(ROUNDS, STEPS);
const results = await measureOverhead({
  rounds: ROUNDS,
  steps: STEPS,
  arms: [
    { name: "bare", plugins: () => [] },
    { name: "plugins", plugins: () => plugins(false) },
    { name: "same-path", plugins: () => plugins(true) },
  ],
});
printOverhead(results);
const [, all, same] = results as [unknown, (typeof results)[number], (typeof results)[number]];
console.log(`S = median of paired (plugins / bare) fit step-time ratios - 1 = ${all.paired.toFixed(4)} (target <= 0.03)`);
console.log(`the plugins' own cost, on the same trajectory as bare: ${(100 * same.paired).toFixed(2)} % per fit (paired), ${(100 * same.direct).toFixed(2)} % per step inside the loop`);
console.log(JSON.stringify({ bench: "plugin-overhead", slowdown: r4(all.paired), slowdown_same_path: r4(same.paired), step_direct_same_path: r4(same.direct), step_direct: r4(all.direct), hooks_share_same_path: r4(same.hookShare) }));
process.exit(0);
