import { join } from "node:path";
import { globalNorm, ORDER, parseOptions, PluginError, systemClock, type BatchContext, type Callback, type Clock, type FitEndContext, type HookContext, type Logger, type Logs } from "@fitloop/core";
import { z } from "zod";
import type { SummaryValue } from "./event.js";
import { histogram } from "./histogram.js";
import { EventFileWriter, eventFileName } from "./writer.js";

/** Buffered bytes that trigger a flush before the time is up (histograms of a large model). */
const MAX_BUFFER_BYTES = 1 << 20;

const optionsSchema = z.strictObject({
  logDir: z
    .string({ message: "must be a directory path" })
    .min(1, { message: "must not be empty" })
    .refine((s) => !s.includes("\0"), { message: "must not contain a NUL byte" }),
  every: z
    .union([z.literal("epoch"), z.strictObject({ steps: z.number({ message: "must be an integer >= 1" }).int({ message: "must be an integer >= 1" }).min(1, { message: "must be an integer >= 1" }) })], {
      message: 'must be "epoch" (epoch scalars only, as Keras\' default update_freq) or { steps: N } with an integer N >= 1 (batch scalars every N optimizer steps too)',
    })
    .default("epoch"),
  histograms: z
    .strictObject({
      everyEpochs: z.number({ message: "must be an integer >= 1" }).int({ message: "must be an integer >= 1" }).min(1, { message: "must be an integer >= 1" }),
      buckets: z
        .union([z.number().int().min(1).max(10_000), z.literal("exponential")], { message: 'must be a bucket count from 1 to 10000 or "exponential" (TensorFlow\'s default limits)' })
        .default(30),
    })
    .optional(),
  gradNorm: z.boolean({ message: "must be true or false" }).default(true),
  flushSeconds: z.number({ message: "must be a number of seconds > 0" }).gt(0, { message: "must be > 0" }).default(10),
  clock: z.custom<Clock>((v) => typeof (v as Clock | undefined)?.now === "function", { message: "must be a clock ({ now(): milliseconds })" }).default(systemClock),
  name: z.string().min(1).optional(),
});

export type TensorBoardOptions = z.input<typeof optionsSchema>;

/** The files one `fit` writes to (each is created at its first flush). */
export interface TensorBoardFiles {
  readonly train: string;
  readonly validation: string;
}

const scalars = (prefix: string, logs: Readonly<Logs>): SummaryValue[] => Object.entries(logs).map(([k, v]) => ({ tag: prefix + k, simpleValue: v }));

/**
 * Writes TensorBoard event files as Keras' TensorBoard callback does: `<logDir>/train` and
 * `<logDir>/validation`, one new file each per `fit` (a resumed run too: TensorBoard merges the
 * files of a directory). Epoch scalars `epoch_<key>` at step = epoch index for every key of the
 * epoch logs (`val_*` into validation/ without the prefix); with `every: { steps: N }` batch scalars
 * `batch_<key>` (loss, metrics, `lr`, `grad_norm`, every plugin's batch log) at step = optimizer
 * steps taken, every N steps; weight histograms `<weight>/histogram` every N epochs if asked.
 *
 * A sink: late in the order (`ORDER.LOG`), it writes at the safe points (after every plugin's
 * `afterBatch` / `afterEpoch`, so every log is in), encodes into memory there and flushes in the
 * background (each epoch, every `flushSeconds`, at 1 MiB, at the end of the run); `afterFit` waits
 * for the writes, also after a failure or cancel. A failed write is one warning and the run goes on.
 * Epoch scalars are written for whole epochs only: an epoch a stop cut short has none (a resumed run
 * writes it whole), so every epoch step appears once.
 */
export class TensorBoard implements Callback {
  readonly name: string;
  readonly order = ORDER.LOG;
  readonly options: Readonly<z.output<typeof optionsSchema>>;
  private train: EventFileWriter | undefined;
  private validation: EventFileWriter | undefined;
  private logger: Logger | undefined;
  private warned = false;
  private lastFlush = 0;
  private writtenEpoch = -1;
  private lastFiles: TensorBoardFiles | undefined;
  /** The step applied in this batch and the learning rate it used, for the batch's scalars. */
  private applied: { step: number; lr: number | undefined } | undefined;

  constructor(options: TensorBoardOptions) {
    this.options = parseOptions("TensorBoard", optionsSchema, options);
    this.name = this.options.name ?? "TensorBoard";
  }

  /** The files of the current (or last) `fit`. */
  get files(): TensorBoardFiles | undefined {
    return this.lastFiles;
  }

  beforeFit(ctx: HookContext): void {
    this.logger = ctx.logger;
    this.warned = false;
    this.applied = undefined;
    // a resumed run's history was written by the run it continues
    this.writtenEpoch = ctx.state.history.at(-1)?.epoch ?? -1;
    const now = Date.now() / 1000;
    const file = eventFileName(now);
    const onError = (e: unknown, w: EventFileWriter) => this.report(`could not write ${w.path} (its further records are dropped)`, e);
    this.train = new EventFileWriter(join(this.options.logDir, "train"), file, onError, now);
    this.validation = new EventFileWriter(join(this.options.logDir, "validation"), file, onError, now);
    this.lastFiles = { train: this.train.path, validation: this.validation.path };
    this.lastFlush = this.options.clock.now();
    const from = ctx.state.resumed ? ` (resumed at step ${ctx.state.step}, epoch ${ctx.state.epoch}: a new file beside the earlier ones)` : "";
    ctx.logger.info(`${this.name}: writing ${file} in ${this.options.logDir}/{train,validation}${from}; view with: tensorboard --logdir ${this.options.logDir}`);
  }

  private batchDue(step: number): boolean {
    const every = this.options.every;
    return every !== "epoch" && step > 0 && step % every.steps === 0;
  }

  /**
   * On steps whose scalars are written, the global norm of the gradients as they will be applied,
   * unless a plugin already logs `grad_norm` (GradClip logs the norm before clipping): it rides in
   * the step's one device read, so no read of its own.
   */
  afterGradients(ctx: BatchContext): void {
    if (!this.options.gradNorm || ctx.skipRequested || !this.batchDue(ctx.state.step + 1) || ctx.hasLog("grad_norm") || !ctx.grads) return;
    ctx.log("grad_norm", globalNorm(ctx.grads));
  }

  afterStep(ctx: BatchContext): void {
    if (ctx.stepSkipped || !this.batchDue(ctx.state.step)) return;
    let lr: number | undefined;
    try {
      lr = ctx.hyper.learningRate; // the rate this update used (a schedule changes it before the next)
    } catch {
      lr = undefined; // an optimizer without one
    }
    this.applied = { step: ctx.state.step, lr };
  }

  batchCheckpoint(ctx: HookContext): void {
    const applied = this.applied;
    this.applied = undefined;
    if (!this.train || !this.validation) return;
    if (applied && applied.step === ctx.state.step) {
      const logs: Logs = { ...ctx.state.batchLogs };
      if (applied.lr !== undefined && !("lr" in logs)) logs["lr"] = applied.lr;
      this.train.add({ wallTime: Date.now() / 1000, step: applied.step, summary: scalars("batch_", logs) });
    }
    const late = this.options.clock.now() - this.lastFlush >= this.options.flushSeconds * 1000;
    if (late || this.train.bufferedBytes + this.validation.bufferedBytes >= MAX_BUFFER_BYTES) this.flush();
  }

  async epochCheckpoint(ctx: HookContext): Promise<void> {
    await this.writeEpoch(ctx);
    this.flush();
  }

  async afterFit(ctx: FitEndContext): Promise<void> {
    const [train, validation] = [this.train, this.validation];
    if (!train || !validation) return; // beforeFit never ran
    try {
      // Epoch scalars belong to epochs that reached their safe point (epochCheckpoint): one whose
      // hook there did not reach this plugin (another plugin's epochCheckpoint failed first) is
      // written now. An epoch stopped mid-way is not: its record covers the batches trained so far,
      // and the resumed run writes the whole epoch at the same step (two points at one step); its
      // batch scalars (`every: { steps }`) show the part trained. Nor is a whole epoch whose
      // afterEpoch failed: no checkpoint was taken after it, so a resumed run trains it again.
      const s = ctx.state;
      const last = s.history.at(-1);
      const whole = last !== undefined && s.cursor.epoch === last.epoch + 1 && s.cursor.batchIndex === 0;
      const error = ctx.outcome.error;
      if (whole && !(error instanceof PluginError && error.event !== "epochCheckpoint")) await this.writeEpoch(ctx);
    } finally {
      this.train = this.validation = undefined;
      await Promise.all([train.close(), validation.close()]);
      const dropped = train.dropped + validation.dropped;
      ctx.logger.debug(`${this.name}: wrote ${train.written + validation.written} records${dropped ? `, dropped ${dropped} after a failed write` : ""}`);
    }
  }

  private flush(): void {
    this.lastFlush = this.options.clock.now();
    this.train?.flush();
    this.validation?.flush();
  }

  /** The last epoch record, once: train keys as `epoch_<key>`, `val_<key>` into validation/ as `epoch_<key>`. */
  private async writeEpoch(ctx: HookContext): Promise<void> {
    const record = ctx.state.history.at(-1);
    if (!record || record.epoch <= this.writtenEpoch || !this.train || !this.validation) return;
    this.writtenEpoch = record.epoch;
    const train: Logs = {};
    const val: Logs = {};
    for (const [k, v] of Object.entries(record.logs)) {
      if (k.startsWith("val_") && k.length > 4) val[k.slice(4)] = v;
      else train[k] = v;
    }
    const values = scalars("epoch_", train);
    const h = this.options.histograms;
    if (h && record.epoch % h.everyEpochs === 0) values.push(...(await this.weightHistograms(ctx, h.buckets)));
    const wallTime = Date.now() / 1000;
    if (values.length) this.train.add({ wallTime, step: record.epoch, summary: values });
    if (Object.keys(val).length) this.validation.add({ wallTime, step: record.epoch, summary: scalars("epoch_", val) });
  }

  /** Every weight (trainable or not, as Keras), read from the device now: the cost is at these epochs only. */
  private async weightHistograms(ctx: HookContext, buckets: number | "exponential"): Promise<SummaryValue[]> {
    try {
      const weights = ctx.model.weights;
      const data = await Promise.all(weights.map((w) => w.read().data()));
      return weights.map((w, i) => ({ tag: `${w.name}/histogram`, histo: histogram(data[i]!, buckets) }));
    } catch (e) {
      this.report("could not read the weights for histograms", e);
      return [];
    }
  }

  /** The first problem of a run, once: a sink never stops training. */
  private report(what: string, error: unknown): void {
    if (this.warned) return;
    this.warned = true;
    const message = error instanceof Error ? error.message : String(error);
    this.logger?.warn(`${this.name}: ${what}: ${message}. Training goes on; further problems of this run are not reported.`);
  }
}
