import { z } from "zod";
import { describe, makeSchedule, scheduleOptions, type Schedule } from "./schedule.js";

// Closed forms from PyTorch's documentation (torch.optim.lr_scheduler); option names are PyTorch's in
// camelCase so a config ports line by line. The tests compare against values recorded from PyTorch.

const value = (what: string) => z.number({ message: `must be a finite number (${what})` });
const nonNegative = (what: string) => value(what).min(0, { message: `must be >= 0 (${what})` });
const positive = (what: string) => value(what).gt(0, { message: `must be > 0 (${what})` });
const steps = (what: string) => z.number({ message: `must be a positive integer (${what})` }).int({ message: `must be a positive integer (${what})` }).min(1, { message: `must be a positive integer (${what})` });

/** The same value at every step. */
export function constant(v: number): Schedule {
  const { v: ok } = scheduleOptions("constant", z.strictObject({ v: value("the value") }), { v });
  return makeSchedule(`constant(${ok})`, undefined, () => ok);
}

const cosineSchema = z.strictObject({ baseLr: nonNegative("the starting value"), tMax: steps("steps of the half cosine"), etaMin: nonNegative("the floor").default(0) });
/**
 * PyTorch `CosineAnnealingLR`: `etaMin + (baseLr - etaMin) * (1 + cos(pi * t / tMax)) / 2`.
 * After `tMax` it stays at `etaMin` (PyTorch's curve would rise again: use warm restarts for that).
 */
export function cosineAnnealingLR(options: z.input<typeof cosineSchema>): Schedule {
  const { baseLr, tMax, etaMin } = scheduleOptions("cosineAnnealingLR", cosineSchema, options);
  return makeSchedule(describe("cosineAnnealingLR", { baseLr, tMax, etaMin }), tMax, (t) => (t >= tMax ? etaMin : etaMin + ((baseLr - etaMin) * (1 + Math.cos((Math.PI * t) / tMax))) / 2));
}

const restartsSchema = z.strictObject({
  baseLr: nonNegative("the value at the start of each cycle"),
  t0: steps("length of the first cycle"),
  tMult: z.number().int({ message: "must be an integer >= 1 (growth of each cycle's length, as PyTorch)" }).min(1, { message: "must be an integer >= 1 (growth of each cycle's length, as PyTorch)" }).default(1),
  etaMin: nonNegative("the floor").default(0),
});
/** PyTorch `CosineAnnealingWarmRestarts`: cosine cycles of length `t0`, `t0*tMult`, `t0*tMult^2`, ... */
export function cosineAnnealingWarmRestarts(options: z.input<typeof restartsSchema>): Schedule {
  const { baseLr, t0, tMult, etaMin } = scheduleOptions("cosineAnnealingWarmRestarts", restartsSchema, options);
  return makeSchedule(describe("cosineAnnealingWarmRestarts", { baseLr, t0, tMult, etaMin }), undefined, (t) => {
    // integer cycle arithmetic, exact at the restarts (PyTorch's log formula is a float approximation of it)
    let tCur = t;
    let tI = t0;
    if (tMult === 1) tCur = t % t0;
    else while (tCur >= tI) {
      tCur -= tI;
      tI *= tMult;
    }
    return etaMin + ((baseLr - etaMin) * (1 + Math.cos((Math.PI * tCur) / tI))) / 2;
  });
}

const stepSchema = z.strictObject({ baseLr: nonNegative("the starting value"), stepSize: steps("steps between decays"), gamma: nonNegative("the decay factor").default(0.1) });
/** PyTorch `StepLR`: `baseLr * gamma ^ floor(t / stepSize)`. */
export function stepLR(options: z.input<typeof stepSchema>): Schedule {
  const { baseLr, stepSize, gamma } = scheduleOptions("stepLR", stepSchema, options);
  return makeSchedule(describe("stepLR", { baseLr, stepSize, gamma }), undefined, (t) => baseLr * gamma ** Math.floor(t / stepSize));
}

const multiStepSchema = z.strictObject({
  baseLr: nonNegative("the starting value"),
  milestones: z.array(z.number().int({ message: "must be integers >= 0" }).min(0, { message: "must be integers >= 0" }), { message: "must be an array of steps" }).min(1, { message: "must list at least one step" }),
  gamma: nonNegative("the decay factor").default(0.1),
});
/** PyTorch `MultiStepLR`: multiplies by `gamma` at each milestone (sorted; a repeated milestone counts twice, as PyTorch). */
export function multiStepLR(options: z.input<typeof multiStepSchema>): Schedule {
  const { baseLr, milestones, gamma } = scheduleOptions("multiStepLR", multiStepSchema, options);
  const sorted = [...milestones].sort((a, b) => a - b);
  return makeSchedule(describe("multiStepLR", { baseLr, milestones: sorted, gamma }), undefined, (t) => baseLr * gamma ** sorted.filter((m) => m <= t).length);
}

const exponentialSchema = z.strictObject({ baseLr: nonNegative("the starting value"), gamma: nonNegative("the factor per step") });
/** PyTorch `ExponentialLR`: `baseLr * gamma ^ t`. */
export function exponentialLR(options: z.input<typeof exponentialSchema>): Schedule {
  const { baseLr, gamma } = scheduleOptions("exponentialLR", exponentialSchema, options);
  return makeSchedule(describe("exponentialLR", { baseLr, gamma }), undefined, (t) => baseLr * gamma ** t);
}

const polynomialSchema = z.strictObject({ baseLr: nonNegative("the starting value"), totalIters: steps("steps until the value reaches 0").default(5), power: positive("the polynomial's power").default(1) });
/** PyTorch `PolynomialLR`: `baseLr * (1 - min(t, totalIters) / totalIters) ^ power`. */
export function polynomialLR(options: z.input<typeof polynomialSchema>): Schedule {
  const { baseLr, totalIters, power } = scheduleOptions("polynomialLR", polynomialSchema, options);
  return makeSchedule(describe("polynomialLR", { baseLr, totalIters, power }), totalIters, (t) => baseLr * (1 - Math.min(t, totalIters) / totalIters) ** power);
}

const linearSchema = z.strictObject({
  baseLr: nonNegative("the value the factors multiply"),
  startFactor: z.number().gt(0, { message: "must be in (0, 1] (PyTorch's range)" }).max(1, { message: "must be in (0, 1] (PyTorch's range)" }).default(1 / 3),
  endFactor: z.number().min(0, { message: "must be in [0, 1] (PyTorch's range)" }).max(1, { message: "must be in [0, 1] (PyTorch's range)" }).default(1),
  totalIters: steps("steps from startFactor to endFactor").default(5),
});
/** PyTorch `LinearLR`: `baseLr * (startFactor + (endFactor - startFactor) * min(t, totalIters) / totalIters)`. */
export function linearLR(options: z.input<typeof linearSchema>): Schedule {
  const { baseLr, startFactor, endFactor, totalIters } = scheduleOptions("linearLR", linearSchema, options);
  return makeSchedule(describe("linearLR", { baseLr, startFactor, endFactor, totalIters }), totalIters, (t) => baseLr * (startFactor + ((endFactor - startFactor) * Math.min(t, totalIters)) / totalIters));
}

const warmupSchema = z.strictObject({ peak: nonNegative("the value reached at the end"), steps: steps("warmup steps"), start: nonNegative("the value at step 0").default(0) });
/** From `start` to `peak` in a straight line over `steps`, then `peak`. */
export function linearWarmup(options: z.input<typeof warmupSchema>): Schedule {
  const { peak, steps: n, start } = scheduleOptions("linearWarmup", warmupSchema, options);
  return makeSchedule(describe("linearWarmup", { start, peak, steps: n }), n, (t) => (t >= n ? peak : start + ((peak - start) * t) / n));
}

const expWarmupSchema = z.strictObject({ peak: positive("the value reached at the end"), steps: steps("warmup steps"), start: positive("the value at step 0; the value grows by a constant factor per step") });
/** From `start` to `peak` by a constant factor per step (`start * (peak/start)^(t/steps)`), then `peak`. */
export function exponentialWarmup(options: z.input<typeof expWarmupSchema>): Schedule {
  const { peak, steps: n, start } = scheduleOptions("exponentialWarmup", expWarmupSchema, options);
  return makeSchedule(describe("exponentialWarmup", { start, peak, steps: n }), n, (t) => (t >= n ? peak : start * (peak / start) ** (t / n)));
}

const invSqrtSchema = z.strictObject({ baseLr: nonNegative("the peak, reached at warmupSteps"), warmupSteps: steps("linear warmup steps"), warmupInitLr: nonNegative("the value at step 0").default(0) });
/**
 * Inverse square root (fairseq's `inverse_sqrt`, the Transformer schedule): linear from `warmupInitLr`
 * to `baseLr` over `warmupSteps`, then `baseLr * sqrt(warmupSteps / t)`.
 */
export function inverseSqrt(options: z.input<typeof invSqrtSchema>): Schedule {
  const { baseLr, warmupSteps, warmupInitLr } = scheduleOptions("inverseSqrt", invSqrtSchema, options);
  return makeSchedule(describe("inverseSqrt", { baseLr, warmupSteps, warmupInitLr }), undefined, (t) =>
    t < warmupSteps ? warmupInitLr + ((baseLr - warmupInitLr) * t) / warmupSteps : baseLr * Math.sqrt(warmupSteps / t),
  );
}

const wsdSchema = z.strictObject({
  peak: nonNegative("the stable value"),
  warmupSteps: z.number().int().min(0, { message: "must be an integer >= 0" }),
  stableSteps: z.number().int().min(0, { message: "must be an integer >= 0" }),
  decaySteps: steps("steps of the final decay"),
  start: nonNegative("the value at step 0").default(0),
  final: nonNegative("the value after the decay").default(0),
  decayShape: z.enum(["linear", "cosine", "sqrt"], { message: 'must be "linear", "cosine" or "sqrt" (1 - sqrt, Hägele et al. 2024)' }).default("linear"),
});
/**
 * Warmup-stable-decay: linear warmup from `start` to `peak`, `peak` for `stableSteps`, then a decay
 * to `final` (`linear`, `cosine`, or `sqrt`: `1 - sqrt(progress)`), then `final`.
 */
export function warmupStableDecay(options: z.input<typeof wsdSchema>): Schedule {
  const { peak, warmupSteps, stableSteps, decaySteps, start, final, decayShape } = scheduleOptions("warmupStableDecay", wsdSchema, options);
  const decayStart = warmupSteps + stableSteps;
  const shape = { linear: (p: number) => 1 - p, cosine: (p: number) => (1 + Math.cos(Math.PI * p)) / 2, sqrt: (p: number) => 1 - Math.sqrt(p) }[decayShape];
  return makeSchedule(describe("warmupStableDecay", { start, peak, final, warmupSteps, stableSteps, decaySteps, decayShape }), decayStart + decaySteps, (t) => {
    if (t < warmupSteps) return start + ((peak - start) * t) / warmupSteps;
    if (t < decayStart) return peak;
    if (t >= decayStart + decaySteps) return final;
    return final + (peak - final) * shape((t - decayStart) / decaySteps);
  });
}
