import { StateError, type StateDict } from "@fitloop/core";
import { z } from "zod";
import { STOP_KINDS, type EarlyStoppingState, type StopKind } from "./step.js";
import type { SavedWeight } from "./weights.js";

/** What `stateDict()` holds: the decision's counters, why it stopped, and the best weights. */
export interface SavedEarlyStopping {
  readonly state: EarlyStoppingState;
  readonly stop: { readonly kind: StopKind; readonly reason: string } | null;
  readonly weights: readonly SavedWeight[] | null;
}

const epoch = z.number({ message: "must be an epoch (integer >= 0) or null" }).int({ message: "must be an integer >= 0 or null" }).min(0, { message: "must be an integer >= 0 or null" });

const savedWeight = z
  .strictObject({
    shape: z.array(z.number().int().min(0), { message: "must be an array of integers >= 0" }),
    values: z.instanceof(Float32Array, { message: "must be a Float32Array" }),
  })
  .refine((w) => w.values.length === w.shape.reduce((a, b) => a * b, 1), { message: "has a number of values that does not match its shape" });

const stateSchema = z
  .strictObject({
    wait: z.number({ message: "must be an integer >= 0" }).int({ message: "must be an integer >= 0" }).min(0, { message: "must be an integer >= 0" }),
    best: z.number({ message: "must be a finite number or null" }).nullable(),
    bestEpoch: epoch.nullable(),
    stoppedEpoch: epoch.nullable(),
    stop: z.strictObject({ kind: z.enum(STOP_KINDS as [StopKind, ...StopKind[]], { message: `must be one of ${STOP_KINDS.join(", ")}` }), reason: z.string() }).nullable(),
    weights: z.array(savedWeight, { message: "must be an array of { shape, values } or null" }).nullable(),
  })
  .superRefine((s, ctx) => {
    if ((s.best === null) !== (s.bestEpoch === null)) ctx.addIssue({ code: "custom", path: ["bestEpoch"], message: "best and bestEpoch must both be set or both be null" });
  });

export function earlyStoppingStateDict(saved: SavedEarlyStopping): StateDict {
  const { wait, best, bestEpoch, stoppedEpoch } = saved.state;
  return {
    wait,
    best,
    bestEpoch,
    stoppedEpoch,
    stop: saved.stop ? { kind: saved.stop.kind, reason: saved.stop.reason } : null,
    weights: saved.weights ? saved.weights.map((w) => ({ shape: [...w.shape], values: w.values })) : null,
  };
}

/**
 * Checks a loaded state; a `StateError` names the owner and every bad key. With
 * `restoreBestWeights`, a state that has a best epoch must carry its weights (else the restore
 * would silently not happen).
 */
export function parseEarlyStoppingState(owner: string, dict: unknown, restoreBestWeights: boolean): SavedEarlyStopping {
  const r = stateSchema.safeParse(dict);
  if (!r.success) throw new StateError(`${owner}: the saved state is invalid: ${r.error.issues.map((i) => `${i.path.join(".") || "(state)"}: ${i.message}`).join("; ")}`);
  const s = r.data;
  if (restoreBestWeights && s.bestEpoch !== null && s.weights === null) {
    throw new StateError(`${owner}: the saved state is invalid: weights: restoreBestWeights is on and the state has a best epoch (${s.bestEpoch}) but no best weights (was it saved with restoreBestWeights off?)`);
  }
  return {
    state: { wait: s.wait, best: s.best, bestEpoch: s.bestEpoch, stoppedEpoch: s.stoppedEpoch },
    stop: s.stop,
    weights: s.weights,
  };
}
