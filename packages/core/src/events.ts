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
 *             beforeStep       (ctx.logs has this batch's numbers; CancelStep skips applyGradients)
 *             applyGradients
 *             afterStep
 *           afterBatch         (stop requested? -> leave the batch loop)
 *       afterTrain
 *       beforeValidate
 *         for batch in validation: beforeValBatch  forward(training=false)  afterValBatch
 *       afterValidate
 *       checkpoint            (after validation, so savers see fresh val_* metrics)
 *     afterEpoch              (stop requested? -> leave the epoch loop)
 * afterFit                    (always; also on cancel or error, with the outcome)
 * ```
 *
 * `before*` hooks and the un-paired events run in the resolved plugin order; `after*` hooks run in
 * the reverse order so that pairs nest. Hooks are awaited one by one. A hook may throw a
 * `Cancel*` (see cancel.ts) to skip part of the loop; any other error fails the run.
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
  "afterStep",
  "afterBatch",
  "afterTrain",
  "beforeValidate",
  "beforeValBatch",
  "afterValBatch",
  "afterValidate",
  "checkpoint",
  "afterEpoch",
  "afterFit",
] as const;

export type EventName = (typeof EVENTS)[number];

/** Events whose hooks run in reverse plugin order (the closing half of a pair). */
export const REVERSED_EVENTS: ReadonlySet<EventName> = new Set<EventName>([
  "afterStep",
  "afterBatch",
  "afterTrain",
  "afterValBatch",
  "afterValidate",
  "afterEpoch",
  "afterFit",
]);

export function isEventName(name: string): name is EventName {
  return (EVENTS as readonly string[]).includes(name);
}
