import { OptionsError } from "@fitloop/core";
import { z } from "zod";
import { describe, makeSchedule, scheduleOptions, type Schedule } from "./schedule.js";

const oneCycleSchema = z
  .strictObject({
    maxLr: z.number().gt(0, { message: "must be > 0 (the peak learning rate)" }),
    totalSteps: z.number().int().min(2, { message: "must be an integer >= 2" }).optional(),
    epochs: z.number().int().min(1, { message: "must be an integer >= 1 (with stepsPerEpoch, instead of totalSteps)" }).optional(),
    stepsPerEpoch: z.number().int().min(1, { message: "must be an integer >= 1 (with epochs, instead of totalSteps)" }).optional(),
    pctStart: z.number().gt(0, { message: "must be in (0, 1): the share of steps spent increasing" }).lt(1, { message: "must be in (0, 1): the share of steps spent increasing" }).default(0.3),
    annealStrategy: z.enum(["cos", "linear"], { message: 'must be "cos" or "linear"' }).default("cos"),
    cycleMomentum: z.boolean({ message: "must be true or false" }).default(true),
    baseMomentum: z.number().min(0, { message: "must be >= 0" }).default(0.85),
    maxMomentum: z.number().min(0, { message: "must be >= 0" }).default(0.95),
    divFactor: z.number().gt(0, { message: "must be > 0 (initial lr = maxLr / divFactor)" }).default(25),
    finalDivFactor: z.number().gt(0, { message: "must be > 0 (final lr = initial lr / finalDivFactor)" }).default(1e4),
    threePhase: z.boolean({ message: "must be true or false" }).default(false),
  })
  .superRefine((o, ctx) => {
    const byEpochs = o.epochs !== undefined || o.stepsPerEpoch !== undefined;
    if (o.totalSteps === undefined && !(o.epochs !== undefined && o.stepsPerEpoch !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["totalSteps"], message: "is required (or give both epochs and stepsPerEpoch, as PyTorch)" });
    } else if (o.totalSteps !== undefined && byEpochs) {
      ctx.addIssue({ code: "custom", path: ["totalSteps"], message: "give totalSteps or epochs and stepsPerEpoch, not both" });
    }
    if (o.cycleMomentum && o.baseMomentum > o.maxMomentum) {
      ctx.addIssue({ code: "custom", path: ["baseMomentum"], message: `must be <= maxMomentum (${o.maxMomentum}): momentum is low while the learning rate is high` });
    }
  });

export type OneCycleOptions = z.input<typeof oneCycleSchema>;

export interface OneCycle {
  readonly lr: Schedule;
  /** The inverse cycle on momentum (Adam/Adamax: beta1); `undefined` when `cycleMomentum` is false. */
  readonly momentum: Schedule | undefined;
}

interface Phase {
  endStep: number;
  startLr: number;
  endLr: number;
  startMomentum: number;
  endMomentum: number;
}

/**
 * PyTorch `OneCycleLR` (Smith & Topin, fastai's `fit_one_cycle`): the learning rate rises from
 * `maxLr / divFactor` to `maxLr` over `pctStart` of the steps and anneals to
 * `maxLr / divFactor / finalDivFactor`; momentum does the inverse between `maxMomentum` and
 * `baseMomentum`. Phase ends are PyTorch's (`pctStart * totalSteps - 1`, ...), so values match its
 * steps exactly. After `totalSteps` (where PyTorch raises) both hold their final values.
 */
export function oneCycleLR(options: OneCycleOptions): OneCycle {
  const o = scheduleOptions("oneCycleLR", oneCycleSchema, options);
  const total = o.totalSteps ?? o.epochs! * o.stepsPerEpoch!;
  const initialLr = o.maxLr / o.divFactor;
  const minLr = initialLr / o.finalDivFactor;
  const phases: Phase[] = o.threePhase
    ? [
        { endStep: o.pctStart * total - 1, startLr: initialLr, endLr: o.maxLr, startMomentum: o.maxMomentum, endMomentum: o.baseMomentum },
        { endStep: 2 * o.pctStart * total - 2, startLr: o.maxLr, endLr: initialLr, startMomentum: o.baseMomentum, endMomentum: o.maxMomentum },
        { endStep: total - 1, startLr: initialLr, endLr: minLr, startMomentum: o.maxMomentum, endMomentum: o.maxMomentum },
      ]
    : [
        { endStep: o.pctStart * total - 1, startLr: initialLr, endLr: o.maxLr, startMomentum: o.maxMomentum, endMomentum: o.baseMomentum },
        { endStep: total - 1, startLr: o.maxLr, endLr: minLr, startMomentum: o.baseMomentum, endMomentum: o.maxMomentum },
      ];
  // A phase of zero or negative length would divide by zero (PyTorch returns NaN there): refuse it.
  let previous = 0;
  for (const [i, p] of phases.entries()) {
    if (!(p.endStep > previous)) {
      throw new OptionsError("oneCycleLR", [{ path: "pctStart", message: `phase ${i + 1} of ${phases.length} would be empty with pctStart=${o.pctStart} and ${total} steps (it ends at step ${p.endStep}); use more steps or another pctStart` }]);
    }
    previous = p.endStep;
  }
  const anneal = o.annealStrategy === "cos" ? (a: number, b: number, pct: number) => b + ((a - b) / 2) * (Math.cos(Math.PI * pct) + 1) : (a: number, b: number, pct: number) => (b - a) * pct + a;
  const at = (step: number, which: "lr" | "momentum"): number => {
    const last = phases[phases.length - 1]!;
    if (step >= total - 1) return which === "lr" ? last.endLr : last.endMomentum;
    let start = 0;
    for (const [i, p] of phases.entries()) {
      if (step <= p.endStep || i === phases.length - 1) {
        const pct = (step - start) / (p.endStep - start);
        return which === "lr" ? anneal(p.startLr, p.endLr, pct) : anneal(p.startMomentum, p.endMomentum, pct);
      }
      start = p.endStep;
    }
    return Number.NaN; // unreachable: the last phase always matches
  };
  const desc = describe("oneCycleLR", { maxLr: o.maxLr, totalSteps: total, pctStart: o.pctStart, annealStrategy: o.annealStrategy, divFactor: o.divFactor, finalDivFactor: o.finalDivFactor, threePhase: o.threePhase });
  const lr = makeSchedule(desc, total, (t) => at(t, "lr"));
  const momentum = o.cycleMomentum ? makeSchedule(`${desc}.momentum(baseMomentum=${o.baseMomentum}, maxMomentum=${o.maxMomentum})`, total, (t) => at(t, "momentum")) : undefined;
  return { lr, momentum };
}
