/**
 * The loop's events, documented once. `Trainer.fit` runs exactly this (see `loop.ts`):
 *
 * ```
 * beforeFit
 *   for epoch in [startEpoch, epochs):
 *     beforeEpoch
 *       beforeTrain
 *         for batch in train (from the data cursor):
 *           beforeBatch
 *             forward(training=true); loss            -> afterForward, afterLoss
 *             grads = computeGradients(loss)
 *             afterGradients   (may replace grads: clipping, noise, ...)
 *             read logs        (one device read: loss, metrics, tensors plugins logged)
 *             beforeStep       (ctx.logs has this batch's numbers; CancelStep or ctx.skipStep skips the update)
 *             beforeUpdate     (only when the update is applied; weights are still those the gradients
 *                               were taken at: decoupled weight decay; too late to skip)
 *             applyGradients
 *             afterStep
 *           afterBatch         (stop requested? -> leave the batch loop)
 *           batchCheckpoint    (safe point: every plugin is done with this batch)
 *       afterTrain
 *       beforeValidate
 *         for batch in validation: beforeValBatch  forward(training=false)  afterValBatch
 *       afterValidate
 *     afterEpoch               (monitors decide here: early stopping, plateaus)
 *     epochCheckpoint          (safe point, after a whole epoch: every plugin is done with it)
 *   (stop requested? -> leave)
 * afterFit                    (always; also on cancel or error, with the outcome)
 * ```
 *
 * `before*` hooks and the un-paired events run in the resolved plugin order; `after*` hooks run in
 * the reverse order so that pairs nest. Hooks are awaited one by one. A hook may throw a
 * `Cancel*` (see cancel.ts) to skip part of the loop; any other error fails the run.
 *
 * Snapshots (`ctx.snapshot()`, for checkpoint plugins) exist only at the two safe points, which run
 * after every plugin's `afterBatch` / `afterEpoch` whatever the plugin order, so no order can save a
 * state that a plugin was still about to change. Hooks on the safe points must not change state.
 * `epochCheckpoint` fires only after a whole epoch (or one cut short by `CancelEpoch`): a run stopped
 * mid-epoch still validates and runs `afterEpoch` on the part it trained, so its safe point is the
 * `batchCheckpoint` of the batch where the stop was asked for (`ctx.stopRequested` is true there).
 * A run resumed mid-epoch fires `beforeEpoch` and `beforeTrain` again for that epoch, with
 * `state.batchIndex > 0` and `state.resumed`.
 */
export const EVENTS = [
  "beforeFit",
  "beforeEpoch",
  "beforeTrain",
  "beforeBatch",
  "afterForward",
  "afterLoss",
  "afterGradients",
  "beforeStep",
  "beforeUpdate",
  "afterStep",
  "afterBatch",
  "batchCheckpoint",
  "afterTrain",
  "beforeValidate",
  "beforeValBatch",
  "afterValBatch",
  "afterValidate",
  "afterEpoch",
  "epochCheckpoint",
  "afterFit",
] as const;

/** The safe points: every plugin is done with the batch or epoch; `ctx.snapshot()` works here. */
export const CHECKPOINT_EVENTS: ReadonlySet<EventName> = new Set<EventName>(["batchCheckpoint", "epochCheckpoint"]);

export type EventName = (typeof EVENTS)[number];

/** Events whose hooks run in reverse plugin order (the closing half of a pair). */
export const REVERSED_EVENTS: ReadonlySet<EventName> = new Set<EventName>([
  "afterStep",
  "afterBatch",
  "batchCheckpoint",
  "afterTrain",
  "afterValBatch",
  "afterValidate",
  "afterEpoch",
  "afterFit",
]);

export function isEventName(name: string): name is EventName {
  return (EVENTS as readonly string[]).includes(name);
}
