import { FitloopError } from "./errors.js";
import type { EventName } from "./events.js";

/**
 * Typed cancellation, thrown from a hook to skip part of the loop (as in fastai):
 * - `CancelBatch`: skip the rest of this batch (no step); `afterBatch` still runs.
 * - `CancelStep`: compute gradients but do not apply them; `afterStep` still runs.
 * - `CancelEpoch`: skip the rest of this epoch (validation included); `afterEpoch` still runs, with
 *   the epoch's logs so far (none when training was cut), and the epoch gets no history record.
 * - `CancelFit`: end the run now; `afterFit` runs with outcome `cancelled`.
 * For a graceful stop at the end of the batch, use `ctx.requestStop(reason)` instead.
 */
export class Cancellation extends Error {
  constructor(readonly reason: string = "") {
    super(reason);
    this.name = new.target.name;
  }
}
export class CancelBatch extends Cancellation {}
export class CancelStep extends Cancellation {}
export class CancelEpoch extends Cancellation {}
export class CancelFit extends Cancellation {}

export type CancellationClass = typeof CancelBatch | typeof CancelStep | typeof CancelEpoch | typeof CancelFit;

/** Where each cancellation is valid, for the error a misplaced one becomes. */
const CANCEL_SCOPES: Record<string, string> = {
  CancelBatch: "beforeBatch .. afterStep except beforeUpdate, and beforeValBatch (not in the closing afterBatch / afterValBatch, where nothing is left to cancel; not in beforeUpdate, which runs only once the update is certain)",
  CancelStep: "afterForward .. beforeStep",
  CancelEpoch: "beforeEpoch .. afterEpoch, except beforeUpdate (the update is certain there) and afterEpoch itself",
  CancelFit: "beforeFit .. epochCheckpoint, except beforeUpdate (the update is certain there)",
};

/** A cancellation thrown where nothing can catch it: a typed error naming who threw it and where. */
export function misplacedCancel(e: Cancellation, where: { plugin: string; event: EventName } | undefined): FitloopError {
  const by = where ? ` by "${where.plugin}" in ${where.event}` : "";
  const advice =
    where?.event === "afterFit"
      ? "afterFit runs once the run is over, so there is nothing left to cancel: return normally, or throw an Error to report a failure"
      : where?.event === "beforeUpdate"
        ? "beforeUpdate runs only once the update is certain (its hooks may already have changed the weights for it); skip a step with ctx.skipStep() or CancelStep up to beforeStep"
        : "Use CancelFit or ctx.requestStop() to end the run";
  return new FitloopError("CANCEL_OUT_OF_SCOPE", `${e.name} was thrown${by}, where it cancels nothing; it is valid in ${CANCEL_SCOPES[e.name] ?? "no hook"}. ${advice}.`, { cause: e });
}
