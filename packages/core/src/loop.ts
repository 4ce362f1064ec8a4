import * as tf from "@tensorflow/tfjs-core";
import type { Batch } from "./callback.js";
import { applyGradientsScaled } from "./grads.js";
import { CancelBatch, CancelEpoch, CancelStep, Cancellation, misplacedCancel, type CancellationClass } from "./cancel.js";
import { describe, type BatchChecker } from "./batch-checks.js";
import { DataError, FitloopError, type BatchLocation } from "./errors.js";
import type { DataCursor, DataSource } from "./data.js";
import type { EventName } from "./events.js";
import type { LossFn } from "./losses.js";
import { withRandom, type Rng } from "./rng.js";
import type { RunScope } from "./run.js";
import { emptyEpochProgress, type Logs } from "./state.js";

/** What the loop needs besides the run scope. */
export interface LoopSpec {
  readonly train: DataSource;
  readonly validation: DataSource | undefined;
  readonly loss: LossFn;
  readonly metrics: readonly [string, LossFn][];
  /** Deterministic mode: tfjs's `Math.random` draws come from here during forward passes. */
  readonly rng: Rng | undefined;
  readonly startEpoch: number;
  readonly startBatch: number;
  /** `loss` and the metric names: the batch logs averaged by samples over an epoch. */
  readonly logNames: readonly string[];
  /** Per-batch data checks (`dataChecks`). */
  readonly checks: { readonly train: BatchChecker; readonly validation: BatchChecker | undefined };
}

/**
 * Runs `before`, then `body`, then `after`. A `cancel` thrown inside skips the rest of `body`
 * and still runs `after`; any other error propagates and skips `after` (afterFit alone always runs).
 */
export async function withEvents(run: RunScope, before: EventName, after: EventName, cancel: CancellationClass | null, body: () => Promise<void>, onCancel?: () => void): Promise<boolean> {
  let cancelled = false;
  try {
    await run.fire(before);
    await body();
  } catch (e) {
    if (cancel === null || !(e instanceof cancel)) throw e;
    cancelled = true;
    run.logger.debug(`fitloop: ${cancel.name}${(e as Cancellation).reason ? `: ${(e as Cancellation).reason}` : ""}`);
    onCancel?.();
  }
  await run.fire(after);
  return cancelled;
}

export async function fitLoop(run: RunScope, spec: LoopSpec): Promise<void> {
  const { state } = run;
  for (state.epoch = spec.startEpoch; state.epoch < state.epochs; state.epoch++) {
    const startBatch = state.epoch === spec.startEpoch ? spec.startBatch : 0;
    state.epochLogs = {};
    run.epochRecorded = false;
    // resumed mid-epoch: carry on with the saved totals, so the epoch's means are those of an uninterrupted run
    if (startBatch === 0) state.epochProgress = emptyEpochProgress();
    run.pluginLogs.startEpoch(state.epochProgress.plugins);
    state.batchIndex = startBatch; // > 0 in beforeEpoch/beforeTrain: the epoch is resumed mid-way
    // a cut epoch's afterEpoch sees the epoch's logs so far (often none), not the last batch's; no history record is made
    const cancelled = await withEvents(run, "beforeEpoch", "afterEpoch", CancelEpoch, () => epoch(run, spec, startBatch), () => run.setLogs(state.epochLogs));
    // CancelEpoch cut the epoch on purpose: a resume goes on with the next one, as this run does
    if (cancelled) state.cursor = { epoch: state.epoch + 1, batchIndex: 0 };
    // The epoch's safe point exists only when the epoch is over. A run stopped mid-epoch still ran
    // validation and afterEpoch on the part it trained; a snapshot then would resume into those hooks
    // twice. Its safe point is the batchCheckpoint where the stop was asked for.
    if (state.cursor.epoch === state.epoch + 1 && state.cursor.batchIndex === 0) await run.fire("epochCheckpoint");
    if (run.stopRequested) break;
  }
}

async function epoch(run: RunScope, spec: LoopSpec, startBatch: number): Promise<void> {
  const { state } = run;
  state.batchesPerEpoch = spec.train.batchesPerEpoch;
  await withEvents(run, "beforeTrain", "afterTrain", null, () => train(run, spec, startBatch));
  if (spec.validation) await withEvents(run, "beforeValidate", "afterValidate", null, () => validate(run, spec, spec.validation!));
  run.setLogs(state.epochLogs);
  state.history.push({ epoch: state.epoch, logs: { ...state.epochLogs } });
  run.epochRecorded = true;
}

async function train(run: RunScope, spec: LoopSpec, startBatch: number): Promise<void> {
  const { state } = run;
  const progress = state.epochProgress;
  state.batchIndex = startBatch;
  let stoppedEarly = false;
  for await (const batch of sourceBatches(spec.train, { epoch: state.epoch, batchIndex: startBatch }, () => ({ role: "train", epoch: state.epoch, index: state.batchIndex }))) {
    checkOrDispose(spec.checks.train, batch, { role: "train", epoch: state.epoch, index: state.batchIndex });
    const out: { logs?: Logs } = {};
    const count = () => {
      if (out.logs) {
        // loss and metrics: sample-weighted means, as Keras reports them
        for (const k of spec.logNames) progress.sums[k] = (progress.sums[k] ?? 0) + out.logs[k]! * run.batchSize;
        progress.samples += run.batchSize;
      }
      state.batchIndex++;
      state.globalBatch++;
    };
    try {
      await trainBatch(run, spec, batch, out);
    } catch (e) {
      // CancelEpoch/CancelFit after the step (afterStep, afterBatch): the batch was trained, so it
      // counts as in an uninterrupted run (a snapshot then resumes with the same totals)
      if (e instanceof Cancellation && state.cursor.epoch === state.epoch && state.cursor.batchIndex === state.batchIndex + 1) count();
      throw e;
    }
    // the batch is over, trained or cancelled (CancelBatch): a resume goes on with the next one
    state.cursor = { epoch: state.epoch, batchIndex: state.batchIndex + 1 };
    count();
    await run.fire("batchCheckpoint");
    await maybeYield(run);
    if (run.stopRequested) {
      stoppedEarly = state.batchesPerEpoch === undefined || state.batchIndex < state.batchesPerEpoch;
      break;
    }
  }
  // A stop in the middle of the epoch leaves the cursor at the next untrained batch.
  if (!stoppedEarly) state.cursor = { epoch: state.epoch + 1, batchIndex: 0 };
  const means: Logs = {};
  for (const [k, v] of Object.entries(progress.sums)) means[k] = v / progress.samples;
  const lr = currentLearningRate(run);
  if (lr !== undefined) means["lr"] = lr;
  state.epochLogs = { ...state.epochLogs, ...means, ...run.pluginLogs.epochValues() };
  run.setLogs(state.epochLogs);
}

/**
 * A loop whose awaits all resolve at once (the cpu and wasm backends' reads) never gives timers,
 * I/O or signal handlers a turn: a progress bar's redraws, a dashboard's stream, a checkpoint's
 * SIGINT handler would wait for the end of fit(). So between batches, at most every
 * `yieldEveryMs`, the loop lets the event loop run (one macrotask turn, microseconds).
 */
async function maybeYield(run: RunScope): Promise<void> {
  if (run.yieldEveryMs === false) return;
  const now = performance.now();
  if (now - run.lastYield < run.yieldEveryMs) return;
  await yieldToEventLoop();
  run.lastYield = performance.now();
}

// setImmediate in Node; a message (not clamped to 4 ms as nested timeouts are) in browsers
const yieldToEventLoop: () => Promise<void> =
  typeof setImmediate === "function"
    ? () => new Promise<void>((resolve) => setImmediate(resolve))
    : typeof MessageChannel === "function"
      ? () =>
          new Promise<void>((resolve) => {
            const channel = new MessageChannel();
            channel.port1.onmessage = () => {
              channel.port1.close();
              resolve();
            };
            channel.port2.postMessage(null);
          })
      : () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** One training batch; `out.logs` gets its logs once they are read (not when cancelled before). */
async function trainBatch(run: RunScope, spec: LoopSpec, batch: Batch, out: { logs?: Logs }): Promise<void> {
  run.startBatch();
  run.batch = batch;
  run.batchSize = batch.xs.shape[0] ?? 0;
  run.stepSkipped = true;
  run.skipReasons = [];
  run.setLogs({});
  let logs: Logs | undefined;
  try {
    await withEvents(run, "beforeBatch", "afterBatch", CancelBatch, async () => {
      const { loss, grads, outputs } = forwardBackward(run, spec, batch);
      run.loss = loss;
      run.grads = grads;
      run.outputs = outputs;
      let skip = false;
      try {
        await run.fire("afterForward");
        await run.fire("afterLoss");
        await run.fireGradients();
      } catch (e) {
        if (!(e instanceof CancelStep)) throw e;
        skip = true; // gradients exist but are not applied
      }
      logs = out.logs = await readLogs(run, spec, batch);
      await step(run, skip);
    });
  } finally {
    run.pluginLogs.endBatch(logs);
    disposeBatch(run, batch);
  }
}

function forwardBackward(run: RunScope, spec: LoopSpec, batch: Batch): { loss: tf.Scalar; grads: tf.NamedTensorMap; outputs: tf.Tensor } {
  const vars = run.model.trainableWeights.map((w) => w.read() as tf.Variable);
  let outputs: tf.Tensor | undefined;
  const lossFn = (): tf.Scalar => {
    try {
      const preds = run.model.apply(batch.xs, { training: true }) as tf.Tensor;
      outputs = tf.keep(preds);
      let total = tf.mean(spec.loss(batch.ys, preds)) as tf.Scalar;
      for (const reg of run.model.calculateLosses()) total = tf.add(total, reg);
      return total;
    } catch (e) {
      releaseTape();
      throw e;
    }
  };
  const compute = () => run.optimizer.computeGradients(lossFn, vars);
  try {
    const { value, grads } = spec.rng ? withRandom(spec.rng, compute) : compute();
    return { loss: value, grads, outputs: outputs! };
  } catch (e) {
    outputs?.dispose(); // kept outside the tape's scope: ours to release when the loss fails
    throw e;
  }
}

/**
 * tfjs keeps a clone of every tensor the backward pass will need on the gradient tape, and only
 * backprop releases them: when the forward pass throws, they would leak. (tfjs 4.22 engine internals.)
 */
function releaseTape(): void {
  const tape = (tf.engine() as unknown as { state: { activeTape: { saved?: tf.Tensor[] }[] | null } }).state.activeTape;
  for (const node of tape ?? []) for (const t of node.saved ?? []) t.dispose();
}

/**
 * The step's one device read, after the gradient stage: loss, every metric and the scalars plugins
 * logged, packed. Its numbers are `ctx.logs` from `beforeStep` on.
 */
async function readLogs(run: RunScope, spec: LoopSpec, batch: Batch): Promise<Logs> {
  const extra = run.pluginLogs.pendingTensors();
  const loss = run.loss!;
  const outputs = run.outputs!;
  const checker = spec.checks.train;
  const flags = checker.due(run.state.globalBatch) ? checker.flags(batch, outputs.shape) : [];
  let values: ArrayLike<number>;
  if (spec.metrics.length === 0 && extra.length === 0 && flags.length === 0) {
    values = await loss.data();
  } else {
    const packed = tf.tidy(() => tf.stack([loss, ...spec.metrics.map(([, fn]) => tf.mean(fn(batch.ys, outputs))), ...extra.map(([, t]) => (t.dtype === "float32" && t.rank === 0 ? t : tf.reshape(tf.cast(t, "float32"), []))), ...flags]));
    tf.dispose(flags);
    values = await packed.data();
    packed.dispose();
  }
  if (flags.length) {
    const at = values.length - flags.length;
    await checker.explain([values[at]!, values[at + 1]!], batch, { role: "train", epoch: run.state.epoch, index: run.state.batchIndex }, outputs.shape);
  }
  const logs: Logs = { loss: values[0]! };
  spec.metrics.forEach(([name], i) => (logs[name] = values[i + 1]!));
  run.pluginLogs.completeRead(values, 1 + spec.metrics.length, logs);
  run.state.batchLogs = logs;
  run.setLogs(logs);
  return logs;
}

async function step(run: RunScope, skip: boolean): Promise<void> {
  let update = false;
  try {
    if (skip) throw new CancelStep();
    await run.fire("beforeStep");
    if (run.skipReasons.length > 0) throw new CancelStep(run.skipReasons.join("; "));
    update = true;
  } catch (e) {
    if (!(e instanceof CancelStep)) throw e;
  }
  if (update) {
    // every skip decision is made: what happens now happens with the update (a CancelStep here escapes as out of scope)
    try {
      await run.fire("beforeUpdate");
    } catch (e) {
      throw e instanceof Cancellation ? misplacedCancel(e, run.lastThrow) : e;
    }
    // in trainable-variable order (see RunScope.replaceGradients); a pending scale goes in with the update
    if (run.gradScale) applyGradientsScaled(run.optimizer, run.grads!, run.gradScale);
    else run.optimizer.applyGradients(run.grads!);
    run.state.step++;
    run.stepSkipped = false;
  }
  run.state.cursor = { epoch: run.state.epoch, batchIndex: run.state.batchIndex + 1 };
  await run.fire("afterStep");
}

function disposeBatch(run: RunScope, batch: Batch): void {
  tf.dispose([batch.xs, batch.ys]);
  run.dropGradScale();
  if (run.outputs) run.outputs.dispose();
  if (run.loss) run.loss.dispose();
  if (run.grads) tf.dispose(Object.values(run.grads));
  run.batch = run.outputs = run.loss = run.grads = undefined;
}

async function validate(run: RunScope, spec: LoopSpec, data: DataSource): Promise<void> {
  const checker = spec.checks.validation!;
  let sums: tf.Tensor | undefined;
  // per checked batch: its index, output shape (names the class range) and the two flags, read with the sums at the end
  const flagged: { index: number; flags: tf.Tensor; outputShape: readonly number[] }[] = [];
  let seen = 0;
  let index = 0;
  try {
    for await (const batch of sourceBatches(data, { epoch: 0, batchIndex: 0 }, () => ({ role: "validation", epoch: run.state.epoch, index }))) {
      checkOrDispose(checker, batch, { role: "validation", epoch: run.state.epoch, index });
      run.batch = batch;
      run.batchSize = batch.xs.shape[0] ?? 0;
      run.valBatchIndex = index;
      try {
        await withEvents(run, "beforeValBatch", "afterValBatch", CancelBatch, async () => {
          const preds = tf.tidy(() => run.model.apply(batch.xs, { training: false }) as tf.Tensor);
          run.outputs = preds;
          const next = tf.tidy(() => {
            const n = run.batchSize;
            const parts = [tf.mul(tf.mean(spec.loss(batch.ys, preds)), n), ...spec.metrics.map(([, fn]) => tf.mul(tf.mean(fn(batch.ys, preds)), n))];
            const packed = tf.stack(parts);
            return sums ? tf.add(sums, packed) : packed;
          });
          sums?.dispose();
          sums = next;
          seen += run.batchSize;
          if (checker.due(index)) {
            const f = checker.flags(batch, preds.shape);
            flagged.push({ index, flags: tf.stack(f), outputShape: preds.shape });
            tf.dispose(f);
          }
        });
      } finally {
        disposeBatch(run, batch);
        run.valBatchIndex = undefined;
      }
      index++;
      await maybeYield(run);
    }
    if (!sums) return;
    const all = tf.tidy(() => tf.concat([sums!, ...flagged.map((f) => f.flags)]));
    const values = await all.data();
    all.dispose();
    const width = 1 + spec.metrics.length;
    for (let k = 0; k < flagged.length; k++) {
      const at = width + 2 * k;
      await checker.explain([values[at]!, values[at + 1]!], undefined, { role: "validation", epoch: run.state.epoch, index: flagged[k]!.index }, flagged[k]!.outputShape);
    }
    const logs: Logs = { val_loss: values[0]! / seen };
    spec.metrics.forEach(([name], i) => (logs[`val_${name}`] = values[i + 1]! / seen));
    run.state.epochLogs = { ...run.state.epochLogs, ...logs };
    run.setLogs(run.state.epochLogs);
  } finally {
    (sums as tf.Tensor | undefined)?.dispose(); // also when a validation hook throws
    tf.dispose(flagged.map((f) => f.flags));
  }
}

/**
 * The batches of `data` from `cursor`, as the loop consumes them. An error the source throws while
 * making a batch is a `DataError` (`SOURCE_FAILED`) naming the batch, with the source's error as
 * `cause` (fitloop's own errors, such as a loader's, already name it and pass through).
 */
async function* sourceBatches(data: DataSource, cursor: DataCursor, where: () => BatchLocation): AsyncGenerator<unknown> {
  const failed = (e: unknown): unknown => {
    if (e instanceof FitloopError) return e;
    const at = where();
    return new DataError("SOURCE_FAILED", `${describe(at)}: the ${at.role} data source threw: ${e instanceof Error ? e.message : String(e)}`, { batch: at, cause: e });
  };
  let it: Iterator<unknown> | AsyncIterator<unknown>;
  try {
    const source = data.batches(cursor) as Iterable<unknown> | AsyncIterable<unknown>;
    it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  } catch (e) {
    throw failed(e); // batches() itself threw, before any batch
  }
  let done = false;
  try {
    for (;;) {
      let r: IteratorResult<unknown>;
      try {
        r = await it.next();
      } catch (e) {
        done = true; // a generator that threw is finished
        throw failed(e);
      }
      if (r.done) {
        done = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!done) await it.return?.(); // the loop stopped early: let the source release what it holds
  }
}

/** The host checks of one yielded batch; a refused batch's tensors are released before the error propagates. */
function checkOrDispose(checker: BatchChecker, batch: unknown, where: BatchLocation): asserts batch is Batch {
  try {
    checker.checkShapes(batch, where);
  } catch (e) {
    if (typeof batch === "object" && batch !== null) {
      for (const t of Object.values(batch)) if (t instanceof tf.Tensor && !t.isDisposed) t.dispose();
    }
    throw e;
  }
}

function currentLearningRate(run: RunScope): number | undefined {
  try {
    return run.hyper.learningRate;
  } catch {
    return undefined; // an optimizer the adapter does not know
  }
}
