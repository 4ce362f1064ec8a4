/**
 * A search over a space (random, or TPE through `sampler`), on a study shared through its journal.
 * Each trial is claimed under the journal's lock (a queued WAITING trial first, else a new one), so
 * any number of processes together finish exactly `trials` trials; with random search a trial's
 * parameters and seed follow from the study seed and its number, so who runs it does not matter.
 */
import { Rng, mixSeed, parseOptions } from "@fitloop/core";
import { z } from "zod";
import { TrialPruned, TunerError } from "./errors.js";
import { localIsoTimestamp, type JsonObject, type JsonValue } from "./json.js";
import { OP, TRIAL_STATE, isFinished, type JournalRecord, type JournalStorage, type WorkerInfo, type WorkerLiveness } from "./journal.js";
import type { Pruner } from "./pruner.js";
import { isSampler, randomSampler, type Sampler, type SamplerContext } from "./sampler.js";
import type { StudyDirection, TrialRecord } from "./replay.js";
import { distributionToJson, incompatibility, toExternal, toInternal, type CategoricalChoice, type Distribution, type Params, type SearchSpace } from "./space.js";
import { Study } from "./study.js";
import { Trial } from "./trial.js";

export interface TuneOptions<S extends SearchSpace> {
  /** A `Study`, or where to open (or create) one. */
  readonly study: Study | { readonly storage: JournalStorage; readonly name: string };
  readonly space: S;
  /**
   * How many finished trials (COMPLETE, PRUNED, FAIL) the study should have, counted over every
   * process sharing it; a trial failed because its worker died and queued again does not count.
   * A resumed search runs only the rest.
   */
  readonly trials: number;
  /** Trains with `params` and returns the value to optimise. */
  readonly objective: (params: Params<S>, trial: Trial<S>) => number | Promise<number>;
  /** Default: the study's, or "minimize" for a new one. */
  readonly direction?: StudyDirection;
  /** Study seed: trial `n` samples its parameters from, and gets the seed, `mixSeed(seed, n)`. Default 0. */
  readonly seed?: number;
  readonly pruner?: Pruner;
  /** How a new trial's parameters are picked: `randomSampler()` (the default) or `tpeSampler(...)`. */
  readonly sampler?: Sampler;
  /** Per trial: past it the trial is FAIL (reason in `fitloop:fail_reason`) and `trial.signal` aborts. */
  readonly timeoutMs?: number;
  /** Go on after an objective throws (the trial is FAIL either way). Default false: rethrow, as Optuna. */
  readonly catchErrors?: boolean;
  /** How often a trial whose worker died is queued again. Default 3. */
  readonly maxRetries?: number;
  /** Overrides the storage's liveness check (`null`: never fail RUNNING trials of other workers). */
  readonly liveness?: WorkerLiveness | null;
  /** Called after each trial this process finished. */
  readonly onTrialEnd?: (trial: TrialRecord, study: Study) => void;
  /**
   * A directory every worker can reach (a shared filesystem): trial `n` keeps its checkpoints in
   * `<dir>/<study>/trial-<n>` (its `fitloop:checkpoint` system attribute, `trial.checkpointDir`); a
   * trial queued again after its worker died keeps the directory, so it resumes from the latest
   * checkpoint instead of starting over (`trialCheckpoint` in `@fitloop/recipes/node`).
   */
  readonly checkpoints?: string;
}

export interface TuneResult<S extends SearchSpace> {
  readonly study: Study;
  /** The best COMPLETE trial of the whole study (also trials of other processes and earlier runs). */
  readonly best: TrialRecord | undefined;
  readonly bestParams: Params<S> | undefined;
  /** The trials this call finished, in order. */
  readonly ran: readonly TrialRecord[];
}

const isDistribution = (d: unknown): d is Distribution => typeof d === "object" && d !== null && ["float", "int", "categorical"].includes((d as { kind?: unknown }).kind as string);
const fn = (what: string) => z.custom<(...args: never[]) => unknown>((f) => typeof f === "function", { message: `must be a function (${what})` });
const optionsSchema = z.strictObject({
  study: z.custom<TuneOptions<SearchSpace>["study"]>((s) => s instanceof Study || (typeof s === "object" && s !== null && "storage" in s && "name" in s), { message: "must be a Study or { storage, name }" }),
  space: z.record(z.string(), z.custom<Distribution>(isDistribution, { message: "must be logUniform(...), uniform(...), int(...) or choice([...])" })),
  trials: z.number({ message: "must be an integer >= 1" }).int({ message: "must be an integer >= 1" }).min(1, { message: "must be an integer >= 1" }),
  objective: fn("params, trial) => number"),
  direction: z.enum(["minimize", "maximize"], { message: 'must be "minimize" or "maximize"' }).optional(),
  seed: z.number({ message: "must be a safe integer" }).int({ message: "must be a safe integer" }).default(0),
  pruner: z.custom<Pruner>((p) => typeof p === "object" && p !== null && typeof (p as Pruner).shouldPrune === "function", { message: "must be a pruner (medianPruner(...))" }).optional(),
  sampler: z.custom<Sampler>(isSampler, { message: "must be a sampler (randomSampler(), tpeSampler(...))" }).optional(),
  timeoutMs: z.number({ message: "must be a number > 0" }).positive({ message: "must be a number > 0" }).optional(),
  catchErrors: z.boolean().default(false),
  maxRetries: z.number({ message: "must be an integer >= 0" }).int({ message: "must be an integer >= 0" }).min(0, { message: "must be an integer >= 0" }).default(3),
  liveness: z.custom<WorkerLiveness | null>((l) => l === null || (typeof l === "object" && typeof (l as WorkerLiveness).isAlive === "function"), { message: "must be a WorkerLiveness or null" }).optional(),
  onTrialEnd: fn("trial, study) => void").optional(),
  checkpoints: z.string({ message: "must be a directory path" }).min(1, { message: "must be a directory path" }).optional(),
});

/** Where trial `number` of `study` keeps its checkpoints: one directory per trial, the study's name made path-safe. */
export const checkpointDir = (root: string, study: string, number: number): string => `${root.replace(/\/+$/, "")}/${encodeURIComponent(study).replace(/\./g, "%2E")}/trial-${number}`;

/**
 * Whether a checkpoint directory read from the journal lies inside this worker's `checkpoints` root:
 * anyone who can write to the journal could otherwise point a worker's writes (and the deletions
 * of its retention) anywhere on its disk.
 */
function insideRoot(dir: JsonValue | undefined, root: string): dir is string {
  if (typeof dir !== "string") return false;
  const base = `${root.replace(/\/+$/, "")}/`;
  return dir.startsWith(base) && dir.slice(base.length).split("/").every((part) => part !== "" && part !== "." && part !== "..");
}

/** The seed of trial `number`: parameters are drawn from it, and the objective gets it. */
export const trialSeed = (studySeed: number, number: number): number => mixSeed(studySeed, number);

/** 53-bit uniform draws from the trial's own stream. */
function paramRandom(seed: number): () => number {
  const rng = new Rng(mixSeed(seed, 0x7a3e));
  return () => (rng.nextUint32() * 2 ** 21 + (rng.nextUint32() >>> 11)) / 2 ** 53;
}

/** The worker recorded on a trial, if it is one of fitloop's. */
export function workerOf(t: TrialRecord): WorkerInfo | undefined {
  const w = t.systemAttrs["fitloop:worker"];
  if (w === null || typeof w !== "object" || Array.isArray(w)) return undefined;
  const o = w as JsonObject;
  if (typeof o["id"] !== "string") return undefined;
  const opt = <T>(k: string, type: "string" | "number" | "boolean") => (typeof o[k] === type ? { [k]: o[k] as T } : {});
  return { id: o["id"], ...opt<string>("host", "string"), ...opt<number>("pid", "number"), ...opt<string>("boot", "string"), ...opt<number>("start", "number"), ...opt<boolean>("lease", "boolean") };
}

/** Numbers of trials that were queued again (Optuna's `retry_history`): their FAIL does not count. */
function retried(trials: readonly TrialRecord[]): Set<number> {
  const out = new Set<number>();
  for (const t of trials) {
    const h = t.systemAttrs["retry_history"];
    if (Array.isArray(h)) for (const n of h as JsonValue[]) if (typeof n === "number") out.add(n);
  }
  return out;
}

/** A parameter declared unlike the study's earlier trials (Optuna would ignore such a param record from another worker). */
function checkSpace(space: SearchSpace, trials: readonly TrialRecord[]): void {
  for (const [name, d] of Object.entries(space)) {
    const earlier = trials.find((t) => name in t.distributions);
    const why = earlier && incompatibility(earlier.distributions[name]!, d);
    if (why) throw new TunerError("SPACE_MISMATCH", `parameter "${name}" does not match the study's trials (trial ${earlier!.number}): ${why}`);
  }
}

/** Optuna's `RetryFailedTrialCallback` record: a WAITING copy of the trial with the same parameters. */
function retryRecord(study: Study, t: TrialRecord, history: number[]): JournalRecord {
  const { ["fitloop:worker"]: _dead, ...system } = t.systemAttrs;
  return study.makeRecord(OP.CREATE_TRIAL, {
    study_id: study.id,
    datetime_start: null,
    state: TRIAL_STATE.WAITING,
    value: null,
    values: null,
    distributions: Object.fromEntries(Object.entries(t.distributions).map(([k, d]) => [k, distributionToJson(d)])),
    params: Object.fromEntries(Object.entries(t.params).map(([k, v]) => [k, toInternal(t.distributions[k]!, v)])),
    user_attrs: t.userAttrs,
    system_attrs: { failed_trial: t.number, ...system, retry_history: history },
    intermediate_values: {},
  });
}

/**
 * Fails RUNNING trials whose worker is dead on this machine and queues each again with the same
 * parameters and seed (up to `maxRetries` times), as Optuna's heartbeat + `RetryFailedTrialCallback`
 * would. Under the lock, so two resuming processes fail and queue a trial once.
 */
export async function failDeadWorkers(study: Study, liveness: WorkerLiveness, maxRetries: number): Promise<number> {
  const deadTrials = async () => {
    const running = study.trials.filter((t) => t.state === "RUNNING" && workerOf(t) !== undefined && workerOf(t)!.id !== study.workerId);
    const alive = await Promise.all(running.map((t) => liveness.isAlive(workerOf(t)!)));
    return running.filter((_, i) => alive[i] === false);
  };
  await study.sync();
  if (!(await deadTrials()).length) return 0;
  const n = await study.storage.locked(async (w) => {
    await study.sync();
    const found = await deadTrials();
    const records = found.flatMap((t) => {
      const who = workerOf(t)!;
      return failAndRetry(study, t, `its worker (pid ${who.pid ?? "?"} on ${who.host ?? "?"}) died while it ran${who.lease ? " (its lease expired)" : ""}; failed by pid ${liveness.self.pid ?? "?"}`, maxRetries);
    });
    if (records.length) await w.append(records);
    return found.length;
  });
  await study.sync();
  return n;
}

/** FAIL with a reason, and a WAITING copy with the same parameters while retries are left. */
function failAndRetry(study: Study, t: TrialRecord, reason: string, maxRetries: number): JournalRecord[] {
  const records = [study.attrRecord(t.id, "user", "fitloop:fail_reason", reason), study.stateRecord(t.id, "FAIL")];
  const before = t.systemAttrs["retry_history"];
  const history = [...(Array.isArray(before) ? (before as JsonValue[]).filter((x): x is number => typeof x === "number") : []), t.number];
  if (history.length <= maxRetries) records.push(retryRecord(study, t, history));
  return records;
}

/** RUNNING trials of other workers that hold leases: they may still die and come back WAITING. */
function othersRunning(study: Study): boolean {
  return study.trials.some((t) => t.state === "RUNNING" && workerOf(t)?.lease === true && workerOf(t)!.id !== study.workerId);
}

interface Claim {
  readonly id: number;
  readonly number: number;
  readonly seed: number;
  readonly params: { readonly [name: string]: CategoricalChoice };
}

type O = Omit<z.output<typeof optionsSchema>, "objective" | "onTrialEnd" | "space"> & Pick<TuneOptions<SearchSpace>, "objective" | "onTrialEnd" | "space">;

/** Takes the next trial under the lock: a WAITING one first, else a new one while fewer than `trials` are finished or running. */
function claim(study: Study, o: O, worker: WorkerInfo): Promise<Claim | "again" | undefined> {
  return study.storage.locked(async (w) => {
    await study.sync();
    const trials = study.trials;
    const again = retried(trials);
    const done = trials.filter((t) => isFinished(t.state) && !(t.state === "FAIL" && again.has(t.number))).length;
    const running = trials.filter((t) => t.state === "RUNNING").length;
    if (done + running >= o.trials) return undefined;
    checkSpace(o.space, trials);
    const waiting = trials.find((t) => t.state === "WAITING");
    const number = waiting?.number ?? trials.length;
    const storedSeed = waiting?.systemAttrs["fitloop:seed"];
    const seed = typeof storedSeed === "number" ? storedSeed : trialSeed(o.seed, number);
    const random = paramRandom(seed);
    const sampler = o.sampler ?? randomSampler();
    const sampling: SamplerContext = { space: o.space, trials, direction: study.direction, random };
    const fixed = waiting?.systemAttrs["fixed_params"];
    const fixedParams = fixed !== null && typeof fixed === "object" && !Array.isArray(fixed) ? (fixed as JsonObject) : {};
    const params: Record<string, CategoricalChoice> = {};
    const internal: Record<string, number> = {};
    const problems: string[] = [];
    for (const [name, d] of Object.entries(o.space)) {
      if (waiting && name in waiting.params) {
        params[name] = waiting.params[name]!; // a retry: already set, compatible (checkSpace)
        continue;
      }
      const given = fixedParams[name];
      let value: CategoricalChoice = given !== undefined && (given === null || typeof given !== "object") ? given : sampler.sample(sampling, name, d);
      try {
        internal[name] = toInternal(d, value); // an enqueued value out of range is used anyway, as Optuna does
        value = toExternal(d, internal[name]);
      } catch (e) {
        problems.push(`${name}: ${(e as Error).message}`);
      }
      params[name] = value;
    }
    const dists = (names: string[]) => Object.fromEntries(names.map((k) => [k, distributionToJson(o.space[k]!)]));
    // First the claim alone: a RUNNING record for the WAITING trial (Python workers do not take the
    // lock, and the first RUNNING in the log wins) or the new trial; the rest only once it is ours.
    const claimRecord = waiting
      ? study.stateRecord(waiting.id, "RUNNING")
      : study.makeRecord(OP.CREATE_TRIAL, {
          study_id: study.id,
          datetime_start: localIsoTimestamp(),
          state: TRIAL_STATE.RUNNING,
          value: null,
          values: null,
          distributions: dists(Object.keys(internal)),
          params: internal,
          user_attrs: {},
          system_attrs: { "fitloop:seed": seed, "fitloop:worker": { ...worker } },
          intermediate_values: {},
        });
    await w.append([claimRecord]);
    await study.sync();
    const id = study.ownedTrial();
    if (id === undefined || (waiting && id !== waiting.id)) return "again"; // another worker's RUNNING came first
    const actual = study.trialById(id).number; // a Python worker may have created a trial meanwhile
    const records: JournalRecord[] = [];
    if (waiting) {
      for (const [name, v] of Object.entries(internal)) records.push(study.makeRecord(OP.SET_TRIAL_PARAM, { trial_id: waiting.id, param_name: name, param_value_internal: v, distribution: distributionToJson(o.space[name]!) }));
      if (storedSeed === undefined) records.push(study.attrRecord(waiting.id, "system", "fitloop:seed", seed));
      records.push(study.attrRecord(waiting.id, "system", "fitloop:worker", { ...worker }));
    }
    if (o.checkpoints !== undefined && !insideRoot(study.trialById(id).systemAttrs["fitloop:checkpoint"], o.checkpoints)) records.push(study.attrRecord(id, "system", "fitloop:checkpoint", checkpointDir(o.checkpoints, study.name, actual)));
    // an enqueued value the space cannot hold (Optuna: the objective raises, the trial fails)
    if (problems.length) records.push(study.attrRecord(id, "user", "fitloop:fail_reason", `enqueued parameters do not fit the space: ${problems.join("; ")}`), study.stateRecord(id, "FAIL"));
    if (records.length) await w.append(records);
    await study.sync();
    if (problems.length) return "again";
    return { id, number: actual, seed, params };
  });
}

type Outcome = { kind: "value"; value: unknown } | { kind: "error"; error: unknown } | { kind: "timeout" };

const describeError = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/** Aborts the running trial when the worker's lease was lost; `reason` is set then. */
interface LeaseWatch {
  controller: AbortController;
  reason?: string;
}

async function runTrial(study: Study, c: Claim, o: O, watch: LeaseWatch): Promise<{ record: TrialRecord; thrown?: { error: unknown } }> {
  const { controller } = watch;
  const stored = study.trialById(c.id).systemAttrs;
  const trial = new Trial<SearchSpace>(study, c.id, c.number, c.seed, c.params, controller.signal, o.pruner, {
    ...(o.checkpoints !== undefined && insideRoot(stored["fitloop:checkpoint"], o.checkpoints) ? { checkpointDir: stored["fitloop:checkpoint"] } : {}),
    ...(typeof stored["failed_trial"] === "number" ? { retryOf: stored["failed_trial"] } : {}),
  });
  const run: Promise<Outcome> = (async () => o.objective(trial.params, trial))().then(
    (value) => ({ kind: "value", value }),
    (error: unknown) => ({ kind: "error", error }),
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = o.timeoutMs === undefined ? undefined : new Promise<Outcome>((resolve) => (timer = setTimeout(() => resolve({ kind: "timeout" }), o.timeoutMs)));
  const outcome = await (timeout ? Promise.race([run, timeout]) : run);
  clearTimeout(timer);
  let state: "COMPLETE" | "PRUNED" | "FAIL";
  let values: number[] | null = null;
  let reason: string | undefined;
  if (outcome.kind === "timeout") {
    state = "FAIL";
    reason = `timed out after ${o.timeoutMs} ms`;
    controller.abort(new Error(reason));
  } else if (trial.pruneRequested || (outcome.kind === "error" && outcome.error instanceof TrialPruned)) {
    state = "PRUNED";
    reason = trial.pruneRequested ?? (outcome.kind === "error" ? (outcome.error as TrialPruned).message : undefined);
  } else if (outcome.kind === "error") {
    state = "FAIL";
    reason = describeError(outcome.error);
  } else if (typeof outcome.value !== "number" || Number.isNaN(outcome.value)) {
    state = "FAIL";
    reason = `the objective returned ${String(outcome.value)}`; // Optuna fails a NaN too
  } else {
    state = "COMPLETE";
    values = [outcome.value];
  }
  trial.close();
  if (watch.reason !== undefined) {
    // Cut off past the lease: another worker may have failed and queued this trial already (its FAIL
    // came first, ours is ignored); if none did, fail and queue it here, under the lock, never twice.
    await study.storage.locked(async (w) => {
      await study.sync();
      const t = study.trialById(c.id);
      if (!isFinished(t.state)) await w.append(failAndRetry(study, t, watch.reason!, o.maxRetries));
    });
    await study.sync();
    if (outcome.kind === "timeout") await run;
    return { record: study.trialById(c.id) };
  }
  if (state === "PRUNED") {
    // Optuna's rule: a pruned trial's value is its last intermediate value, when it is a number
    await study.sync();
    const iv = study.trialById(c.id).intermediateValues;
    const last = Math.max(...Object.keys(iv).map(Number));
    if (Number.isFinite(last) && !Number.isNaN(iv[last]!)) values = [iv[last]!];
  }
  const records: JournalRecord[] = [];
  if (reason !== undefined) records.push(study.attrRecord(c.id, "user", state === "PRUNED" ? "fitloop:prune_reason" : "fitloop:fail_reason", reason));
  records.push(study.stateRecord(c.id, state, values));
  await study.storage.append(records);
  await study.sync();
  if (outcome.kind === "timeout") await run; // told to stop through trial.signal; the next trial waits for it
  return { record: study.trialById(c.id), ...(state === "FAIL" && outcome.kind === "error" ? { thrown: { error: outcome.error } } : {}) };
}

/**
 * Runs trials until the study has `trials` finished ones, sharing the study with any
 * other process (or Optuna worker) on the same journal. A killed search resumes where it stopped:
 * finished trials are never run again, a trial left RUNNING by a dead worker (on this machine, or
 * any machine with a leasing storage such as Redis) is failed and queued again with the same parameters.
 */
export async function tune<S extends SearchSpace>(options: TuneOptions<S>): Promise<TuneResult<S>> {
  const o = parseOptions("tune", optionsSchema, options) as unknown as O;
  const study = o.study instanceof Study ? o.study : await Study.open({ storage: o.study.storage, name: o.study.name, ...(o.direction ? { direction: o.direction } : {}) });
  if (o.direction && o.direction !== study.direction) throw new TunerError("DIRECTION_MISMATCH", `study "${study.name}" has direction "${study.direction}", not "${o.direction}"`);
  const liveness = o.liveness === null ? undefined : (o.liveness ?? study.storage.liveness);
  const worker: WorkerInfo = { id: study.workerId, ...liveness?.self };
  await study.sync();
  checkSpace(o.space, study.trials);
  const ran: TrialRecord[] = [];
  let watch: LeaseWatch = { controller: new AbortController() };
  const heartbeat = await liveness?.start?.(worker, (why) => {
    watch.reason ??= why;
    watch.controller.abort(new Error(why));
  });
  try {
    for (;;) {
      if (liveness) await failDeadWorkers(study, liveness, o.maxRetries);
      // before the claim: a lease lost while claiming stops the trial it claims, not the last one
      watch = { controller: new AbortController() };
      const c = await claim(study, o, worker);
      if (c === undefined) {
        // nothing to claim, but a trial running elsewhere may yet come back WAITING (its worker dies)
        if (liveness?.pollMs === undefined || !othersRunning(study)) break;
        await new Promise((r) => setTimeout(r, liveness.pollMs));
        continue;
      }
      if (c === "again") continue;
      const { record, thrown } = await runTrial(study, c, o, watch);
      ran.push(record);
      o.onTrialEnd?.(record, study);
      if (thrown && !o.catchErrors) throw thrown.error;
    }
  } finally {
    await heartbeat?.stop();
  }
  await study.sync();
  const best = study.bestTrial;
  return { study, best, bestParams: best ? (best.params as Params<S>) : undefined, ran };
}
