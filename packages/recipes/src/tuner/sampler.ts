/**
 * Samplers: how `tune` picks a new trial's parameters. Each parameter is sampled on its own (Optuna's
 * `sample_independent`), in the order of the space, under the journal's lock, from the trial's own
 * seeded stream of uniform draws.
 */
import type { StudyDirection, TrialRecord } from "./replay.js";
import { sample, type CategoricalChoice, type Distribution, type SearchSpace } from "./space.js";

/** What a sampler sees when it picks a parameter of a new trial. */
export interface SamplerContext {
  /** The space `tune` was given. */
  readonly space: SearchSpace;
  /** The study's trials as replayed from the journal (every process's, every state), by number. */
  readonly trials: readonly TrialRecord[];
  readonly direction: StudyDirection;
  /**
   * Uniform draws in [0, 1) from the trial's seeded stream (`trial.seed`), shared by the trial's
   * parameters in the order of the space: the same study history gives the same parameters.
   */
  readonly random: () => number;
}

export interface Sampler {
  readonly name: string;
  /** The external value (a number, or one of the choices) of parameter `name` for the new trial. */
  sample(ctx: SamplerContext, name: string, distribution: Distribution): CategoricalChoice;
}

/** Optuna's `RandomSampler`: each parameter drawn independently by `sample(distribution, random)`. `tune`'s default. */
export function randomSampler(): Sampler {
  return { name: "random", sample: (ctx, _name, d) => sample(d, ctx.random) };
}

/** Whether `s` looks like a `Sampler` (for option validation). */
export const isSampler = (s: unknown): s is Sampler => typeof s === "object" && s !== null && typeof (s as Sampler).sample === "function" && typeof (s as Sampler).name === "string";
