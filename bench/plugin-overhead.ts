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
 * Each arm has its own identically initialised model and optimizer. One warm-up fit per arm, then
 * interleaved rounds (the order of the arms rotates); a round is one whole `fit` of STEPS steps.
 * S = median over rounds of the paired ratio (plugins / bare step time) - 1. Because a few % is
 * inside the run-to-run spread of whole fits, the bench also measures directly per step: the median
 * time of one step inside the loop (a timer plugin first in beforeBatch and last in afterBatch, in
 * every arm, thousands of steps), and the time spent in each plugin hook. The last line is JSON.
 *
 *   pnpm run bench:plugin-overhead     # env: ROUNDS (31), STEPS (96)
 */
import "reflect-metadata";
import * as tf from "@tensorflow/tfjs-core";
import { EVENTS, Trainer, tensorData, useBackend, type Callback } from "../packages/core/src/index.js";
import { Scheduler, constant, oneCycleLR } from "../packages/callbacks/lr-schedule/src/index.js";
import { GradClip } from "../packages/callbacks/grad-clip/src/index.js";
import { EarlyStopping } from "../packages/callbacks/early-stopping/src/index.js";
import { TerminateOnNaN } from "../packages/callbacks/terminate-on-nan/src/index.js";
import { BATCH, buildModel, intEnv, median, randomData, printTable } from "./models.js";

const ROUNDS = intEnv("ROUNDS", 31);
const STEPS = intEnv("STEPS", 96);
const ARMS = ["bare", "plugins", "same-path"] as const;
type Arm = (typeof ARMS)[number];

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

function plugins(arm: Arm): Callback[] {
  if (arm === "bare") return [];
  const samePath = arm === "same-path";
  return [
    samePath ? new Scheduler({ lr: constant(1e-3), momentum: constant(0.9) }) : new Scheduler(oneCycleLR({ maxLr: 1e-3, totalSteps: (ROUNDS + 2) * STEPS })),
    new GradClip({ max: samePath ? 1e30 : 1 }),
    new EarlyStopping({ monitor: "loss", patience: 1000 }),
    new TerminateOnNaN(),
  ];
}

async function main(): Promise<void> {
  const backend = await useBackend("wasm");
  process.stderr.write(`backend ${backend}, tfjs ${tf.version_core}, batch ${BATCH}, ${STEPS} steps per round, ${ROUNDS} rounds\n`);
  const { xs, ys } = randomData("mlp", BATCH * STEPS);
  const models = Object.fromEntries(ARMS.map((a) => [a, { model: buildModel("mlp"), optimizer: tf.train.adam(1e-3) as tf.Optimizer }])) as Record<Arm, { model: ReturnType<typeof buildModel>; optimizer: tf.Optimizer }>;
  for (const a of ARMS) if (a !== "bare") models[a].model.setWeights(models.bare.model.getWeights());
  const clocks = { plugins: { ms: 0, by: new Map() }, "same-path": { ms: 0, by: new Map() } } as Record<Exclude<Arm, "bare">, HookClock>;
  const byHook = new Map<string, number[]>();
  // per-step times from inside the loop (first beforeBatch hook to last afterBatch hook), every arm
  const stepTimes = Object.fromEntries(ARMS.map((a) => [a, [] as number[]])) as Record<Arm, number[]>;
  const bracket = (arm: Arm): Callback => {
    let start = 0;
    return { name: "StepTimer", order: -1e9, beforeBatch: () => void (start = performance.now()), afterBatch: () => void stepTimes[arm].push(performance.now() - start) };
  };
  const run = async (arm: Arm): Promise<number> => {
    const { model, optimizer } = models[arm];
    const callbacks = [bracket(arm), ...(arm === "bare" ? [] : timed(plugins(arm), clocks[arm]))];
    const start = performance.now();
    await new Trainer({ model, optimizer, loss: "sparseCategoricalCrossentropy", callbacks }).fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: BATCH, shuffle: false }) });
    return (performance.now() - start) / STEPS;
  };
  for (const a of ARMS) await run(a);
  for (const a of ARMS) stepTimes[a].length = 0;
  const perRound = Object.fromEntries(ARMS.map((a) => [a, [] as number[]])) as Record<Arm, number[]>;
  const hooks = { plugins: [] as number[], "same-path": [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of Object.values(clocks)) c.ms = 0;
    const order = ARMS.map((_, i) => ARMS[(i + round) % ARMS.length]!);
    for (const a of order) perRound[a].push(await run(a));
    for (const a of ["plugins", "same-path"] as const) {
      hooks[a].push(clocks[a].ms / STEPS);
      for (const [k, ms] of clocks[a].by) byHook.set(`${a}:${k}`, [...(byHook.get(`${a}:${k}`) ?? []), (ms / STEPS) * 1000]);
      clocks[a].by.clear();
    }
    process.stderr.write(`round ${round + 1}/${ROUNDS}: ${ARMS.map((a) => `${a} ${perRound[a].at(-1)!.toFixed(3)}`).join(", ")} ms/step\n`);
  }
  for (const a of Object.values(models)) {
    a.model.dispose();
    a.optimizer.dispose();
  }
  tf.dispose([xs, ys]);

  const paired = (a: Arm) => median(perRound[a].map((v, i) => v / perRound.bare[i]!)) - 1;
  const ofMedians = (a: Arm) => median(perRound[a]) / median(perRound.bare) - 1;
  const step = (a: Arm) => median(stepTimes[a]);
  const direct = (a: Arm) => (step(a) - step("bare")) / step("bare");
  const header = ["arm", "fit ms/step (median)", "min", "max", "vs bare (paired, of medians)", "one step in the loop (median)", "vs bare"];
  const rows = ARMS.map((a) => [
    a,
    median(perRound[a]).toFixed(3),
    Math.min(...perRound[a]).toFixed(3),
    Math.max(...perRound[a]).toFixed(3),
    a === "bare" ? "" : `${(100 * paired(a)).toFixed(2)} %, ${(100 * ofMedians(a)).toFixed(2)} %`,
    step(a).toFixed(3),
    a === "bare" ? `${stepTimes.bare.length} steps` : `${((step(a) - step("bare")) * 1000).toFixed(0)} us = ${(100 * direct(a)).toFixed(2)} %`,
  ]);
  printTable(header, rows);
  console.log("");
  for (const a of ["plugins", "same-path"] as const) {
    const list = [...byHook].filter(([k]) => k.startsWith(`${a}:`)).map(([k, us]) => [k.slice(a.length + 1), median(us)] as const).filter(([, us]) => us >= 0.5);
    console.log(`${a}: hooks ${(median(hooks[a]) * 1000).toFixed(0)} us per step, timed around each call (an upper bound: a GC pause that lands in a hook counts): ${list.map(([k, us]) => `${k} ${us.toFixed(1)}`).join(", ")}`);
  }
  const S = paired("plugins");
  console.log(`S = median of paired (plugins / bare) fit step-time ratios - 1 = ${S.toFixed(4)} (target <= 0.03)`);
  console.log(`the plugins' own cost, on the same trajectory as bare: ${(100 * paired("same-path")).toFixed(2)} % per fit (paired), ${(100 * direct("same-path")).toFixed(2)} % per step inside the loop`);
  const r4 = (x: number) => Math.round(x * 10_000) / 10_000;
  console.log(JSON.stringify({ bench: "plugin-overhead", slowdown: r4(S), slowdown_same_path: r4(paired("same-path")), step_direct_same_path: r4(direct("same-path")), step_direct: r4(direct("plugins")) }));
}

await main();
process.exit(0);
