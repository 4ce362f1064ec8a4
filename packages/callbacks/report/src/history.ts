import * as tf from "@tensorflow/tfjs-core";
import { ORDER, optimizerKind, parseOptions, type BatchContext, type Callback, type EpochRecord, type FitEndContext, type FitStatus, type HookContext, type Logs } from "@fitloop/core";
import { z } from "zod";
import { MinMaxSeries, type SeriesData } from "./series.js";

/** Extra facts about the run a user wants in the report (plugins in order, data, seed, ...). */
export type ConfigValues = Readonly<Record<string, string | number | boolean>>;

export const configValuesSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]), { message: "must be an object of strings, numbers and booleans" });

const optionsSchema = z.strictObject({
  maxPoints: z.number({ message: "must be an integer >= 2" }).int({ message: "must be an integer >= 2" }).min(2, { message: "must be an integer >= 2" }).default(1000),
  hyperparameters: z.boolean({ message: "must be a boolean" }).default(true),
  config: configValuesSchema.default({}),
  name: z.string().min(1).optional(),
});

export type RunHistoryOptions = z.input<typeof optionsSchema>;

export interface LayerSummary {
  readonly name: string;
  readonly className: string;
  readonly outputShape: string;
  readonly params: number;
}

/** What the run was: read from the hook context at `beforeFit` (and the first batch). */
export interface RunConfig {
  readonly model: { readonly name: string; readonly layers: readonly LayerSummary[]; readonly params: number; readonly trainableParams: number };
  readonly optimizer: {
    readonly kind: string;
    readonly className: string;
    readonly learningRate: number | undefined;
    readonly momentum: number | undefined;
    readonly momentumName: string | undefined;
    /** The optimizer's own `getConfig()` (numbers, strings, booleans). */
    readonly config: ConfigValues;
  };
  readonly epochs: number;
  /** The epoch the fit started at (> 0 when resumed). */
  readonly initialEpoch: number;
  readonly resumed: boolean;
  /** Samples in the first training batch. */
  readonly batchSize: number | undefined;
  readonly batchesPerEpoch: number | undefined;
  readonly trainSize: number | undefined;
  readonly validationSize: number | undefined;
  readonly validation: boolean;
  readonly backend: string;
  /** The `config` option: what the context cannot know (plugins in order, the data, the seed). */
  readonly extra: ConfigValues;
}

export interface RunOutcome {
  readonly status: FitStatus;
  /** Why it ended early (core's `outcome.reason`); undefined for `completed`. */
  readonly reason: string | undefined;
  readonly stopRequests: readonly { readonly by: string; readonly reason: string; readonly epoch: number; readonly step: number }[];
  readonly durationMs: number;
  readonly finishedAt: string;
}

/** Everything the plots and the report are drawn from; plain data (JSON-safe). */
export interface HistoryData {
  /** Per-batch values by log key; `x` is the batch number in the run (1 = the first batch). */
  readonly steps: Readonly<Record<string, SeriesData>>;
  /** One record per completed epoch (core's `state.history`), `val_*` included. */
  readonly epochs: readonly EpochRecord[];
  /** The loss and the metrics the loop computes (`loss`, `acc`, ...), in order; the rest are plugin logs. */
  readonly metrics: readonly string[];
  readonly batchesPerEpoch: number | undefined;
  readonly config: RunConfig | undefined;
  readonly outcome: RunOutcome | undefined;
  readonly startedAt: string | undefined;
}

export type HistoryEvent =
  | { readonly type: "start"; readonly config: RunConfig; readonly metrics: readonly string[] }
  | { readonly type: "step"; readonly x: number; readonly logs: Readonly<Logs> }
  | { readonly type: "epoch"; readonly record: EpochRecord; readonly metrics: readonly string[]; readonly batchesPerEpoch: number | undefined }
  | { readonly type: "end"; readonly outcome: RunOutcome };

export type HistoryListener = (e: HistoryEvent) => void;

/** A history, or the plugin recording one. */
export type HistorySource = HistoryData | RunHistory;

export function historyData(source: HistorySource): HistoryData {
  return source instanceof RunHistory ? source.data() : source;
}

/**
 * Records a run for plots, reports and dashboards, at `ORDER.LOG`: every batch's logs (loss,
 * metrics, and any key a plugin logs: `lr`, `momentum`, `grad_norm`, ...) at the batch's safe point
 * (`batchCheckpoint`, after every plugin's `afterBatch`, so late logs are in), in bounded memory
 * (`maxPoints` min/max buckets per key); the epoch records (`val_*` included); the run's
 * configuration and its outcome. With `hyperparameters` (default) it also records the optimizer's
 * learning rate and momentum per step when no plugin logs them. Its hooks only copy numbers; an
 * error in them is reported once and training goes on.
 */
export class RunHistory implements Callback {
  readonly name: string;
  readonly order = ORDER.LOG;
  readonly options: Readonly<z.output<typeof optionsSchema>>;
  private series = new Map<string, MinMaxSeries>();
  private epochs: EpochRecord[] = [];
  private metrics: string[] = [];
  private batchesPerEpoch: number | undefined;
  private config: RunConfig | undefined;
  private outcome: RunOutcome | undefined;
  private startedAt: string | undefined;
  private started = 0;
  private batchSize: number | undefined;
  private hasMomentum = false;
  private readonly listeners = new Set<HistoryListener>();
  private failed = false;
  /** Runs seen (`beforeFit` calls): a report can tell a history that was never registered. */
  runs = 0;

  constructor(options: RunHistoryOptions = {}) {
    this.options = parseOptions("RunHistory", optionsSchema, options);
    this.name = this.options.name ?? "RunHistory";
  }

  /** Called with every step, epoch, start and end; a listener that throws is reported once and dropped from that event only. */
  subscribe(listener: HistoryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A copy of what is recorded so far. */
  data(): HistoryData {
    return {
      steps: Object.fromEntries([...this.series].map(([k, s]) => [k, s.points()])),
      epochs: this.epochs.map((r) => ({ epoch: r.epoch, logs: { ...r.logs } })),
      metrics: [...this.metrics],
      batchesPerEpoch: this.batchesPerEpoch,
      config: this.config,
      outcome: this.outcome,
      startedAt: this.startedAt,
    };
  }

  beforeFit(ctx: HookContext): void {
    this.guard(ctx, () => {
      this.runs++;
      this.series = new Map();
      this.epochs = ctx.state.history.map((r) => ({ epoch: r.epoch, logs: { ...r.logs } }));
      this.metrics = [];
      this.outcome = undefined;
      this.batchSize = undefined;
      this.batchesPerEpoch = ctx.data.train.batchesPerEpoch;
      this.started = performance.now();
      this.startedAt = new Date().toISOString();
      this.hasMomentum = ctx.hyper.hasMomentum;
      this.config = readConfig(ctx, this.options.config);
      this.emit(ctx, { type: "start", config: this.config, metrics: this.metrics });
    });
  }

  afterBatch(ctx: BatchContext): void {
    if (this.batchSize === undefined && ctx.batchSize > 0) {
      this.batchSize = ctx.batchSize;
      if (this.config) this.config = { ...this.config, batchSize: ctx.batchSize };
    }
  }

  batchCheckpoint(ctx: HookContext): void {
    this.guard(ctx, () => {
      const logs = ctx.logs;
      let measured = false;
      for (const _ in logs) {
        measured = true;
        break;
      }
      if (!measured) return; // cancelled before the step's read: nothing was measured
      const s = ctx.state;
      const x = s.globalBatch; // already counts this batch: 1 for the first
      if (this.metrics.length === 0) this.metrics = Object.keys(s.epochProgress.sums); // the loop's loss and metrics, nothing else
      this.batchesPerEpoch ??= s.batchesPerEpoch;
      let point: Logs = logs;
      if (this.options.hyperparameters && (!("lr" in logs) || (this.hasMomentum && !("momentum" in logs)))) {
        // no schedule logs them: the optimizer's own values (plain field reads, no device work)
        point = { ...logs };
        if (!("lr" in logs)) point["lr"] = ctx.hyper.learningRate;
        if (this.hasMomentum && !("momentum" in logs)) point["momentum"] = ctx.hyper.momentum!;
      }
      for (const key in point) {
        let series = this.series.get(key);
        if (!series) this.series.set(key, (series = new MinMaxSeries(this.options.maxPoints)));
        series.add(x, point[key]!);
      }
      if (this.listeners.size) this.emit(ctx, { type: "step", x, logs: point });
    });
  }

  afterEpoch(ctx: HookContext): void {
    this.guard(ctx, () => this.syncLastEpoch(ctx));
  }

  /** After every plugin's afterEpoch: monitors (order < LOG) may have logged epoch values since. */
  epochCheckpoint(ctx: HookContext): void {
    this.guard(ctx, () => this.syncLastEpoch(ctx));
  }

  afterFit(ctx: FitEndContext): void {
    this.finish(ctx);
  }

  /** Takes the final epoch records and the outcome; idempotent (the report calls it before it writes). */
  finish(ctx: FitEndContext): void {
    this.guard(ctx, () => {
      if (this.outcome) return;
      this.epochs = ctx.state.history.map((r) => ({ epoch: r.epoch, logs: { ...r.logs } }));
      const o = ctx.outcome;
      this.outcome = {
        status: o.status,
        reason: o.reason,
        stopRequests: o.stopRequests.map((r) => ({ by: r.by, reason: r.reason, epoch: r.epoch, step: r.step })),
        durationMs: performance.now() - this.started,
        finishedAt: new Date().toISOString(),
      };
      if (this.config && this.batchesPerEpoch !== undefined && this.config.batchesPerEpoch === undefined) this.config = { ...this.config, batchesPerEpoch: this.batchesPerEpoch };
      this.emit(ctx, { type: "end", outcome: this.outcome });
    });
  }

  private syncLastEpoch(ctx: HookContext): void {
    const record = ctx.state.history.at(-1);
    if (!record || record.epoch !== ctx.state.epoch) return; // a cut epoch has no record
    // a source of unknown length: its first whole epoch says how long an epoch is
    if (this.batchesPerEpoch === undefined && ctx.state.cursor.epoch === ctx.state.epoch + 1) this.batchesPerEpoch = ctx.state.batchIndex;
    const copy = { epoch: record.epoch, logs: { ...record.logs } };
    const at = this.epochs.findIndex((r) => r.epoch === record.epoch);
    if (at >= 0) {
      const before = this.epochs[at]!;
      if (Object.keys(before.logs).length === Object.keys(copy.logs).length && Object.entries(copy.logs).every(([k, v]) => Object.is(before.logs[k], v))) return;
      this.epochs[at] = copy;
    } else {
      this.epochs.push(copy);
    }
    this.emit(ctx, { type: "epoch", record: copy, metrics: this.metrics, batchesPerEpoch: this.batchesPerEpoch });
  }

  private emit(ctx: HookContext, e: HistoryEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.reportOnce(ctx, err);
      }
    }
  }

  /** A recorder must never break training: its own errors are reported once. */
  private guard(ctx: HookContext, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.reportOnce(ctx, err);
    }
  }

  private reportOnce(ctx: HookContext, err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    ctx.logger.warn(`${this.name}: recording failed at ${ctx.event}; training goes on (further errors are not reported)`, err);
  }
}

/** The batch size is filled in from the first batch. */
function readConfig(ctx: HookContext, extra: ConfigValues): RunConfig {
  const model = ctx.model;
  const layers = model.layers.map((l) => {
    let params = 0;
    try {
      params = l.countParams();
    } catch {
      params = 0; // a layer that is not built yet has no weights to count
    }
    let outputShape = "?";
    try {
      outputShape = JSON.stringify(l.outputShape).replaceAll("null", "None");
    } catch {
      outputShape = "?";
    }
    return { name: l.name, className: l.getClassName(), outputShape, params };
  });
  const size = (shape: readonly (number | null)[]) => shape.reduce<number>((a, b) => a * (b ?? 1), 1);
  const opt = ctx.optimizer;
  const optimizerConfig: Record<string, string | number | boolean> = {};
  try {
    for (const [k, v] of Object.entries(opt.getConfig())) if (typeof v === "number" || typeof v === "string" || typeof v === "boolean") optimizerConfig[k] = v;
  } catch {
    // an optimizer without getConfig: the kind and the hyperparameters still say what it is
  }
  let learningRate: number | undefined;
  try {
    learningRate = ctx.hyper.learningRate;
  } catch {
    learningRate = undefined;
  }
  return {
    model: { name: model.name, layers, params: model.weights.reduce((s, w) => s + size(w.shape), 0), trainableParams: model.trainableWeights.reduce((s, w) => s + size(w.shape), 0) },
    optimizer: { kind: optimizerKind(opt), className: opt.getClassName(), learningRate, momentum: ctx.hyper.momentum, momentumName: ctx.hyper.momentumName, config: optimizerConfig },
    epochs: ctx.state.epochs,
    initialEpoch: ctx.state.epoch,
    resumed: ctx.state.resumed,
    batchSize: undefined,
    batchesPerEpoch: ctx.data.train.batchesPerEpoch,
    trainSize: ctx.data.train.size,
    validationSize: ctx.data.validation?.size,
    validation: ctx.data.validation !== undefined,
    backend: tf.getBackend() ?? "?",
    extra: { ...extra },
  };
}

/**
 * A plugin that records into a RunHistory: its own (it then forwards the recording hooks), or one
 * shared with other plugins and registered in the trainer itself (then it only reads it).
 */
export abstract class RecordsHistory {
  readonly history: RunHistory;
  /** Whether this plugin made the history (and so must feed it). */
  protected readonly owns: boolean;

  protected constructor(shared: RunHistory | undefined, make: () => RunHistory) {
    this.owns = shared === undefined;
    this.history = shared ?? make();
  }

  beforeFit(ctx: HookContext): void | Promise<void> {
    if (this.owns) this.history.beforeFit(ctx);
  }

  afterBatch(ctx: BatchContext): void {
    if (this.owns) this.history.afterBatch(ctx);
  }

  batchCheckpoint(ctx: HookContext): void {
    if (this.owns) this.history.batchCheckpoint(ctx);
  }

  afterEpoch(ctx: HookContext): void {
    if (this.owns) this.history.afterEpoch(ctx);
  }

  epochCheckpoint(ctx: HookContext): void {
    if (this.owns) this.history.epochCheckpoint(ctx);
  }
}
