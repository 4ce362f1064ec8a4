import { OptionsError } from "@fitloop/core";
import { makeSchedule, type Schedule } from "./schedule.js";

function isSchedule(s: unknown): s is Schedule {
  return typeof s === "function" && typeof (s as Schedule).description === "string";
}

/**
 * One schedule after another (optax's `join_schedules`): `schedules[i]` runs from `boundaries[i-1]`
 * and sees steps counted from there, e.g. a 500-step warmup then a cosine over the rest:
 * `sequence([linearWarmup({ peak: 1e-3, steps: 500 }), cosineAnnealingLR({ baseLr: 1e-3, tMax: 9500 })], [500])`.
 */
export function sequence(schedules: readonly Schedule[], boundaries: readonly number[]): Schedule {
  const issues = [];
  if (!Array.isArray(schedules) || schedules.length === 0 || !schedules.every(isSchedule)) issues.push({ path: "schedules", message: "must be a non-empty array of schedules (made by this package's functions)" });
  if (!Array.isArray(boundaries) || boundaries.length !== (Array.isArray(schedules) ? schedules.length - 1 : -1)) {
    issues.push({ path: "boundaries", message: `must have one step per junction: ${Array.isArray(schedules) ? Math.max(schedules.length - 1, 0) : "schedules.length - 1"} value(s)` });
  } else if (!boundaries.every((b, i) => Number.isInteger(b) && b > (i === 0 ? 0 : boundaries[i - 1]!))) {
    issues.push({ path: "boundaries", message: `must be increasing positive integers, got [${boundaries.join(", ")}]` });
  }
  if (issues.length) throw new OptionsError("sequence", issues);
  const parts = [...schedules];
  const bounds = [...boundaries];
  const last = parts[parts.length - 1]!;
  const total = last.totalSteps === undefined ? undefined : (bounds[bounds.length - 1] ?? 0) + last.totalSteps;
  const description = `sequence(${parts.map((s, i) => (i === 0 ? s.description : `@${bounds[i - 1]} ${s.description}`)).join(", ")})`;
  return makeSchedule(description, total, (t) => {
    let i = 0;
    while (i < bounds.length && t >= bounds[i]!) i++;
    return parts[i]!(i === 0 ? t : t - bounds[i - 1]!);
  });
}

/** The pointwise product, e.g. a warmup factor times a decay, or a constant scale. */
export function product(...schedules: Schedule[]): Schedule {
  if (schedules.length === 0 || !schedules.every(isSchedule)) throw new OptionsError("product", [{ path: "schedules", message: "must be one or more schedules (made by this package's functions)" }]);
  const totals = schedules.map((s) => s.totalSteps);
  const total = totals.every((n) => n !== undefined) ? Math.max(...(totals as number[])) : undefined;
  return makeSchedule(`product(${schedules.map((s) => s.description).join(", ")})`, total, (t) => schedules.reduce((acc, s) => acc * s(t), 1));
}
