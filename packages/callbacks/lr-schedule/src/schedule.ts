import { OptionsError, parseOptions } from "@fitloop/core";
import type { z } from "zod";

/**
 * A schedule is a pure value: the hyperparameter at optimizer step `step` (0-based: the first update
 * uses `schedule(0)`), optax-style. It keeps no position, so it can be previewed, composed, and a
 * resumed run continues the curve from its restored step.
 */
export interface Schedule {
  (step: number): number;
  /** What the schedule is, e.g. `cosineAnnealingLR(baseLr=0.001, tMax=100, etaMin=0)`. */
  readonly description: string;
  /** Steps over which the curve is defined; it holds its last value afterwards. `undefined` = unbounded. */
  readonly totalSteps: number | undefined;
}

/** Wraps a step function as a `Schedule`; the step is checked (a non-negative integer). */
export function makeSchedule(description: string, totalSteps: number | undefined, fn: (step: number) => number): Schedule {
  const schedule = (step: number): number => {
    if (!Number.isInteger(step) || step < 0) {
      throw new OptionsError(description, [{ path: "step", message: `must be a non-negative integer (an optimizer step or epoch), got ${String(step)}` }]);
    }
    return fn(step);
  };
  return Object.assign(schedule, { description, totalSteps });
}

/** Validates options with a zod schema, naming the schedule in the error. */
export function scheduleOptions<S extends z.ZodType>(name: string, schema: S, options: unknown): z.output<S> {
  return parseOptions(name, schema, options) as z.output<S>;
}

/** `name(a=1, b=2)` for descriptions. */
export function describe(name: string, options: Readonly<Record<string, unknown>>): string {
  const parts = Object.entries(options)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(", ")}]` : String(v)}`);
  return `${name}(${parts.join(", ")})`;
}

/** The values of `schedule` at steps `0 .. steps-1` (or `from .. to-1`), e.g. to plot it before training. */
export function preview(schedule: Schedule, steps: number | { from: number; to: number }): number[] {
  const { from, to } = typeof steps === "number" ? { from: 0, to: steps } : steps;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to < from) {
    throw new OptionsError("preview", [{ path: "steps", message: `must be a count >= 0 or { from, to } with 0 <= from <= to (integers), got ${JSON.stringify(steps)}` }]);
  }
  const out: number[] = [];
  for (let s = from; s < to; s++) out.push(schedule(s));
  return out;
}
