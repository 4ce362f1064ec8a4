/**
 * `fitloop tune`: one worker on a shared study. It checks everything first (flags, storage spec,
 * objective module), then joins the study and runs `tune` from `@fitloop/recipes`, which claims
 * trials under the journal's lock (WAITING ones first), fails and queues again the trials of dead
 * workers, and stops when the study has the trials asked for. This file adds what a command needs:
 * the flags merged over the module's defaults, one line per trial, and a last summary line.
 */
import { accessSync, constants, mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { OptionsError, type Logger } from "@fitloop/core";
import { Study, formatValue, randomSampler, tpeSampler, tune, type Sampler, type SearchSpace, type StudyDirection, type TrialRecord } from "@fitloop/recipes";
import { trialCheckpointAt } from "@fitloop/recipes/node";
import { CliError } from "./errors.js";
import { checkObjectiveModule, loadObjectiveModule, type ObjectiveModule } from "./objective.js";
import { describeParams, retryOf, studyProgress } from "./progress.js";
import { checkStorageSpec, openStorage } from "./storage.js";

export const SAMPLERS = ["random", "tpe"] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export interface WorkerOptions<S extends SearchSpace = SearchSpace> {
  /** A Redis URL (`redis://[:password@]host:port[/db]`, `rediss://`) or the path of a journal file. */
  readonly storage: string;
  /** The study's name: created when missing. */
  readonly study: string;
  /** The path of the objective module, or its exports already loaded. */
  readonly objective: string | ObjectiveModule<S>;
  /** Finished trials the study should have, over all workers. Default: the module's `trials`. */
  readonly trials?: number;
  /** Study seed. Default: the module's `seed`, else 0. */
  readonly seed?: number;
  /** Default: the module's `direction`, else the study's (or "minimize" for a new one). */
  readonly direction?: StudyDirection;
  /** Default: the module's `sampler`, else random. */
  readonly sampler?: SamplerName;
  /** A directory every worker can reach: each trial checkpoints into `<dir>/<study>/trial-<n>`; a retried trial resumes from it. */
  readonly checkpoints?: string;
  /** Redis only: Optuna's key prefix. Default "". */
  readonly prefix?: string;
  /** Redis only: a worker that has not renewed its lease for this long is dead. Default 30 000 ms. */
  readonly leaseMs?: number;
  /** How often a trial of a dead worker is queued again. Default 3. */
  readonly maxRetries?: number;
  /** Go on after the objective throws (the trial is FAIL either way). Default false: stop with the error. */
  readonly catchErrors?: boolean;
  /** Only the summary line. Default false. */
  readonly quiet?: boolean;
  /** Where the lines go. Default stdout. */
  readonly print?: (line: string) => void;
  /** Where the storage's warnings go (lost connection, reconnected). Default stderr. */
  readonly logger?: Logger;
}

export interface WorkerResult {
  readonly study: string;
  /** Where the study lives, safe to print (no password). */
  readonly where: string;
  /** The trials this worker finished, in order. */
  readonly ran: readonly TrialRecord[];
  /** Finished trials in the study when this worker stopped (a failed trial that was queued again does not count). */
  readonly finished: number;
  readonly trials: number;
  /** The best COMPLETE trial of the whole study. */
  readonly best: TrialRecord | undefined;
}

const stderrLogger: Logger = { debug: () => undefined, info: (m) => void process.stderr.write(`${m}\n`), warn: (m) => void process.stderr.write(`${m}\n`), error: (m) => void process.stderr.write(`${m}\n`) };
const stdoutLine = (line: string) => void process.stdout.write(`${line}\n`);

/** Checks the options that do not need the module; every problem at once, named as the flag. */
function checkOptions(o: WorkerOptions<SearchSpace>): void {
  const issues: { path: string; message: string }[] = [];
  const int = (name: string, v: unknown, min: number) => v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= min) && issues.push({ path: name, message: `must be an integer >= ${min}, not ${JSON.stringify(v)}` });
  if (typeof o.study !== "string" || !o.study) issues.push({ path: "study", message: "must be a non-empty study name" });
  int("trials", o.trials, 1);
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) issues.push({ path: "seed", message: `must be a safe integer, not ${JSON.stringify(o.seed)}` });
  int("maxRetries", o.maxRetries, 0);
  int("leaseMs", o.leaseMs, 300);
  if (o.direction !== undefined && o.direction !== "minimize" && o.direction !== "maximize") issues.push({ path: "direction", message: `must be "minimize" or "maximize", not ${JSON.stringify(o.direction)}` });
  if (o.sampler !== undefined && !SAMPLERS.includes(o.sampler)) issues.push({ path: "sampler", message: `must be one of ${SAMPLERS.join(", ")}, not ${JSON.stringify(o.sampler)}` });
  if (o.checkpoints !== undefined && (typeof o.checkpoints !== "string" || !o.checkpoints)) issues.push({ path: "checkpoints", message: "must be a directory path" });
  if (o.prefix !== undefined && (typeof o.prefix !== "string" || /[\s\0]/.test(o.prefix))) issues.push({ path: "prefix", message: "must be a string without whitespace" });
  if (issues.length) throw new OptionsError("fitloop tune", issues);
}

/** `--checkpoints`: absolute (it is recorded in the journal for other workers), created, writable. */
function usableDirectory(dir: string): string {
  const path = resolve(dir);
  try {
    mkdirSync(path, { recursive: true });
    accessSync(path, constants.W_OK);
  } catch (e) {
    throw new CliError("INVALID_USAGE", `--checkpoints ${path} cannot be used as a directory: ${(e as Error).message}`, { cause: e });
  }
  return path;
}

/** How a retried trial started: from the checkpoint its failed run left, or over. */
function resumeNote(at: { step: number; epoch: number } | undefined, t: TrialRecord): string | undefined {
  if (!at) return undefined;
  const steps = Object.keys(t.intermediateValues).map(Number);
  // a resumed run reports from the epoch it resumed at; one that reports step 0 started over
  if (!steps.length) return `a checkpoint at step ${at.step} was there to resume from`;
  return Math.min(...steps) > 0 ? `resumed from checkpoint step ${at.step}` : `started over (did not use the checkpoint at step ${at.step})`;
}

/** One line per trial: number, state, value, params, seconds, and why it failed, was pruned or was retried. */
export function trialLine(t: TrialRecord, seconds: number, resumedAt?: { step: number; epoch: number }): string {
  const retried = retryOf(t);
  const reason = t.userAttrs[t.state === "PRUNED" ? "fitloop:prune_reason" : "fitloop:fail_reason"];
  const notes = [retried !== undefined ? `retry of trial ${retried}` : "", resumeNote(resumedAt, t) ?? "", (t.state === "PRUNED" || t.state === "FAIL") && typeof reason === "string" ? reason : ""].filter(Boolean);
  return `trial ${t.number} ${t.state} value ${formatValue(t.value)} ${describeParams(t.params)} ${seconds.toFixed(1)} s${notes.length ? ` (${notes.join("; ")})` : ""}`;
}

/** Runs one worker until the study has its trials (the `fitloop tune` command). */
export async function runWorker<S extends SearchSpace>(options: WorkerOptions<S>): Promise<WorkerResult> {
  checkOptions(options as WorkerOptions<SearchSpace>);
  const print = options.print ?? stdoutLine;
  const logger = options.logger ?? stderrLogger;
  const storageOptions = { ...(options.prefix !== undefined ? { prefix: options.prefix } : {}), ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}), logger };
  checkStorageSpec(options.storage, storageOptions);
  const m = typeof options.objective === "string" ? await loadObjectiveModule(options.objective) : checkObjectiveModule(options.objective, "(given to runWorker)");
  const trials = options.trials ?? m.trials;
  if (trials === undefined) throw new CliError("INVALID_USAGE", "how many trials? give --trials N, or export `trials` from the objective module");
  const direction = options.direction ?? m.direction;
  const sampler: Sampler | undefined = options.sampler === "tpe" ? tpeSampler() : options.sampler === "random" ? randomSampler() : m.sampler;

  const checkpoints = options.checkpoints === undefined ? undefined : usableDirectory(options.checkpoints);

  const storage = await openStorage(options.storage, storageOptions);
  try {
    const started = new Map<number, { at: number; resumedAt?: { step: number; epoch: number } }>();
    const study = await Study.open({ storage: storage.journal, name: options.study, ...(direction ? { direction } : {}) });
    if (!options.quiet) print(`fitloop: worker ${hostname()}:${process.pid} joined study "${study.name}" (${study.direction}) at ${storage.where}: ${studyProgress(study.trials).finished} of ${trials} trials finished`);
    const result = await tune({
      study,
      space: m.space,
      trials,
      ...(direction ? { direction } : {}),
      seed: options.seed ?? m.seed ?? 0,
      ...(m.pruner ? { pruner: m.pruner } : {}),
      ...(sampler ? { sampler } : {}),
      ...(checkpoints !== undefined ? { checkpoints } : {}),
      ...(options.maxRetries !== undefined ? { maxRetries: options.maxRetries } : {}),
      catchErrors: options.catchErrors ?? false,
      objective: async (params, trial) => {
        const note: { at: number; resumedAt?: { step: number; epoch: number } } = { at: performance.now() };
        started.set(trial.number, note);
        // what a retry finds in its checkpoint directory is what trialCheckpoint() resumes it from
        if (trial.retryOf !== undefined) {
          const at = await trialCheckpointAt(trial).catch(() => undefined); // manifests only: the objective loads the checkpoint itself
          if (at) note.resumedAt = at;
        }
        return m.objective(params, trial);
      },
      onTrialEnd: (t) => {
        const s = started.get(t.number);
        if (!options.quiet) print(trialLine(t, s ? (performance.now() - s.at) / 1000 : 0, s?.resumedAt));
      },
    });
    const { finished } = studyProgress(result.study.trials);
    const count = (s: TrialRecord["state"]) => result.ran.filter((t) => t.state === s).length;
    const best = result.best ? `best: trial ${result.best.number} value ${formatValue(result.best.value)} (${describeParams(result.best.params, ", ")})` : "best: none yet";
    print(`fitloop: worker ${hostname()}:${process.pid} ran ${result.ran.length} trials (${count("COMPLETE")} complete, ${count("PRUNED")} pruned, ${count("FAIL")} failed); study "${options.study}" at ${storage.where} has ${finished} of ${trials} finished; ${best}`);
    return { study: options.study, where: storage.where, ran: result.ran, finished, trials, best: result.best };
  } finally {
    await storage.close();
  }
}
