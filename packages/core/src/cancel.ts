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
