import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { consoleLogger, ORDER, parseOptions, type Callback, type FitEndContext, type HookContext, type Logger } from "@fitloop/core";
import { z } from "zod";
import { configValuesSchema, historyData, RecordsHistory, RunHistory, type HistoryData, type HistorySource } from "./history.js";
import { renderHtml, type HtmlPlot } from "./html.js";
import { gradNormPlot, logScaleProblem, lossPlot, lrFinderPlot, lrPlot, metricPlot, firstMetric, label, type LrFinderResultLike, type PlotSpec } from "./plots.js";
import { toPng, toSvg } from "./render.js";

export const PLOT_NAMES = ["loss", "metric", "lr", "gradNorm", "lrFinder"] as const;
export type PlotName = (typeof PLOT_NAMES)[number];
export const FORMATS = ["svg", "png", "html"] as const;
export type ReportFormat = (typeof FORMATS)[number];

/** File stems: `loss.svg`, `grad-norm.png`, ... */
const FILE: Record<PlotName, string> = { loss: "loss", metric: "metric", lr: "lr", gradNorm: "grad-norm", lrFinder: "lr-finder" };

const lrFinderSchema = z.custom<LrFinderResultLike>(
  (v) => {
    const c = (v as { curve?: Record<string, unknown> } | null)?.curve;
    return typeof c === "object" && c !== null && ["lr", "loss", "smoothed"].every((k) => Array.isArray(c[k]));
  },
  { message: "must be an LR-finder result (findLearningRate(...) or LRRangeTest.result()): { curve: { lr, loss, smoothed }, lr, suggestions, confidence }" },
);

const writeSchema = {
  formats: z.array(z.enum(FORMATS, { message: 'must be "svg", "png" or "html"' })).min(1, { message: "must name at least one format" }).default([...FORMATS]),
  plots: z.array(z.enum(PLOT_NAMES, { message: `must be one of ${PLOT_NAMES.join(", ")}` })).default([...PLOT_NAMES]),
  title: z.string().default("Training report"),
  lossScale: z.enum(["linear", "log"], { message: 'must be "linear" or "log"' }).default("linear"),
  metric: z.string().min(1).optional(),
  scale: z.number({ message: "must be a number in (0, 16]" }).gt(0, { message: "must be > 0" }).max(16, { message: "must be <= 16" }).default(2),
  fontFiles: z.array(z.string().min(1)).default([]),
  lrFinder: lrFinderSchema.optional(),
  gradNormLimit: z.number({ message: "must be a number > 0 (GradClip's max)" }).gt(0, { message: "must be > 0" }).optional(),
};

const writeOptionsSchema = z.strictObject({
  dir: z.string({ message: "must be a directory path" }).min(1, { message: "must be a directory path" }),
  ...writeSchema,
  logger: z.custom<Pick<Logger, "warn">>((v) => typeof (v as { warn?: unknown } | null)?.warn === "function", { message: "must be a logger (with warn)" }).optional(),
});

const optionsSchema = z.strictObject({
  dir: z.string({ message: "must be a directory path" }).min(1, { message: "must be a directory path" }),
  ...writeSchema,
  every: z.number({ message: "must be an integer >= 0" }).int({ message: "must be an integer >= 0" }).min(0, { message: "must be an integer >= 0 (0: only when the run ends)" }).default(0),
  history: z.custom<RunHistory>((v) => v instanceof RunHistory, { message: "must be a RunHistory (registered in the trainer's callbacks too)" }).optional(),
  maxPoints: z.number().int().min(2).default(1000),
  config: configValuesSchema.default({}),
  name: z.string().min(1).optional(),
});

export type WriteReportOptions = z.input<typeof writeOptionsSchema>;
export type ReportOptions = z.input<typeof optionsSchema>;

/** The specs of the plots there is data for, in report order. */
export function reportPlots(history: HistorySource, options: { plots?: readonly PlotName[]; lossScale?: "linear" | "log"; metric?: string; lrFinder?: LrFinderResultLike; gradNormLimit?: number } = {}): { name: PlotName; file: string; caption: string; spec: PlotSpec }[] {
  const h = historyData(history);
  const wanted = new Set(options.plots ?? PLOT_NAMES);
  const metric = options.metric ?? firstMetric(h);
  const candidates: [PlotName, string, () => PlotSpec | undefined][] = [
    ["loss", "Training and validation loss.", () => lossPlot(h, { scale: options.lossScale ?? "linear" })],
    ["metric", `Training and validation ${metric === undefined ? "metric" : label(metric)}.`, () => (metric === undefined ? undefined : metricPlot(h, metric))],
    ["lr", "Learning rate (and momentum) over the steps.", () => lrPlot(h)],
    ["gradNorm", "Global gradient norm per step.", () => gradNormPlot(h, options.gradNormLimit === undefined ? {} : { threshold: options.gradNormLimit })],
    ["lrFinder", "Learning-rate range test, with the suggestion marked.", () => (options.lrFinder ? lrFinderPlot(options.lrFinder) : undefined)],
  ];
  const out: { name: PlotName; file: string; caption: string; spec: PlotSpec }[] = [];
  for (const [name, caption, make] of candidates) {
    if (!wanted.has(name)) continue;
    const spec = make();
    if (spec) out.push({ name, file: FILE[name], caption, spec });
  }
  return out;
}

/** Writes `data` to `path` through a temporary file, so a reader never opens half a file. */
async function atomicWrite(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/**
 * Renders the plots the history has data for and writes them (`loss.svg`, `loss.png`, ...,
 * `report.html`) into `dir`; returns the paths written. For a history you recorded, or after a run.
 */
export async function writeReport(history: HistorySource, options: WriteReportOptions): Promise<string[]> {
  const o = parseOptions("writeReport", writeOptionsSchema, options);
  const h = historyData(history);
  const warning = scaleWarning(h, o);
  if (warning) (o.logger ?? consoleLogger).warn(`writeReport: ${warning}`);
  return writeFiles(h, o);
}

/** What to say when `lossScale: "log"` cannot be honoured (a loss <= 0): the loss plot is drawn on a linear scale instead. */
function scaleWarning(h: HistoryData, o: { plots: readonly PlotName[]; lossScale: "linear" | "log" }): string | undefined {
  if (o.lossScale !== "log" || !o.plots.includes("loss")) return undefined;
  const problem = logScaleProblem(h, "loss");
  return problem && `lossScale "log": the loss plot uses a linear scale instead, because the loss has values <= 0 (${problem})`;
}

async function writeFiles(h: HistoryData, o: z.output<typeof writeOptionsSchema>): Promise<string[]> {
  await mkdir(o.dir, { recursive: true });
  const formats = new Set(o.formats);
  const written: string[] = [];
  const rendered: HtmlPlot[] = [];
  // one plot at a time: the rendering shares the thread with training
  const plotOptions = { plots: o.plots, lossScale: o.lossScale, ...(o.metric ? { metric: o.metric } : {}), ...(o.lrFinder ? { lrFinder: o.lrFinder } : {}), ...(o.gradNormLimit ? { gradNormLimit: o.gradNormLimit } : {}) };
  for (const p of reportPlots(h, plotOptions)) {
    const svg = await toSvg(p.spec);
    rendered.push({ name: p.file, caption: p.caption, svg });
    if (formats.has("svg")) {
      await atomicWrite(join(o.dir, `${p.file}.svg`), svg);
      written.push(join(o.dir, `${p.file}.svg`));
    }
    if (formats.has("png")) {
      await atomicWrite(join(o.dir, `${p.file}.png`), await toPng(svg, { scale: o.scale, fontFiles: o.fontFiles }));
      written.push(join(o.dir, `${p.file}.png`));
    }
  }
  if (formats.has("html")) {
    await atomicWrite(join(o.dir, "report.html"), renderHtml(h, { title: o.title, plots: rendered }));
    written.push(join(o.dir, "report.html"));
  }
  return written;
}

/**
 * Writes the plots and the HTML report when the run ends, however it ends (completed, stopped,
 * cancelled or failed: the report says which, and why), and with `every: N` also after every Nth
 * epoch (in the background: one write at a time, the next due one skipped while one runs). A write
 * that fails is reported once through the run's logger; training and `fit()` go on unaffected.
 * Records the run with its own `RunHistory` unless you pass a shared one (registered as a callback).
 */
export class Report extends RecordsHistory implements Callback {
  readonly name: string;
  readonly order = ORDER.LOG;
  readonly options: Readonly<z.output<typeof optionsSchema>>;
  /** Paths of the last complete write. */
  written: string[] = [];
  /** Writes that failed, and the first failure. */
  errors = 0;
  firstError: unknown;
  private lrFinder: LrFinderResultLike | undefined;
  private inFlight: Promise<void> | undefined;
  private logger: Logger | undefined;
  /** The log-scale fallback was reported in this run. */
  private scaleWarned = false;

  constructor(options: ReportOptions) {
    const parsed = parseOptions("Report", optionsSchema, options);
    super(parsed.history, () => new RunHistory({ maxPoints: parsed.maxPoints, config: parsed.config }));
    this.options = parsed;
    this.name = this.options.name ?? "Report";
    this.lrFinder = this.options.lrFinder;
  }

  /** Adds (or replaces) the LR-finder curve to plot, e.g. a `findLearningRate` run made before `fit`. */
  setLrFinder(result: LrFinderResultLike | undefined): void {
    this.lrFinder = result === undefined ? undefined : parseOptions("Report.setLrFinder", lrFinderSchema, result);
  }

  /**
   * Writes now, from what is recorded so far; resolves to the paths written (rejects on a write
   * error). `lossScale: "log"` with a loss <= 0 draws the loss on a linear scale, said once per run
   * with `logger.warn`.
   */
  async write(): Promise<string[]> {
    const o = this.options;
    const h = historyData(this.history);
    const warning = scaleWarning(h, o);
    if (warning && !this.scaleWarned) {
      this.scaleWarned = true;
      (this.logger ?? consoleLogger).warn(`${this.name}: ${warning}`);
    }
    const paths = await writeFiles(h, {
      dir: o.dir,
      formats: o.formats,
      plots: o.plots,
      title: o.title,
      lossScale: o.lossScale,
      scale: o.scale,
      fontFiles: o.fontFiles,
      ...(o.metric ? { metric: o.metric } : {}),
      ...(o.gradNormLimit ? { gradNormLimit: o.gradNormLimit } : {}),
      ...(this.lrFinder ? { lrFinder: this.lrFinder } : {}),
    });
    this.written = paths;
    return paths;
  }

  override beforeFit(ctx: HookContext): void {
    this.logger = ctx.logger;
    this.scaleWarned = false;
    void super.beforeFit(ctx);
  }

  override epochCheckpoint(ctx: HookContext): void {
    super.epochCheckpoint(ctx);
    const every = this.options.every;
    if (every > 0 && (ctx.state.epoch + 1) % every === 0 && !this.inFlight) {
      // not awaited: the next epoch trains while this renders and writes
      this.inFlight = this.write()
        .then(() => undefined, (e: unknown) => this.failed(e))
        .finally(() => (this.inFlight = undefined));
    }
  }

  async afterFit(ctx: FitEndContext): Promise<void> {
    this.history.finish(ctx); // idempotent: a shared history may not have seen afterFit yet
    if (!this.owns && this.history.runs === 0) ctx.logger.warn(`${this.name}: the RunHistory passed as \`history\` is not among the trainer's callbacks, so it recorded nothing; register it too`);
    await this.inFlight;
    try {
      await this.write();
      ctx.logger.info(`${this.name}: wrote ${this.written.length} files to ${this.options.dir}`);
    } catch (e) {
      this.failed(e);
    }
  }

  private failed(e: unknown): void {
    this.errors++;
    if (this.errors > 1) return;
    this.firstError = e;
    (this.logger ?? console).error(`${this.name}: could not write the report to ${this.options.dir}; training goes on (later write errors are not reported: see report.errors)`, e);
  }
}
