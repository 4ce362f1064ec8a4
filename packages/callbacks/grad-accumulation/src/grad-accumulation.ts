import * as tf from "@tensorflow/tfjs-core";
import { axpyTensors, FitloopError, ORDER, parseOptions, scaleTensors, trainableVariables, StateError, type BatchContext, type Callback, type FitEndContext, type HookContext, type StateDict } from "@fitloop/core";
import { z } from "zod";
import { checkAgainstModel, parseGroup, toHost, toTensors, type SavedGroup, type SavedSum } from "./state.js";
import { partialSchema } from "./steps.js";

const optionsSchema = z.strictObject({
  steps: z.number({ message: "must be an integer >= 1: micro-batches per optimizer step" }).int({ message: "must be an integer >= 1: micro-batches per optimizer step" }).min(1, { message: "must be an integer >= 1: micro-batches per optimizer step (1 accumulates nothing)" }),
  partial: partialSchema.default("step"),
  name: z.string({ message: "must be a non-empty string" }).min(1, { message: "must be a non-empty string" }).optional(),
  stateKey: z.string({ message: "must be a non-empty string" }).min(1, { message: "must be a non-empty string" }).optional(),
});

export type GradAccumulationOptions = z.input<typeof optionsSchema>;

/** Where the run's cursor is once a micro-batch's step is done. */
interface Position {
  readonly epoch: number;
  readonly batchIndex: number;
}

/**
 * Gradient accumulation: one optimizer step per group of `steps` micro-batches, with the mean of
 * their gradients weighted by sample count (so 4 batches of 16 give the gradient of one batch of
 * 64, and an uneven last batch counts for what it holds). Runs in the gradient stage before
 * clipping (`ORDER.GRADIENT - 50`): on every micro-batch but a group's last it adds the gradients
 * to sums it keeps on the device and asks core to skip the update (`ctx.skipStep`), so the
 * optimizer step counter, schedules, clipping and guards see optimizer steps; on the last it
 * returns the mean. No device read of its own.
 *
 * Groups do not span epochs. When the data source knows its length, the epoch's last batch closes
 * a partial group and steps with it (`partial: "step"`, as Lightning does) or the partial group is
 * not applied (`"drop"`); for a stream the leftover is dropped at the epoch's end with a warning.
 */
export class GradAccumulation implements Callback {
  readonly name: string;
  readonly order = ORDER.GRADIENT - 50;
  readonly stateKey: string;
  readonly options: Readonly<z.output<typeof optionsSchema>>;
  /** The running sums on the device (plugin-owned across batches), in gradient order, in units of `factor`. */
  private sums: tf.Tensor[] | undefined;
  /**
   * The group's weighted sums are `factor * sums`. A power-of-two first micro-batch size n (the usual
   * case) makes it n: the first micro-batch is then kept as is (no pass), later ones of the same size
   * are added with weight 1, and since scaling by a power of two is exact (outside float32's
   * subnormal and overflow ranges), every result (and a saved state, `factor * sums`) is bit for bit
   * the weighted sums' (`arithmetic.test.ts`). Otherwise 1 (the weighted sums).
   */
  private factor = 1;
  /** The gradient names of the group in progress (the sums' order). */
  private names: string[] = [];
  /** A group from a loaded state or a stopped run, rebuilt on the device at the next micro-batch. */
  private host: SavedGroup | undefined;
  private count = 0;
  private samples = 0;
  /** The cursor right after the last micro-batch accumulated: a group is only kept when the run ends there. */
  private lastAt: Position | undefined;
  /** Samples of the group this batch closed, logged once its update is applied. */
  private closing: number | undefined;
  private trainEnded = false;

  constructor(options: GradAccumulationOptions) {
    this.options = parseOptions("GradAccumulation", optionsSchema, options);
    this.name = this.options.name ?? "GradAccumulation";
    this.stateKey = this.options.stateKey ?? "grad-accumulation";
  }

  /** The group in progress: micro-batches and samples accumulated so far. */
  get accumulated(): { readonly microBatches: number; readonly samples: number } {
    return { microBatches: this.count, samples: this.samples };
  }

  /** One update per group (core's `ctx.updatesPerEpoch`): schedules size themselves in optimizer steps. */
  updatesPerEpoch(batchesPerEpoch: number): number {
    const n = this.options.steps;
    return this.options.partial === "step" ? Math.ceil(batchesPerEpoch / n) : Math.floor(batchesPerEpoch / n);
  }

  beforeFit(ctx: HookContext): void {
    // a new run starts over (what a stopped run kept was for trainer.snapshot(), not for this one)
    this.trainEnded = false;
    if (!ctx.state.resumed) return this.drop();
    if (this.count === 0) return;
    if (this.host) checkAgainstModel(this.name, this.host, trainableVariables(ctx.model));
    const c = ctx.state.cursor;
    if (this.count > c.batchIndex) {
      throw new StateError(`${this.name}: the saved group does not fit the run's position`, [{ path: "microBatches", message: `${this.count} micro-batches accumulated, but the run resumes at batch ${c.batchIndex} of epoch ${c.epoch}: a group does not span epochs` }]);
    }
  }

  afterGradients(ctx: BatchContext): tf.NamedTensorMap | void {
    const n = ctx.batchSize;
    const s = ctx.state;
    if (this.options.steps === 1) {
      this.closing = n;
      return;
    }
    // an earlier plugin asked to skip this step (a guard): its gradients are not to be used, so this
    // micro-batch contributes nothing and does not count toward the group, as a CancelStep there
    if (ctx.skipRequested) return;
    const perEpoch = s.batchesPerEpoch;
    // "drop": a group that cannot fill up before the epoch ends is not accumulated at all
    if (this.count === 0 && this.options.partial === "drop" && perEpoch !== undefined && s.batchIndex + this.options.steps > perEpoch) {
      ctx.skipStep(`partial group at the end of epoch ${s.epoch} (partial: "drop")`);
      return;
    }
    const grads = ctx.grads!;
    const names = Object.keys(grads);
    const rebuilding = this.sums === undefined && this.host !== undefined;
    // a group rebuilt from a saved state takes this model's names (matched by position and shape in beforeFit)
    if (this.count === 0 || rebuilding) this.names = names;
    else if (names.length !== this.names.length || names.some((k, i) => k !== this.names[i])) {
      throw new FitloopError("GRADIENTS_CHANGED", `${this.name}: the gradients of micro-batch ${this.count + 1} of ${this.options.steps} (${names.join(", ")}) are not those the group started with (${this.names.join(", ")}); a weight's trainable flag must not change in the middle of a group`);
    }
    const count = this.count + 1;
    const samples = this.samples + n;
    const endOfEpoch = perEpoch !== undefined && s.batchIndex >= perEpoch - 1;
    const last = count === this.options.steps || endOfEpoch;
    // a group cut short (cancelled batches) can still end partial at the epoch's end
    if (last && count < this.options.steps && this.options.partial === "drop") {
      this.drop();
      ctx.skipStep(`partial group of ${count} micro-batches at the end of epoch ${s.epoch} (partial: "drop")`);
      return;
    }
    const previous = this.takeSums();
    let next: tf.Tensor[];
    try {
      next = tf.tidy(() => {
        const g = Object.values(grads);
        if (previous) {
          // sums += (n / factor) * g, one fused pass on wasm, into the old sums' buffers (donated:
          // disposed below, never read again); the group's last micro-batch also takes the
          // sample-weighted mean in that pass, made now, so the loop owns and disposes it
          return axpyTensors(previous, g, n / this.factor, { donate: true, ...(last ? { scale: this.factor / samples } : {}) });
        }
        this.factor = Number.isInteger(Math.log2(n)) ? n : 1;
        // a clone shares the gradient's data (the loop disposes only its own handle): no pass
        const total = this.factor === n ? g.map((t) => tf.clone(t)) : scaleTensors(g, tf.scalar(n));
        return last ? scaleTensors(total, tf.scalar(this.factor / samples)) : total;
      });
    } catch (e) {
      this.drop();
      throw e;
    } finally {
      if (previous) tf.dispose(previous);
    }
    if (last) {
      this.reset(); // the group is over even if a later plugin skips this update
      this.closing = samples;
      return Object.fromEntries(names.map((k, i) => [k, next[i]!]));
    }
    this.sums = next.map((t) => tf.keep(t)); // the plugin's across batches
    this.count = count;
    this.samples = samples;
    this.lastAt = { epoch: s.epoch, batchIndex: s.batchIndex + 1 };
    ctx.skipStep(`accumulating ${count}/${this.options.steps}`);
  }

  afterStep(ctx: BatchContext): void {
    if (this.closing !== undefined && !ctx.stepSkipped) ctx.log("effective_batch", this.closing);
    this.closing = undefined;
  }

  afterBatch(): void {
    this.closing = undefined; // also when the batch was cancelled before its step
  }

  afterTrain(ctx: HookContext): void {
    this.trainEnded = true;
    const s = ctx.state;
    // stopped in the middle of the epoch: the group stays for a resume from this point
    if (s.cursor.epoch === s.epoch || this.count === 0) return;
    const why = s.batchesPerEpoch === undefined ? "the data source does not say how many batches an epoch has (batchesPerEpoch), so no batch could close it" : `its last batch (of ${s.batchesPerEpoch}) did not reach the gradient stage to close it`;
    ctx.logger.warn(`${this.name}: dropped a partial group of ${this.count} micro-batch(es) (${this.samples} samples) at the end of epoch ${s.epoch}: ${why}; groups do not span epochs`);
    this.drop();
  }

  afterEpoch(ctx: HookContext): void {
    // the training phase did not finish (CancelEpoch): the run goes on with the next epoch
    const ended = this.trainEnded;
    this.trainEnded = false;
    if (ended || this.count === 0) return;
    ctx.logger.warn(`${this.name}: epoch ${ctx.state.epoch} was cut short; dropped its partial group of ${this.count} micro-batch(es) (${this.samples} samples)`);
    this.drop();
  }

  afterFit(ctx: FitEndContext): void {
    if (!this.sums) return;
    const { status } = ctx.outcome;
    const c = ctx.state.cursor;
    const at = this.lastAt;
    // A run stopped or cancelled right after a micro-batch keeps its group, on the host, so
    // trainer.snapshot() resumes it exactly. Ended anywhere else (a failure, a cancel in the middle
    // of a batch), the cursor would replay a micro-batch the sums already hold: drop them.
    if ((status === "stopped" || status === "cancelled") && at && c.epoch === at.epoch && c.batchIndex === at.batchIndex) {
      this.host = { microBatches: this.count, samples: this.samples, sums: this.weightedSums() };
      tf.dispose(this.sums);
      this.sums = undefined;
      return;
    }
    if (status !== "failed") ctx.logger.warn(`${this.name}: the run ended (${status}) in the middle of a micro-batch; dropped the group in progress (${this.count} micro-batch(es), ${this.samples} samples)`);
    this.drop();
  }

  dispose(): void {
    this.drop();
  }

  stateDict(): StateDict {
    if (this.count === 0) return { microBatches: 0, samples: 0, sums: [] };
    // fresh arrays either way: what a caller does with the dict must not reach the kept group
    const sums = this.sums ? this.weightedSums() : this.host!.sums.map((s) => ({ ...s, values: s.values.slice() }));
    return { microBatches: this.count, samples: this.samples, sums: sums.map((s) => ({ name: s.name, shape: [...s.shape], values: s.values })) };
  }

  loadStateDict(state: StateDict): void {
    const group = parseGroup(this.name, this.options.steps, state);
    this.drop();
    if (group.microBatches === 0) return;
    this.host = group;
    this.count = group.microBatches;
    this.samples = group.samples;
  }

  /** The group's sample-weighted sums read from the device (`factor * sums`: exact, a power of two). */
  private weightedSums(): SavedSum[] {
    const sums = toHost(this.names, this.sums!);
    if (this.factor !== 1) for (const s of sums) for (let i = 0; i < s.values.length; i++) s.values[i] = s.values[i]! * this.factor;
    return sums;
  }

  /** The sums so far (rebuilt from a loaded group if need be), now this call's to dispose. */
  private takeSums(): tf.Tensor[] | undefined {
    if (!this.sums && this.host) this.factor = 1; // a saved group holds the weighted sums
    const sums = this.sums ?? (this.host ? toTensors(this.host) : undefined);
    this.sums = undefined;
    this.host = undefined;
    return sums;
  }

  private reset(): void {
    this.factor = 1;
    this.count = 0;
    this.samples = 0;
    this.lastAt = undefined;
  }

  /** Forgets the group in progress and releases its tensors. */
  private drop(): void {
    if (this.sums) tf.dispose(this.sums);
    this.sums = undefined;
    this.host = undefined;
    this.closing = undefined;
    this.reset();
  }
}
