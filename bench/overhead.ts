/**
 * What plugins cost on the wasm MLP (784-256-128-10, Adam 1e-3): a harness shared by the
 * plugin-overhead benches. Each arm trains its own identically initialised model with its own
 * optimizer; the first arm is the baseline (usually no plugins). One warm-up fit per arm, then
 * interleaved rounds (the order of the arms rotates); a round is one whole `fit` of `steps` steps.
 *
 * Three measures per arm, because a few % is inside the run-to-run spread of whole fits here:
 *   paired   median over rounds of (arm / baseline fit step time) - 1
 *   direct   median time of one step inside the loop (a timer plugin first in beforeBatch and last
 *            in afterBatch, thousands of steps) versus the baseline's
 *   hooks    wall time inside the arm's plugin hooks per step, as a share of the baseline step (an
 *            upper bound: a GC pause that lands in a hook counts), with the time of each hook
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { EVENTS, silentLogger, Trainer, tensorData, useBackend, type Callback } from "../packages/core/src/index.js";
import { BATCH, buildModel, median, printTable, randomData } from "./models.js";

/** The events of one training batch: their hooks are the per-step cost (the others run per fit or per epoch). */
const BATCH_EVENTS = new Set(["beforeBatch", "afterForward", "afterLoss", "afterGradients", "beforeStep", "beforeUpdate", "afterStep", "afterBatch", "batchCheckpoint"]);

export interface OverheadArm {
  readonly name: string;
  /** Fresh plugins for one fit (called once per fit). */
  readonly plugins: () => Callback[];
  /** Batch size of this arm (default 64). */
  readonly batchSize?: number;
}

export interface ArmResult {
  readonly name: string;
  /** Median fit time per step over rounds, ms. */
  readonly fitMs: number;
  readonly fitMin: number;
  readonly fitMax: number;
  /** Paired fit ratio - 1 against the baseline (median over rounds). */
  readonly paired: number;
  /** Ratio of medians - 1 against the baseline. */
  readonly ofMedians: number;
  /** Median time of one step inside the loop, ms. */
  readonly stepMs: number;
  /** (stepMs - baseline stepMs) / baseline stepMs. */
  readonly direct: number;
  /** Median time inside this arm's plugin hooks per step, us. */
  readonly hookUs: number;
  /** hookUs as a share of the baseline's step inside the loop. */
  readonly hookShare: number;
  /** Median time per step inside the arm's hooks of batch events (beforeBatch ... batchCheckpoint), us: the per-step cost without per-fit and per-epoch work. */
  readonly batchHookUs: number;
  /** batchHookUs as a share of the baseline's step inside the loop. */
  readonly batchHookShare: number;
  /** Median us per step of each `plugin.event` that took at least 0.5 us. */
  readonly byHook: ReadonlyArray<readonly [string, number]>;
}

interface HookClock {
  ms: number;
  readonly by: Map<string, number>;
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
          const r = (hook as (c: unknown) => unknown).call(p, ctx);
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

/** The wasm backend, and a line on stderr saying what runs. */
export async function startWasmBench(rounds: number, steps: number): Promise<void> {
  const backend = await useBackend("wasm");
  process.stderr.write(`backend ${backend}, tfjs ${tf.version_core}, batch ${BATCH}, ${steps} steps per round, ${rounds} rounds\n`);
}

export async function measureOverhead(opts: { arms: readonly OverheadArm[]; rounds: number; steps: number }): Promise<ArmResult[]> {
  const { arms, rounds, steps } = opts;
  const samples = BATCH * steps;
  const { xs, ys } = randomData("mlp", samples);
  const first = buildModel("mlp");
  const rigs = arms.map((arm, i) => {
    const model: tfl.LayersModel = i === 0 ? first : buildModel("mlp");
    if (i > 0) model.setWeights(first.getWeights());
    return { arm, model, optimizer: tf.train.adam(1e-3) as tf.Optimizer, clock: { ms: 0, by: new Map<string, number>() } as HookClock, perRound: [] as number[], stepTimes: [] as number[], hookPerStep: [] as number[], byHook: new Map<string, number[]>() };
  });
  type Rig = (typeof rigs)[number];
  const run = async (rig: Rig): Promise<void> => {
    let start = 0;
    const timer: Callback = { name: "StepTimer", order: -1e9, beforeBatch: () => void (start = performance.now()), afterBatch: () => void rig.stepTimes.push(performance.now() - start) };
    const batchSize = rig.arm.batchSize ?? BATCH;
    const n = Math.ceil(samples / batchSize);
    rig.clock.ms = 0;
    rig.clock.by.clear();
    const t0 = performance.now();
    await new Trainer({ model: rig.model, optimizer: rig.optimizer, loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [timer, ...timed(rig.arm.plugins(), rig.clock)] }).fit({ epochs: 1, train: tensorData(xs, ys, { batchSize, shuffle: false }) });
    rig.perRound.push((performance.now() - t0) / n);
    rig.hookPerStep.push(rig.clock.ms / n);
    for (const [k, ms] of rig.clock.by) rig.byHook.set(k, [...(rig.byHook.get(k) ?? []), (ms / n) * 1000]);
  };
  for (const rig of rigs) await run(rig);
  for (const rig of rigs) {
    rig.perRound.length = 0;
    rig.stepTimes.length = 0;
    rig.hookPerStep.length = 0;
    rig.byHook.clear();
  }
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < rigs.length; i++) await run(rigs[(i + round) % rigs.length]!);
    process.stderr.write(`round ${round + 1}/${rounds}: ${rigs.map((r) => `${r.arm.name} ${r.perRound.at(-1)!.toFixed(3)}`).join(", ")} ms/step\n`);
  }
  for (const r of rigs) {
    r.model.dispose();
    r.optimizer.dispose();
  }
  tf.dispose([xs, ys]);
  const base = rigs[0]!;
  const baseStep = median(base.stepTimes);
  return rigs.map((r) => {
    const stepMs = median(r.stepTimes);
    const hookMs = median(r.hookPerStep);
    // per round: the batch events' share of the hook time, then the median over rounds
    const rounds = r.perRound.length;
    const batchUsPerRound = Array.from({ length: rounds }, (_, i) => [...r.byHook].filter(([k]) => BATCH_EVENTS.has(k.slice(k.lastIndexOf(".") + 1))).reduce((sum, [, us]) => sum + (us[i] ?? 0), 0));
    const batchHookUs = rounds ? median(batchUsPerRound) : 0;
    return {
      name: r.arm.name,
      fitMs: median(r.perRound),
      fitMin: Math.min(...r.perRound),
      fitMax: Math.max(...r.perRound),
      paired: median(r.perRound.map((v, i) => v / base.perRound[i]!)) - 1,
      ofMedians: median(r.perRound) / median(base.perRound) - 1,
      stepMs,
      direct: (stepMs - baseStep) / baseStep,
      hookUs: hookMs * 1000,
      hookShare: hookMs / baseStep,
      batchHookUs,
      batchHookShare: batchHookUs / 1000 / baseStep,
      byHook: [...r.byHook].map(([k, us]) => [k, median(us)] as const).filter(([, us]) => us >= 0.5),
    };
  });
}

const pct = (x: number) => `${(100 * x).toFixed(2)} %`;

/** The table every overhead bench prints. */
export function printOverhead(results: readonly ArmResult[]): void {
  const header = ["arm", "fit ms/step (median)", "min", "max", "vs base (paired, of medians)", "one step in the loop (median)", "vs base", "in its hooks per step", "of which batch hooks"];
  printTable(
    header,
    results.map((r, i) => [
      r.name,
      r.fitMs.toFixed(3),
      r.fitMin.toFixed(3),
      r.fitMax.toFixed(3),
      i === 0 ? "(base)" : `${pct(r.paired)}, ${pct(r.ofMedians)}`,
      r.stepMs.toFixed(3),
      i === 0 ? "(base)" : pct(r.direct),
      i === 0 ? "" : `${r.hookUs.toFixed(0)} us = ${pct(r.hookShare)}`,
      i === 0 ? "" : `${r.batchHookUs.toFixed(0)} us = ${pct(r.batchHookShare)}`,
    ]),
  );
  console.log("");
  for (const r of results.slice(1)) if (r.byHook.length) console.log(`${r.name}: ${r.byHook.map(([k, us]) => `${k} ${us.toFixed(1)} us`).join(", ")}`);
}

export const r4 = (x: number): number => Math.round(x * 10_000) / 10_000;
