import { initialBest, isImprovement, resolveMonitorMode, StateError, type ImprovementRule, type MonitorMode, type StateDict } from "@fitloop/core";
import { z } from "zod";

/** Keras `ReduceLROnPlateau`'s options and defaults (camelCase), plus a relative `minDelta`. */
export const plateauSchema = z
  .strictObject({
    monitor: z.string({ message: "must be the name of a logged metric, e.g. val_loss" }).min(1, { message: "must be the name of a logged metric, e.g. val_loss" }).default("val_loss"),
    mode: z.enum(["auto", "min", "max"], { message: 'must be "auto", "min" or "max"' }).default("auto"),
    factor: z.number({ message: "must be a number in (0, 1)" }).gt(0, { message: "must be in (0, 1): new lr = lr * factor" }).lt(1, { message: "must be in (0, 1): new lr = lr * factor (Keras refuses >= 1 too)" }).default(0.1),
    patience: z.number().int({ message: "must be an integer >= 0" }).min(0, { message: "must be an integer >= 0" }).default(10),
    cooldown: z.number().int({ message: "must be an integer >= 0" }).min(0, { message: "must be an integer >= 0" }).default(0),
    minLr: z.number({ message: "must be a number >= 0" }).min(0, { message: "must be >= 0" }).default(0),
    minDelta: z.number({ message: "must be a number >= 0" }).min(0, { message: "must be >= 0" }).default(1e-4),
    minDeltaMode: z.enum(["absolute", "relative"], { message: 'must be "absolute" or "relative"' }).default("absolute"),
  })
  .superRefine((o, ctx) => {
    if (resolveMonitorMode(o.monitor, o.mode) === undefined) {
      ctx.addIssue({ code: "custom", path: ["mode"], message: `"auto" cannot tell whether "${o.monitor}" should go down or up; pass mode "min" or "max"` });
    }
  });

export type PlateauOptions = z.input<typeof plateauSchema>;
export type ResolvedPlateauOptions = z.output<typeof plateauSchema> & { readonly direction: MonitorMode };

/** Where a plateau reduction stands; `best` is `null` before the first value (JSON has no Infinity). */
export interface PlateauState {
  factor: number;
  best: number | null;
  wait: number;
  cooldownCounter: number;
}

export function initialPlateauState(): PlateauState {
  return { factor: 1, best: null, wait: 0, cooldownCounter: 0 };
}

/**
 * The learning rate with the plateau factor applied: `value * factor`, never below `minLr` because
 * of the plateau (a schedule that itself goes below `minLr` still does).
 */
export function applyPlateau(value: number, factor: number, minLr: number): number {
  return Math.max(value * factor, Math.min(value, minLr));
}

/**
 * One epoch of Keras' `ReduceLROnPlateau.on_epoch_end`, as a pure update: cooldown counts down
 * first; an improvement resets the wait; otherwise, out of cooldown, the wait grows and at
 * `patience` the factor shrinks if the current lr is still above `minLr` (compared in float32, as
 * Keras compares its variable).
 */
export function plateauUpdate(state: PlateauState, current: number, currentLr: number, o: ResolvedPlateauOptions): { state: PlateauState; reduced: boolean } {
  const s = { ...state };
  const rule: ImprovementRule = { mode: o.direction, minDelta: o.minDelta, minDeltaMode: o.minDeltaMode };
  if (s.cooldownCounter > 0) {
    s.cooldownCounter--;
    s.wait = 0;
  }
  let reduced = false;
  if (isImprovement(current, s.best ?? initialBest(o.direction), rule)) {
    s.best = current;
    s.wait = 0;
  } else if (s.cooldownCounter === 0) {
    s.wait++;
    if (s.wait >= o.patience && Math.fround(currentLr) > Math.fround(o.minLr)) {
      s.factor *= o.factor;
      s.cooldownCounter = o.cooldown;
      s.wait = 0;
      reduced = true;
    }
  }
  return { state: s, reduced };
}

const stateSchema = z.strictObject({
  factor: z.number().gt(0).max(1),
  best: z.number().nullable(),
  wait: z.number().int().min(0),
  cooldownCounter: z.number().int().min(0),
});

/** Checks a loaded plateau state; a typed error names the owner and the bad keys. */
export function parsePlateauState(owner: string, dict: unknown): PlateauState {
  const r = stateSchema.safeParse(dict);
  if (!r.success) throw new StateError(`${owner}: the saved plateau state is invalid: ${r.error.issues.map((i) => `${i.path.join(".") || "(state)"}: ${i.message}`).join("; ")}`);
  return { ...r.data };
}

export function plateauStateDict(s: PlateauState): StateDict {
  return { factor: s.factor, best: s.best, wait: s.wait, cooldownCounter: s.cooldownCounter };
}
