/**
 * What the update plugins cost per step on the wasm MLP (784-256-128-10, batch 64, Adam 1e-3),
 * each arm against the bare loop, measured by bench/overhead.ts (interleaved rounds; paired fit
 * ratio, one step inside the loop, time in the plugin's hooks):
 *
 *   weight-decay   WeightDecay({ weightDecay: 0.01 })          target <= 3 % of a step
 *   accumulation   GradAccumulation({ steps: 4 }) on 64-sample micro-batches: 3 of 4 steps skip the
 *                  optimizer update, so the fit and step columns are lower than bare; its cost is
 *                  the hooks column (summing and averaging the gradients)   target <= 3 %
 *   ema            EMA({ decay: 0.999 }) updated every step    target <= 10 %
 *   swa            SWA({ start: 0, every: { steps: 1 } }) updated every step (the default is once
 *                  per epoch, which costs nothing per step)
 *
 * The plugin's own cost is the "in its hooks per step" share (and, for weight decay and EMA, the
 * direct per-step difference). The last line is JSON.
 *
 *   pnpm run bench:update-plugins     # env: ROUNDS (21), STEPS (96)
 */
import "reflect-metadata";
import { WeightDecay } from "../packages/callbacks/weight-decay/src/index.js";
import { GradAccumulation } from "../packages/callbacks/grad-accumulation/src/index.js";
import { EMA, SWA } from "../packages/callbacks/weight-averaging/src/index.js";
import { intEnv } from "./models.js";
import { measureOverhead, printOverhead, r4, startWasmBench } from "./overhead.js";

const ROUNDS = intEnv("ROUNDS", 21);
const STEPS = intEnv("STEPS", 96);

await startWasmBench(ROUNDS, STEPS);
const results = await measureOverhead({
  rounds: ROUNDS,
  steps: STEPS,
  arms: [
    { name: "bare", plugins: () => [] },
    { name: "weight-decay", plugins: () => [new WeightDecay({ weightDecay: 0.01 })] },
    { name: "accumulation", plugins: () => [new GradAccumulation({ steps: 4 })] },
    { name: "ema", plugins: () => [new EMA({ decay: 0.999 })] },
    { name: "swa", plugins: () => [new SWA({ start: 0, every: { steps: 1 } })] },
  ],
});
printOverhead(results);
const by = Object.fromEntries(results.map((r) => [r.name, r]));
const line = (name: string, target: number) => {
  const r = by[name]!;
  console.log(`${name}: ${(100 * r.hookShare).toFixed(2)} % of a step in its hooks, ${(100 * r.direct).toFixed(2)} % per step in the loop, ${(100 * r.paired).toFixed(2)} % per fit (target <= ${target} %)`);
};
line("weight-decay", 3);
line("accumulation", 3);
line("ema", 10);
line("swa", 10);
const json: Record<string, string | number> = { bench: "update-plugins" };
for (const r of results.slice(1)) {
  const key = r.name.replace(/-/g, "_");
  json[`${key}_hooks`] = r4(r.hookShare);
  json[`${key}_step_direct`] = r4(r.direct);
  json[`${key}_paired`] = r4(r.paired);
}
console.log(JSON.stringify(json));
process.exit(0);
