import * as tf from "@tensorflow/tfjs-core";
import { FitloopError } from "./errors.js";
import type { EventName } from "./events.js";
import type { LogAggregate, Logs } from "./state.js";

/** How a value a plugin logs per batch becomes the epoch's value. */
export type LogReduce = "mean" | "sum" | "min" | "max" | "last";

export interface LogOptions {
  /** Epoch value of a per-batch log: mean over the batches that logged it (default), sum, min, max, last. */
  readonly reduce?: LogReduce;
}

/** Names plain objects already have (`__proto__`, `constructor`, `toString`, ...): refused as log and metric names. */
export function isObjectMember(name: string): boolean {
  return name === "__proto__" || name === "prototype" || name in Object.prototype;
}

function invalidLog(plugin: string, event: EventName, message: string): FitloopError {
  return new FitloopError("INVALID_LOG", `ctx.log from "${plugin}" in ${event}: ${message}`);
}

const REDUCES: ReadonlySet<string> = new Set(["mean", "sum", "min", "max", "last"]);

/** Training-batch events in which `ctx.log` adds to the batch's logs. */
const BATCH_EVENTS: ReadonlySet<EventName> = new Set<EventName>(["beforeBatch", "afterForward", "afterLoss", "afterGradients", "beforeStep", "afterStep", "afterBatch"]);
/** Events after the step's one device read: numbers still go in, tensors no longer can. */
const AFTER_READ: ReadonlySet<EventName> = new Set<EventName>(["beforeStep", "afterStep", "afterBatch"]);
/** Epoch events in which `ctx.log` sets an epoch value. */
const EPOCH_EVENTS: ReadonlySet<EventName> = new Set<EventName>(["beforeEpoch", "beforeTrain", "afterTrain", "beforeValidate", "afterValidate", "afterEpoch"]);


/**
 * Values plugins add to the logs (`ctx.log`). Per batch, scalar tensors wait for the step's one
 * packed device read (core reads loss, metrics and these together), numbers go in directly; over an
 * epoch each name is reduced as its first `log` call asked. Names the loop itself writes (loss,
 * metrics and their `val_` forms) are reserved, and in one step a name belongs to the plugin that
 * logged it first (another plugin logging it too is an error: two meanings under one key).
 *
 * Ownership: a logged tensor is the loop's to dispose after the read. A tensor the loop already
 * owns (loss, outputs, a gradient, a variable), or one already waiting under another name, is
 * logged as a clone (clones share the data), so nothing is disposed twice or under a plugin's feet.
 */
export class PluginLogs {
  private readonly pending = new Map<string, tf.Scalar>();
  private readonly numbers = new Map<string, number>();
  /** Which plugin logged each name in this step. */
  private readonly owners = new Map<string, string>();
  /** This epoch's reductions: the state's `epochProgress.plugins`, so checkpoints carry them. */
  private epoch: Record<string, LogAggregate> = {};
  private readonly reduces = new Map<string, LogReduce>();
  private read = false;

  constructor(
    private readonly reserved: ReadonlySet<string>,
    /** Whether the loop owns `t` for this batch (loss, outputs, gradients) or it is a variable. */
    private readonly loopOwns: (t: tf.Tensor) => boolean,
  ) {}

  /** Checks a `ctx.log` call; returns whether it is a batch value (else an epoch value). */
  check(plugin: string, event: EventName, name: unknown, value: unknown, options: LogOptions | undefined): boolean {
    if (typeof name !== "string" || name.length === 0) throw invalidLog(plugin, event, `the name must be a non-empty string, got ${String(name)}`);
    if (this.reserved.has(name)) throw invalidLog(plugin, event, `"${name}" is written by the loop itself (reserved: ${[...this.reserved].join(", ")}); choose another name`);
    // log records are plain objects: such a name would be lost (constructor, toString) or change Object.prototype (__proto__)
    if (isObjectMember(name)) throw invalidLog(plugin, event, `"${name}" is a name every JavaScript object already has; log records are plain objects, so it would be lost or corrupt them: choose another name`);
    const reduce = options?.reduce;
    if (reduce !== undefined && !REDUCES.has(reduce)) throw invalidLog(plugin, event, `reduce must be mean, sum, min, max or last, got ${String(reduce)}`);
    const isTensor = value instanceof tf.Tensor;
    if (!isTensor && typeof value !== "number") throw invalidLog(plugin, event, `"${name}" must be a number or a scalar tensor, got ${typeof value}`);
    if (isTensor && (value.size !== 1 || value.isDisposed)) throw invalidLog(plugin, event, `"${name}" must be a live scalar tensor, got shape [${value.shape.join(", ")}]${value.isDisposed ? " (disposed)" : ""}`);
    if (BATCH_EVENTS.has(event)) {
      if (isTensor && (this.read || AFTER_READ.has(event))) throw invalidLog(plugin, event, `"${name}" is a tensor, but this step's device read is done (tensors can be logged up to afterGradients; log a number here)`);
      const owner = this.owners.get(name);
      if (owner !== undefined && owner !== plugin) throw invalidLog(plugin, event, `"${name}" was already logged in this step by "${owner}"; two plugins cannot log one name (rename one, or read the other's value with ctx.hasLog / ctx.logs)`);
      this.owners.set(name, plugin);
      return true;
    }
    if (EPOCH_EVENTS.has(event)) {
      if (isTensor) throw invalidLog(plugin, event, `"${name}": epoch values must be numbers (read the tensor yourself once per epoch)`);
      return false;
    }
    throw invalidLog(plugin, event, `logs belong to a training batch or an epoch; ${event} has neither`);
  }

  /** A batch value: a tensor waits for the read (the loop disposes it); a number goes in now or at the read. */
  addBatch(name: string, value: number | tf.Scalar, reduce: LogReduce | undefined, batchLogs: Logs | undefined): void {
    if (!this.reduces.has(name)) this.reduces.set(name, reduce ?? "mean");
    if (this.pending.get(name) === value) return; // the same tensor again
    this.release(name);
    if (value instanceof tf.Tensor) {
      const shared = this.loopOwns(value) || [...this.pending.values()].includes(value);
      // keep: the plugin may log from inside its own tf.tidy
      this.pending.set(name, tf.keep(shared ? tf.clone(value) : value));
    } else if (this.read && batchLogs) {
      batchLogs[name] = value;
    } else {
      this.numbers.set(name, value);
    }
  }

  /** Whether `t` waits for the read under some name (then replacing gradients must not dispose it). */
  isPending(t: tf.Tensor): boolean {
    return [...this.pending.values()].includes(t as tf.Scalar);
  }

  /** Whether this step already has (or will have after the read) a value for `name`. */
  has(name: string, batchLogs: Logs | undefined): boolean {
    return this.pending.has(name) || this.numbers.has(name) || (this.read && batchLogs !== undefined && name in batchLogs);
  }

  /** Tensors to pack into the step's device read, in a fixed order. */
  pendingTensors(): [string, tf.Scalar][] {
    return [...this.pending];
  }

  /** After the read: the step's plugin values; the loop releases the tensors it took (not those it owns otherwise). */
  completeRead(values: ArrayLike<number>, offset: number, logs: Logs): void {
    let i = offset;
    for (const name of [...this.pending.keys()]) {
      logs[name] = values[i++]!;
      this.release(name);
    }
    for (const [name, v] of this.numbers) logs[name] = v;
    this.numbers.clear();
    this.read = true;
  }

  /** End of a training batch: fold its plugin values into the epoch's aggregates. */
  endBatch(batchLogs: Logs | undefined): void {
    if (batchLogs) {
      for (const [name, reduce] of this.reduces) {
        const v = batchLogs[name];
        if (v === undefined) continue;
        const a = (this.epoch[name] ??= { reduce, sum: 0, count: 0, min: Infinity, max: -Infinity, last: Number.NaN });
        a.sum += v;
        a.count++;
        a.min = Math.min(a.min, v);
        a.max = Math.max(a.max, v);
        a.last = v;
      }
    }
    for (const name of [...this.pending.keys()]) this.release(name);
    this.numbers.clear();
    this.owners.clear();
    this.read = false;
  }

  /** Drops the value waiting under `name`; its tensor is disposed unless the loop owns it now (e.g. returned as a gradient). */
  private release(name: string): void {
    const t = this.pending.get(name);
    this.pending.delete(name);
    this.numbers.delete(name);
    if (t && !this.loopOwns(t)) t.dispose();
  }

  /** Reduces into `aggregates` (empty for a new epoch; restored ones for a run resumed mid-epoch). */
  startEpoch(aggregates: Record<string, LogAggregate>): void {
    this.epoch = aggregates;
    for (const [name, a] of Object.entries(aggregates)) if (!this.reduces.has(name)) this.reduces.set(name, a.reduce);
  }

  /** The epoch values of per-batch plugin logs. */
  epochValues(): Logs {
    const out: Logs = {};
    for (const [name, a] of Object.entries(this.epoch)) {
      out[name] = a.reduce === "mean" ? a.sum / a.count : a.reduce === "sum" ? a.sum : a.reduce === "min" ? a.min : a.reduce === "max" ? a.max : a.last;
    }
    return out;
  }
}
