import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, getLearningRate, momentumName, optimizerKind, parseOptions, setLearningRate, type Callback, type OptionIssue } from "@fitloop/core";
import { Checkpoint, type CheckpointStore } from "@fitloop/checkpoint";
import type { CSVLogger, CSVLoggerOptions } from "@fitloop/csv-logger";
import { EarlyStopping } from "@fitloop/early-stopping";
import { GradClip } from "@fitloop/grad-clip";
import { Scheduler, cosineAnnealingLR, linearWarmup, oneCycleLR, sequence, type Schedule } from "@fitloop/lr-schedule";
import type { ProgressBar, ProgressBarOptions } from "@fitloop/progress";
import type { Report, ReportOptions } from "@fitloop/report";
import { TerminateOnNaN } from "@fitloop/terminate-on-nan";
import { WeightDecay } from "@fitloop/weight-decay";
import { DROPOUT_ADVICE, ONE_CYCLE, OPTIMIZER_SOURCE, PRESET_DEFAULTS, patienceFor, type OptimizerFamily, type PresetName, type Sourced } from "./defaults.js";
import { formatWiring, type WiringRow } from "./describe.js";
import { presetSchema, type OneCycleScheduleOptions, type PresetOptions, type WarmupCosineOptions } from "./options.js";

/** The plugins a preset made, by role (`undefined`: left out). */
export interface PresetPlugins {
  readonly scheduler: Scheduler | undefined;
  readonly gradClip: GradClip | undefined;
  readonly weightDecay: WeightDecay | undefined;
  readonly terminateOnNaN: TerminateOnNaN | undefined;
  readonly earlyStopping: EarlyStopping | undefined;
  readonly checkpoint: Checkpoint | undefined;
  readonly csv: CSVLogger | undefined;
  readonly report: Report | undefined;
  readonly progress: ProgressBar | undefined;
}

export interface Preset {
  readonly name: PresetName;
  readonly optimizer: tf.Optimizer;
  /** In the order they were made; each declares its own run order (`trainer.describeLoop()` shows it). */
  readonly callbacks: readonly Callback[];
  readonly plugins: PresetPlugins;
  /** Spread into the Trainer: `new Trainer({ model, loss, ...preset.trainer })`. */
  readonly trainer: { readonly optimizer: tf.Optimizer; readonly callbacks: Callback[]; readonly seed?: number };
  /** Every setting with its value and origin (a default's source, or "yours"). */
  readonly rows: readonly WiringRow[];
  /** The full wiring as a table. */
  describe(): string;
  /** Frees what the preset made: the optimizer (unless it was yours) and early stopping's weight copy. */
  dispose(): void;
}

/** 6 significant digits; exponent notation (`3e-4`) below 1e-3 and from 1e4. */
const fmt = (v: number) => (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4) ? Number(v.toPrecision(6)).toExponential().replace("e+", "e") : String(Number(v.toPrecision(6))));
const YOURS = "yours";

/**
 * The plugins that write files or to a terminal (Node only). The Node entry passes them; without
 * them a preset refuses the options that need them and leaves progress out.
 */
export interface PresetIO {
  checkpointStore(dir: string): CheckpointStore;
  csvLogger(options: CSVLoggerOptions): CSVLogger;
  report(options: ReportOptions): Report;
  progress(options: ProgressBarOptions): ProgressBar;
}

/** Makes a preset's optimizer and plugins. `name` picks the defaults (defaults.ts); `io` the file and terminal plugins. */
export function buildPreset(name: PresetName, options: PresetOptions, io?: PresetIO): Preset {
  parseOptions(name, presetSchema, options);
  const o = options;
  const d = PRESET_DEFAULTS[name];
  const issues: OptionIssue[] = [];
  const rows: WiringRow[] = [];
  const row = (setting: string, value: string, source: string) => rows.push({ setting, value, source });
  const pick = <T>(given: T | undefined, fallback: Sourced<T>): Sourced<T> => (given === undefined ? fallback : { value: given, source: YOURS });
  /** Runs a plugin's constructor; its OptionsError's issues are reported under `key.` in the preset's. */
  const make = <T>(key: string, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof OptionsError)) throw e;
      issues.push(...e.issues.map((i) => ({ path: i.path ? `${key}.${i.path}` : key, message: `${i.message} (${e.owner})` })));
      return undefined;
    }
  };

  // optimizer and learning rate
  // typeof first: tfjs's Optimizer[Symbol.hasInstance] reads properties of what it is given
  const mine = typeof o.optimizer === "object" && o.optimizer instanceof tf.Optimizer ? o.optimizer : undefined;
  const kind = mine ? optimizerKind(mine) : undefined;
  const family: OptimizerFamily = o.optimizer === "sgd" || kind === "sgd" || kind === "momentum" ? "sgd" : "adam";
  const maxLr = pick(o.maxLr, d.maxLr[family]);
  const optimizer = mine ?? (family === "adam" ? tf.train.adam(maxLr.value, 0.9, 0.999, 1e-8) : tf.train.momentum(maxLr.value, 0.9));
  row("optimizer", mine ? `${kind} (your instance)` : family === "adam" ? "adam(beta1 0.9, beta2 0.999, epsilon 1e-8)" : "momentum(0.9)", mine ? YOURS : o.optimizer ? `${YOURS}; ${OPTIMIZER_SOURCE[family]}` : OPTIMIZER_SOURCE[family]);

  // schedule
  const stepsPerEpoch = o.stepsPerEpoch ?? o.data?.batchesPerEpoch;
  if (o.stepsPerEpoch !== undefined && o.data?.batchesPerEpoch !== undefined && o.stepsPerEpoch !== o.data.batchesPerEpoch) {
    issues.push({ path: "stepsPerEpoch", message: `is ${o.stepsPerEpoch} but data.batchesPerEpoch is ${o.data.batchesPerEpoch}: give one (or make them agree)` });
  }
  const total = stepsPerEpoch === undefined ? undefined : o.epochs * stepsPerEpoch;
  const scheduleOpt = o.schedule === undefined ? d.schedule.value : o.schedule;
  let scheduler: Scheduler | undefined;
  if (scheduleOpt === false) {
    // a constant rate: ours is made at maxLr; yours keeps its own unless maxLr is given
    // (your optimizer's rate is set only once every option has passed: see the end)
    row("maxLr", mine && o.maxLr === undefined ? `${fmt(getLearningRate(mine))} (your optimizer's, constant)` : `${fmt(maxLr.value)} (constant: no schedule)`, mine && o.maxLr === undefined ? YOURS : maxLr.source);
    row("schedule", "off", YOURS);
  } else if (typeof scheduleOpt === "function") {
    if (o.maxLr !== undefined) issues.push({ path: "maxLr", message: "is given with a custom schedule (schedule), which sets every step's rate itself: give one" });
    scheduler = make("schedule", () => new Scheduler({ lr: scheduleOpt }));
    row("schedule", scheduleOpt.description, YOURS);
  } else if (total === undefined) {
    issues.push({ path: "stepsPerEpoch", message: "is needed for the schedule: give stepsPerEpoch, or data (a source with batchesPerEpoch), or schedule: false" });
  } else {
    const spec: WarmupCosineOptions | OneCycleScheduleOptions = typeof scheduleOpt === "string" ? { kind: scheduleOpt } : scheduleOpt;
    const source = o.schedule === undefined ? d.schedule.source : YOURS;
    row("maxLr", `${fmt(maxLr.value)} (the schedule's peak)`, maxLr.source);
    if (spec.kind === "1cycle") {
      const p = { pctStart: spec.pctStart ?? ONE_CYCLE.pctStart, divFactor: spec.divFactor ?? ONE_CYCLE.divFactor, finalDivFactor: spec.finalDivFactor ?? ONE_CYCLE.finalDivFactor };
      // an optimizer without momentum or beta1 (plain tf.train.sgd): nothing to cycle. Asked for
      // explicitly, that is a contradiction; by default the momentum cycle is left out with a note
      const noMomentum = mine !== undefined && momentumName(mine) === undefined;
      if (noMomentum && spec.cycleMomentum === true) issues.push({ path: "schedule.cycleMomentum", message: `is true but the optimizer (${kind}) has no momentum or beta1 to cycle: use momentum or adam, or cycleMomentum: false` });
      const cycleMomentum = noMomentum ? false : (spec.cycleMomentum ?? true);
      const cycle = make("schedule", () => oneCycleLR({ maxLr: maxLr.value, totalSteps: total, ...p, cycleMomentum }));
      if (cycle) scheduler = make("schedule", () => new Scheduler({ lr: cycle.lr, ...(cycle.momentum ? { momentum: cycle.momentum } : {}) }));
      const mom = noMomentum ? `; no momentum cycle: your ${kind} optimizer has no momentum or beta1` : cycleMomentum ? `; ${family === "adam" ? "beta1" : "momentum"} 0.95 -> 0.85 -> 0.95` : "";
      row("schedule", `1cycle over ${total} steps: ${fmt(maxLr.value / p.divFactor)} -> ${fmt(maxLr.value)} at ${p.pctStart * 100} % -> ${fmt(maxLr.value / p.divFactor / p.finalDivFactor)}${mom}`, `${source === YOURS ? "yours; otherwise " : ""}PyTorch OneCycleLR's defaults pctStart 0.3, divFactor 25, finalDivFactor 1e4 (Smith & Topin 2019)`);
    } else {
      const warm = pick(spec.warmup, d.warmup);
      const minLr = spec.minLr ?? 0;
      if (minLr > maxLr.value) issues.push({ path: "schedule.minLr", message: `is ${fmt(minLr)}, above maxLr ${fmt(maxLr.value)}${maxLr.source === YOURS ? "" : " (the default)"}: the cosine would rise; lower minLr or raise maxLr` });
      const warmSteps = Math.min(total - 1, Math.round(warm.value * total));
      const lr = make("schedule", (): Schedule => {
        const cosine = cosineAnnealingLR({ baseLr: maxLr.value, tMax: Math.max(1, total - warmSteps), etaMin: minLr });
        return warmSteps > 0 ? sequence([linearWarmup({ peak: maxLr.value, steps: warmSteps }), cosine], [warmSteps]) : cosine;
      });
      if (lr) scheduler = make("schedule", () => new Scheduler({ lr }));
      row("schedule", `warmup-cosine over ${total} steps (${o.epochs} epochs x ${stepsPerEpoch}): 0 -> ${fmt(maxLr.value)} in ${warmSteps} steps, cosine to ${fmt(minLr)}`, source);
      row("warmup", `${fmt(warm.value * 100)} % (${warmSteps} steps)`, warm.source);
    }
  }

  // weight decay
  let weightDecay: WeightDecay | undefined;
  if (o.weightDecay === false) row("weightDecay", "off", YOURS);
  else {
    const fields = typeof o.weightDecay === "object" ? o.weightDecay : {};
    const wd = pick(typeof o.weightDecay === "number" ? o.weightDecay : typeof fields.weightDecay === "number" ? fields.weightDecay : undefined, d.weightDecay[family]);
    weightDecay = make("weightDecay", () => new WeightDecay({ ...fields, weightDecay: typeof fields.weightDecay === "function" ? fields.weightDecay : wd.value }));
    const shown = typeof fields.weightDecay === "function" ? "scheduled" : fmt(wd.value);
    row("weightDecay", `${shown} decoupled (${family === "adam" ? "AdamW" : "SGDW"}): w *= 1 - lr x wd each step; kernels only`, typeof fields.weightDecay === "function" ? YOURS : wd.source);
  }

  // gradient clipping
  let gradClip: GradClip | undefined;
  if (o.clip === false) row("clip", "off", YOURS);
  else {
    const fields = typeof o.clip === "object" ? o.clip : {};
    const max = pick(typeof o.clip === "number" ? o.clip : fields.max, d.clip);
    const by = fields.by ?? "globalNorm";
    gradClip = make("clip", () => new GradClip({ ...fields, by, max: max.value }));
    const mixed = Object.keys(fields).length > 0 && max.source !== YOURS; // your mode, our limit
    row("clip", `${by === "globalNorm" ? "global norm" : by} ${fmt(max.value)}; logs grad_norm, grad_clipped`, mixed ? `yours; max from ${max.source}` : max.source);
  }

  // non-finite guard
  let terminateOnNaN: TerminateOnNaN | undefined;
  if (o.terminateOnNaN === false) row("terminateOnNaN", "off", YOURS);
  else {
    const fields = o.terminateOnNaN ?? {};
    terminateOnNaN = make("terminateOnNaN", () => new TerminateOnNaN(fields));
    row("terminateOnNaN", `stop on a non-finite ${(fields.watch ?? ["loss"]).join(", ")}, before that update`, o.terminateOnNaN ? YOURS : "Keras' TerminateOnNaN, checked before the update (@fitloop/terminate-on-nan)");
  }

  // early stopping
  const monitor = o.monitor ?? (o.earlyStopping ? o.earlyStopping.monitor : undefined) ?? "val_loss";
  let earlyStopping: EarlyStopping | undefined;
  if (o.earlyStopping === false) {
    for (const k of ["patience", "monitor"] as const) if (o[k] !== undefined) issues.push({ path: k, message: `is given but earlyStopping is false: give one` });
    row("earlyStopping", "off", YOURS);
  }
  else {
    const fields = o.earlyStopping ?? {};
    for (const k of ["patience", "monitor"] as const) {
      if (o[k] !== undefined && fields[k] !== undefined) issues.push({ path: `earlyStopping.${k}`, message: `is also given as ${k}: give one` });
    }
    const samples = o.samples ?? o.data?.size;
    const patience = pick(o.patience ?? fields.patience, d.patience ?? patienceFor(samples));
    const restore = fields.restoreBestWeights ?? true;
    earlyStopping = make("earlyStopping", () => new EarlyStopping({ ...fields, monitor, patience: patience.value, restoreBestWeights: restore }));
    row("earlyStopping", `${monitor}, patience ${patience.value}${restore ? ", restores the best epoch's weights" : ""}`, o.monitor ?? fields.monitor ? YOURS : "Keras' EarlyStopping on val_loss (needs validation data), restoring the best weights");
    row("patience", String(patience.value), patience.source);
  }

  // files (checkpoints, CSV log, report) and the terminal (progress): made by `io`, which only the
  // Node entry has, so the main entry stays browser-safe
  const under = (sub: string, explicit: string | undefined) => explicit ?? (o.dir !== undefined ? `${o.dir.replace(/[/\\]+$/, "")}/${sub}` : undefined);
  const needsNode = (key: string, what: string) => issues.push({ path: key, message: `${what} needs Node: import the preset from "@fitloop/recipes/node"${key === "checkpoint" || key === "checkpointDir" ? " (or give checkpoint: { store }, e.g. a MemoryStore)" : ""}` });
  const noDir = "off: no directory (give dir, or this plugin's own)";
  /** Constructors of the file and terminal plugins, run once every option has passed. */
  const later: (() => void)[] = [];
  if (!io) for (const key of ["dir", "checkpointDir", "reportDir"] as const) if (o[key] !== undefined) needsNode(key, "writing files");
  let checkpoint: Checkpoint | undefined;
  const ckDir = under("checkpoints", o.checkpointDir);
  if (o.checkpoint === false) row("checkpoint", "off", YOURS);
  else if (o.checkpoint?.store === undefined && ckDir === undefined) {
    if (o.checkpoint) issues.push({ path: "checkpoint", message: "has nowhere to write: give dir, checkpointDir or checkpoint: { store }" });
    row("checkpoint", noDir, "needs a place to write");
  }
  else if (o.checkpoint?.store === undefined && !io) row("checkpoint", "off", "needs Node");
  else {
    const fields = o.checkpoint || {};
    const at = rows.length;
    row("checkpoint", "", "");
    later.push(() => {
      const store = fields.store ?? io!.checkpointStore(ckDir!);
      const ranked = earlyStopping ? { monitor: fields.monitor ?? monitor } : {};
      checkpoint = make("checkpoint", () => new Checkpoint({ ...fields, ...ranked, store }));
      const c = checkpoint?.options;
      rows[at] = { setting: "checkpoint", value: `${fields.store ? "your store" : ckDir}: every ${c?.every.epochs ?? "?"} epoch(s), keep last ${c?.keepLast ?? "all"}${c?.monitor ? `, best ${c.keepBest} by ${c.monitor}` : ""}`, source: o.checkpoint ? YOURS : "@fitloop/checkpoint's defaults, ranked by the early-stopping monitor" };
    });
  }
  let csv: CSVLogger | undefined;
  const csvPath = o.csv && o.csv.path !== undefined ? o.csv.path : under("metrics.csv", undefined);
  if (o.csv === false) row("csv", "off", YOURS);
  else if (csvPath === undefined) {
    if (o.csv) issues.push({ path: "csv", message: "has nowhere to write: give dir or csv: { path }" });
    row("csv", noDir, "needs a place to write");
  }
  else if (!io) {
    if (o.csv) needsNode("csv", "the CSV log");
    row("csv", "off", "needs Node");
  }
  else {
    later.push(() => (csv = make("csv", () => io.csvLogger({ ...(o.csv || {}), path: csvPath }))));
    row("csv", `${csvPath}, a row per epoch`, o.csv ? YOURS : "Keras' CSVLogger (@fitloop/csv-logger)");
  }
  let report: Report | undefined;
  const reportDir = o.report && o.report.dir !== undefined ? o.report.dir : under("report", o.reportDir);
  if (o.report === false) row("report", "off", YOURS);
  else if (reportDir === undefined) {
    if (o.report) issues.push({ path: "report", message: "has nowhere to write: give dir, reportDir or report: { dir }" });
    row("report", noDir, "needs a place to write");
  } else if (!io) {
    if (o.report) needsNode("report", "the report");
    row("report", "off", "needs Node");
  }
  else {
    const fields = o.report || {};
    const before = rows.length;
    later.push(() => {
      const config = { preset: name, ...Object.fromEntries(rows.slice(0, before).map((r) => [r.setting, r.value])), ...fields.config };
      report = make("report", () => io.report({ ...(gradClip?.options.by === "globalNorm" ? { gradNormLimit: gradClip.options.max } : {}), ...fields, config, dir: reportDir }));
    });
    row("report", `${reportDir}: plots and report.html at the end of the run`, o.report ? YOURS : "@fitloop/report's defaults");
  }
  let progress: ProgressBar | undefined;
  if (o.progress === false) row("progress", "off", YOURS);
  else if (!io) {
    if (o.progress !== undefined) needsNode("progress", "the progress bar");
    else row("progress", "off: a terminal plugin", 'import the preset from "@fitloop/recipes/node" for it');
  } else {
    later.push(() => (progress = make("progress", () => io.progress(typeof o.progress === "object" ? o.progress : {}))));
    row("progress", "a bar per epoch on stderr (lines when not a terminal)", typeof o.progress === "object" ? YOURS : "Keras' progress bar (@fitloop/progress)");
  }
  row("dropout", DROPOUT_ADVICE.value, DROPOUT_ADVICE.source);

  // every option has been checked: only now the file and terminal plugins, then your optimizer's rate
  const refuse = () => {
    if (!mine) optimizer.dispose();
    earlyStopping?.dispose();
    throw new OptionsError(name, issues);
  };
  if (issues.length) refuse();
  for (const make of later) make();
  if (issues.length) refuse();
  if (scheduleOpt === false && mine && o.maxLr !== undefined) setLearningRate(mine, o.maxLr);
  const plugins: PresetPlugins = { scheduler, gradClip, weightDecay, terminateOnNaN, earlyStopping, checkpoint, csv, report, progress };
  const callbacks = Object.values(plugins).filter((p): p is NonNullable<typeof p> => p !== undefined) as Callback[];
  return {
    name,
    optimizer,
    callbacks,
    plugins,
    trainer: { optimizer, callbacks: [...callbacks], ...(o.seed !== undefined ? { seed: o.seed } : {}) },
    rows,
    describe: () => formatWiring(name, rows, callbacks),
    dispose: () => {
      earlyStopping?.dispose();
      if (!mine) optimizer.dispose();
    },
  };
}
