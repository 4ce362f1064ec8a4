/**
 * What the training-dynamics plugins cost: the wasm MLP (784-256-128-10, batch 64, Adam) trained by
 * the bare loop versus the loop with a per-step 1cycle schedule on lr and beta1, global-norm
 * gradient clipping, early stopping and the NaN guard (the set a user turns on together).
 *
 *   bare       new Trainer({ model, optimizer, loss }).fit({ epochs: 1, train })
 *   plugins    the same with Scheduler(oneCycleLR), GradClip({ max: 1 }), EarlyStopping, TerminateOnNaN
 *
 * Each arm has its own identically initialised model and optimizer. One warm-up fit per arm, then
 * interleaved rounds (the arm that goes first alternates); a round is one whole `fit` of STEPS steps.
 * S = median over rounds of the paired ratio (plugins step time / bare step time) - 1; the ratio of
 * the two medians is shown beside it. Because a few % is inside the run-to-run spread of whole fits,
 * the bench also measures directly per step: the median time of one step inside the loop (a timer
 * plugin first in beforeBatch and last in afterBatch, in both arms; thousands of steps), and the
 * time spent in each plugin hook (on wasm a hook's tensor work runs when it is called).
 * The last line is one JSON record.
 *
 *   pnpm run bench:plugin-overhead     # env: ROUNDS (31), STEPS (96)
 */
import "reflect-metadata";
import * as tf from "@tensorflow/tfjs-core";
import { EVENTS, Trainer, tensorData, useBackend, type Callback } from "../packages/core/src/index.js";
import { Scheduler, oneCycleLR } from "../packages/callbacks/lr-schedule/src/index.js";
import { GradClip } from "../packages/callbacks/grad-clip/src/index.js";
import { EarlyStopping } from "../packages/callbacks/early-stopping/src/index.js";
import { TerminateOnNaN } from "../packages/callbacks/terminate-on-nan/src/index.js";
import { BATCH, buildModel, intEnv, median, randomData } from "./models.js";

const ROUNDS = intEnv("ROUNDS", 31);
const STEPS = intEnv("STEPS", 96);

interface HookClock {
  ms: number;
  /** Milliseconds by `plugin.event`. */
  by: Map<string, number>;
}

/** Adds the wall time of every hook of `plugins` to the clock (sync and async hooks). */
function timed(plugins: Callback[], clock: HookClock): Callback[] {
  for (const p of plugins) {
    const target = p as unknown as Record<string, unknown>;
    for (const event of EVENTS) {
      const hook = target[event];
      if (typeof hook !== "function") continue;
      const key = `${p.name}.${event}`;
      const add = (start: number) => {
        const ms = performance.now() - start;
        clock.ms += ms;
        clock.by.set(key, (clock.by.get(key) ?? 0) + ms);
      };
      target[event] = function (this: unknown, ctx: unknown) {
        const start = performance.now();
        let sync = true;
        try {
          const r = hook.call(p, ctx);
          if (r && typeof (r as Promise<unknown>).then === "function") {
            sync = false;
            return (r as Promise<unknown>).finally(() => add(start));
          }
          return r;
        } finally {
          if (sync) add(start);
        }
      };
    }
  }
  return plugins;
}

function plugins(): Callback[] {
  return [
    new Scheduler(oneCycleLR({ maxLr: 1e-3, totalSteps: (ROUNDS + 2) * STEPS })),
    new GradClip({ max: 1 }),
    new EarlyStopping({ monitor: "loss", patience: 1000 }),
    new TerminateOnNaN(),
  ];
}

async function main(): Promise<void> {
  const backend = await useBackend("wasm");
  process.stderr.write(`backend ${backend}, tfjs ${tf.version_core}, batch ${BATCH}, ${STEPS} steps per round, ${ROUNDS} rounds\n`);
  const { xs, ys } = randomData("mlp", BATCH * STEPS);
  const arms = {
    bare: { model: buildModel("mlp"), optimizer: tf.train.adam(1e-3) as tf.Optimizer },
    plugins: { model: buildModel("mlp"), optimizer: tf.train.adam(1e-3) as tf.Optimizer },
  };
  arms.plugins.model.setWeights(arms.bare.model.getWeights());
  const clock: HookClock = { ms: 0, by: new Map() };
  const byHook = new Map<string, number[]>();
  // per-step times from inside the loop (first beforeBatch hook to last afterBatch hook), both arms
  const stepTimes = { bare: [] as number[], plugins: [] as number[] };
  const bracket = (arm: "bare" | "plugins"): Callback => {
    let start = 0;
    return { name: "StepTimer", order: -1e9, beforeBatch: () => void (start = performance.now()), afterBatch: () => void stepTimes[arm].push(performance.now() - start) };
  };
  const run = async (arm: "bare" | "plugins"): Promise<number> => {
    const { model, optimizer } = arms[arm];
    const callbacks = [bracket(arm), ...(arm === "plugins" ? timed(plugins(), clock) : [])];
    const start = performance.now();
    await new Trainer({ model, optimizer, loss: "sparseCategoricalCrossentropy", callbacks }).fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: BATCH, shuffle: false }) });
    return (performance.now() - start) / STEPS;
  };
  await run("bare");
  await run("plugins");
  stepTimes.bare.length = stepTimes.plugins.length = 0;
  const bare: number[] = [];
  const plugged: number[] = [];
  const hooks: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    clock.ms = 0;
    let b: number;
    let p: number;
    if (round % 2 === 0) {
      b = await run("bare");
      p = await run("plugins");
    } else {
      p = await run("plugins");
      b = await run("bare");
    }
    bare.push(b);
    plugged.push(p);
    hooks.push(clock.ms / STEPS);
    for (const [k, ms] of clock.by) byHook.set(k, [...(byHook.get(k) ?? []), (ms / STEPS) * 1000]);
    clock.by.clear();
    process.stderr.write(`round ${round + 1}/${ROUNDS}: bare ${b.toFixed(3)} ms/step, plugins ${p.toFixed(3)} ms/step, hooks ${(clock.ms / STEPS).toFixed(3)} ms/step\n`);
  }
  for (const a of Object.values(arms)) {
    a.model.dispose();
    a.optimizer.dispose();
  }
  tf.dispose([xs, ys]);

  const paired = median(plugged.map((p, i) => p / bare[i]!));
  const slowdown = paired - 1;
  const ofMedians = median(plugged) / median(bare) - 1;
  const hookMs = median(hooks);
  const stepBare = median(stepTimes.bare);
  const stepPlugins = median(stepTimes.plugins);
  const direct = (stepPlugins - stepBare) / stepBare;
  const rows = [
    ["bare loop", median(bare).toFixed(3), Math.min(...bare).toFixed(3), Math.max(...bare).toFixed(3), ""],
    ["loop + 4 plugins", median(plugged).toFixed(3), Math.min(...plugged).toFixed(3), Math.max(...plugged).toFixed(3), `paired ${paired.toFixed(4)}, of medians ${(1 + ofMedians).toFixed(4)}`],
    ["  time in plugin hooks", hookMs.toFixed(3), Math.min(...hooks).toFixed(3), Math.max(...hooks).toFixed(3), `${((100 * hookMs) / median(bare)).toFixed(2)} % of a bare step (upper bound)`],
    ["per step, inside the loop: bare", stepBare.toFixed(3), "", "", `${stepTimes.bare.length} steps`],
    ["per step, inside the loop: plugins", stepPlugins.toFixed(3), "", "", `+${((stepPlugins - stepBare) * 1000).toFixed(0)} us = ${(100 * direct).toFixed(2)} %`],
  ];
  const header = ["arm", "median ms/step", "min", "max", "vs bare"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  console.log(fmt(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(fmt(r));
  console.log("");
  const perHook = [...byHook].map(([k, us]) => [k, median(us)] as const).filter(([, us]) => us >= 0.5);
  console.log(`per hook (median us per step): ${perHook.map(([k, us]) => `${k} ${us.toFixed(1)}`).join(", ")}`);
  console.log(`plugins: Scheduler(oneCycleLR: lr and beta1 every step), GradClip({ max: 1 }) (global norm), EarlyStopping({ monitor: "loss" }), TerminateOnNaN()`);
  console.log(`S = median of paired (plugins / bare) step-time ratios - 1 = ${slowdown.toFixed(4)} (target <= 0.03); of medians: ${ofMedians.toFixed(4)}`);
  console.log(`direct: median step time inside the loop (beforeBatch .. afterBatch, ${stepTimes.bare.length} steps per arm): ${stepBare.toFixed(3)} vs ${stepPlugins.toFixed(3)} ms = ${(100 * direct).toFixed(2)} %`);
  console.log(`the hooks themselves take ${(hookMs * 1000).toFixed(0)} us per step, timed around each call (an upper bound: a GC pause that lands in a hook counts)`);
  const r4 = (x: number) => Math.round(x * 10_000) / 10_000;
  console.log(JSON.stringify({ bench: "plugin-overhead", slowdown: r4(slowdown), slowdown_of_medians: r4(ofMedians), step_direct: r4(direct), hooks_us_per_step: Math.round(hookMs * 1000) }));
}

await main();
process.exit(0);
