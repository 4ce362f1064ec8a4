import cliProgress from "cli-progress";
import { consoleLogger, ORDER, parseOptions, type Callback, type FitEndContext, type HookContext, type Logger, type TrainState } from "@fitloop/core";
import { z } from "zod";
import { endText, isCI, progressText, runningLogs, selectLogs, type EndPosition, type ProgressView } from "./format.js";
import { SafeOutput, type ProgressStream } from "./output.js";

const optionsSchema = z.strictObject({
  verbose: z.union([z.literal(0), z.literal(1), z.literal(2)], { message: "must be 0 (silent), 1 (a bar per epoch; lines when not a terminal) or 2 (one line per epoch)" }).default(1),
  stream: z.custom<ProgressStream>((v) => typeof v === "object" && v !== null && typeof (v as { write?: unknown }).write === "function", { message: "must be a writable stream, such as process.stderr, process.stdout or a file stream" }).optional(),
  metrics: z.array(z.string().min(1, { message: "must be a non-empty log name" }), { message: 'must be an array of log names, e.g. ["loss", "acc"] (their val_ forms are shown too)' }).optional(),
  everyBatches: z.number({ message: "must be an integer >= 1" }).int({ message: "must be an integer >= 1" }).min(1, { message: "must be an integer >= 1" }).optional(),
  now: z.custom<() => number>((v) => typeof v === "function", { message: "must be a function returning milliseconds, like () => performance.now()" }).optional(),
  name: z.string().min(1, { message: "must be a non-empty string" }).optional(),
});

export interface ProgressBarOptions {
  /** 0: nothing; 1 (default): a bar per epoch on a terminal, lines otherwise; 2: one line per epoch. */
  verbose?: 0 | 1 | 2;
  /** Where to write (default `process.stderr`). A bar is drawn only when it is a terminal and `CI` is not set. */
  stream?: ProgressStream;
  /** Log names to show (each with its `val_` form); default all. */
  metrics?: readonly string[];
  /** When lines are printed instead of a bar: also one every this many batches. */
  everyBatches?: number;
  /** The clock, in milliseconds (default `performance.now()`): for deterministic output in tests. */
  now?: () => number;
  /** Plugin name (default `ProgressBar`). */
  name?: string;
}

/** How progress is shown in this fit: decided when it starts, from `verbose`, the stream and `CI`. */
export type ProgressMode = "silent" | "bar" | "lines";

/** One epoch as the output follows it. */
interface EpochTrack {
  readonly epoch: number;
  readonly epochs: number;
  readonly total: number | undefined;
  /** Where the epoch's training started (a resumed epoch starts mid-way) and with how many samples. */
  readonly startBatch: number;
  readonly startSamples: number;
  readonly trainStart: number;
  done: number;
  lastBatchAt: number;
  phase: "train" | "validate" | "end";
  /** The epoch reached afterEpoch: its logs are final (else the running values are shown). */
  ended: boolean;
  endAt: number;
  /** The epoch's final values, once known. */
  values: readonly (readonly [string, number])[] | undefined;
}

const systemNow = (): number => performance.now();

/**
 * Keras-style progress on stderr: a bar per epoch (batches, ETA, samples/s, the running loss and
 * metrics; at the end the epoch's time and validation metrics), plain lines when the stream is not a
 * terminal or under CI. cli-progress draws the bar; redraws are throttled (10 fps), so a step costs
 * a counter update. A sink that never breaks the run: an error of its own, or a stream that fails, is
 * reported once (`ctx.logger.warn`) and the output stops while training goes on.
 *
 * Runs at `ORDER.LOG` and reads at the safe points: `batchCheckpoint` and `epochCheckpoint` come
 * after every plugin's `afterBatch` / `afterEpoch`, so the values other plugins log there are shown.
 * Give the trainer `progress.logger()` so that messages logged mid-epoch do not land on the bar.
 */
export class ProgressBar implements Callback {
  readonly name: string;
  readonly order = ORDER.LOG;
  readonly options: Readonly<z.output<typeof optionsSchema>>;
  /** This fit's mode (set in `beforeFit`). */
  mode: ProgressMode = "silent";
  private readonly now: () => number;
  private out: SafeOutput | undefined;
  /** The run's logger (`ctx.logger`), for our own warnings. */
  private runLogger: Logger | undefined;
  /** A message is being printed through `logger()` (our own warning then goes straight through). */
  private printing = false;
  private state: Readonly<TrainState> | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private epoch: EpochTrack | undefined;
  private last: EndPosition | undefined;
  /** beforeFit ran in this fit. */
  private started = false;

  constructor(options: ProgressBarOptions = {}) {
    this.options = parseOptions("ProgressBar", optionsSchema, options);
    this.name = this.options.name ?? "ProgressBar";
    this.now = this.options.now ?? systemNow;
  }

  /**
   * A logger that shares the terminal with the bar: pass it to the trainer
   * (`new Trainer({ logger: progress.logger(), callbacks: [progress] })`) so that what plugins log
   * mid-epoch (a checkpoint saved, a warning) is not written onto the bar's line. While a bar is
   * drawn, each message clears the bar's line, is written by `base` on its own line(s), and the bar
   * is drawn again below it. Otherwise (no bar: between epochs, plain lines, not in a fit) messages
   * go straight to `base`. `base` (default: core's `consoleLogger`) must write whole lines to the
   * terminal the bar is on, as `console` does (`console.info` writes to stdout, the bar to stderr: in
   * a terminal both are the screen).
   */
  logger(base: Logger = consoleLogger): Logger {
    const through =
      (level: keyof Logger) =>
      (message: string, ...rest: unknown[]): void =>
        this.aside(() => base[level](message, ...rest));
    return { debug: through("debug"), info: through("info"), warn: through("warn"), error: through("error") };
  }

  /** Prints a message (`print`) with the bar's line cleared first and the bar drawn again after it. */
  private aside(print: () => void): void {
    const e = this.epoch;
    const out = this.out;
    if (!this.bar || !e || !out || this.printing) return print();
    this.printing = true;
    try {
      out.write("\r\x1b[2K"); // column 0 of the bar's line, cleared: the message starts there
      print();
    } finally {
      this.printing = false;
      // the bar again on the line after the message; the saved cursor position (ESC 7, where the
      // bar's line is cleared when it stops) moves there with it
      if (this.bar && this.epoch === e) out.write(`\x1b7${this.barText(e, out.stream.columns || 80)}`);
    }
  }

  beforeFit(ctx: HookContext): void {
    this.start(ctx);
  }

  /** Decides this fit's mode; in `afterFit` too when a plugin before this one failed in `beforeFit`. */
  private start(ctx: HookContext): void {
    this.started = true;
    this.runLogger = ctx.logger;
    this.state = ctx.state;
    this.epoch = this.last = this.out = undefined;
    this.mode = "silent";
    this.safely(() => {
      const stream = this.options.stream ?? process.stderr;
      const verbose = this.options.verbose;
      this.mode = verbose === 0 ? "silent" : verbose === 2 ? "lines" : stream.isTTY === true && !isCI(process.env) ? "bar" : "lines";
      if (this.mode === "silent") return;
      this.out = new SafeOutput(stream, (why) => this.warn(`cannot write to its stream (${why}); progress output stops, training goes on`));
      this.out.attach();
    });
  }

  beforeTrain(ctx: HookContext): void {
    if (this.mode === "silent") return;
    this.safely(() => {
      if (this.epoch) this.finishEpoch(ctx.logs);
      const s = ctx.state;
      const t = this.now();
      const e: EpochTrack = { epoch: s.epoch, epochs: s.epochs, total: s.batchesPerEpoch, startBatch: s.batchIndex, startSamples: s.epochProgress.samples, trainStart: t, done: s.batchIndex, lastBatchAt: t, phase: "train", ended: false, endAt: t, values: undefined };
      this.epoch = e;
      this.last = { epoch: e.epoch, epochs: e.epochs, done: e.done, total: e.total, phase: "train" };
      if (this.mode === "bar") this.startBar(e);
    });
  }

  /** After every plugin's afterBatch: the batch's logs and the epoch's running totals include everything. */
  batchCheckpoint(ctx: HookContext): void {
    const e = this.epoch;
    if (!e) return;
    this.safely(() => {
      e.done = ctx.state.batchIndex;
      e.lastBatchAt = this.now();
      this.last = { epoch: e.epoch, epochs: e.epochs, done: e.done, total: e.total, phase: "train" };
      if (this.bar) return this.bar.update(e.done);
      const every = this.options.everyBatches;
      if (every !== undefined && e.done % every === 0 && e.done !== e.total) this.out!.write(`${progressText(this.view(e), false)}\n`);
    });
  }

  beforeValidate(): void {
    const e = this.epoch;
    if (!e) return;
    this.safely(() => {
      e.phase = "validate";
      this.last = { ...this.last!, phase: "validate" };
      this.bar?.render();
    });
  }

  afterEpoch(): void {
    const e = this.epoch;
    if (!e) return;
    e.ended = true;
    e.endAt = this.now();
  }

  /** After every plugin's afterEpoch: the epoch's logs are final (monitors, schedulers have logged). */
  epochCheckpoint(ctx: HookContext): void {
    if (this.epoch) this.safely(() => this.finishEpoch(ctx.logs));
  }

  afterFit(ctx: FitEndContext): void {
    if (!this.started) this.start(ctx);
    this.started = false;
    if (this.mode === "silent") return;
    this.safely(() => {
      // an epoch cut short (a stop request mid-epoch, a cancel, an error): its line still ends cleanly
      if (this.epoch) this.finishEpoch(ctx.logs);
      const text = endText(ctx.outcome, this.last);
      if (text) this.out?.write(`${text}\n`);
    });
    this.closeBar();
    this.out?.detach();
    this.state = undefined; // the run's state (its history) is not ours to keep alive
  }

  private startBar(e: EpochTrack): void {
    const out = this.out!;
    // cli-progress writes through this, so a failing stream is caught (also on its redraw timer)
    const terminal = {
      isTTY: true,
      get columns() {
        return out.stream.columns;
      },
      write: (text: string) => {
        out.write(text);
        return true;
      },
    };
    this.bar = new cliProgress.SingleBar({
      stream: terminal as unknown as NodeJS.WritableStream,
      format: (_options, params) => this.barText(e, params.maxWidth),
      fps: 10,
      // no terminal modes to restore if the process dies mid-bar: wrapping stays on (the text is
      // cut to the width instead), the cursor stays visible, and no SIGINT handler (it would keep
      // Ctrl-C from ending the process)
      linewrap: true,
      hideCursor: false,
      gracefulExit: false,
      // at the end the bar's line is cleared and the epoch's line written in full (wrapped by the
      // terminal if need be): the validation metrics at its end must not be cut at the width
      clearOnComplete: true,
      stopOnComplete: false,
    });
    this.bar.start(e.total ?? 0, e.done);
  }

  private barText(e: EpochTrack, width: number): string {
    try {
      const text = progressText(this.view(e), true);
      return text.length >= width ? text.slice(0, Math.max(0, width - 1)) : text;
    } catch {
      return `Epoch ${e.epoch + 1}/${e.epochs}`; // on cli-progress's timer: must not throw
    }
  }

  private view(e: EpochTrack): ProgressView {
    const trained = e.done - e.startBatch;
    const trainMs = e.lastBatchAt - e.trainStart;
    const progress = this.state!.epochProgress;
    const samples = progress.samples - e.startSamples;
    return {
      epoch: e.epoch,
      epochs: e.epochs,
      done: e.done,
      total: e.total,
      phase: e.phase,
      elapsed: ((e.phase === "end" ? e.endAt : this.now()) - e.trainStart) / 1000,
      eta: e.phase === "train" && e.total !== undefined && trained > 0 ? ((trainMs / trained) * Math.max(0, e.total - e.done)) / 1000 : undefined,
      msPerStep: trained > 0 ? trainMs / trained : undefined,
      samplesPerSecond: trainMs > 0 && samples > 0 ? samples / (trainMs / 1000) : undefined,
      values: e.values ?? selectLogs(runningLogs(progress), this.options.metrics),
    };
  }

  private finishEpoch(logs: Readonly<Record<string, number>>): void {
    const e = this.epoch!;
    this.epoch = undefined;
    if (!e.ended) e.endAt = this.now();
    // a finished epoch shows its logs (val_* included); a cut one its running values
    e.values = selectLogs(e.ended ? Object.entries(logs) : runningLogs(this.state!.epochProgress), this.options.metrics);
    e.phase = "end";
    this.last = { epoch: e.epoch, epochs: e.epochs, done: e.done, total: e.total, phase: e.ended ? "end" : (this.last?.phase ?? "train") };
    const bar = this.bar !== undefined;
    this.closeBar();
    this.out!.write(`${progressText(this.view(e), bar)}\n`);
  }

  private closeBar(): void {
    const bar = this.bar;
    this.bar = undefined;
    try {
      bar?.stop();
    } catch {
      // its writes go through SafeOutput; nothing else of it can fail that we could mend
    }
  }

  /** Runs a piece of the output; an error of its own stops the output, never the run. */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.warn(`failed (${e instanceof Error ? e.message : String(e)}); progress output stops, training goes on`);
      this.closeBar();
      this.out?.detach();
      this.mode = "silent";
      this.epoch = undefined;
    }
  }

  private warn(message: string): void {
    this.runLogger?.warn(`${this.name}: ${message}`);
  }
}
