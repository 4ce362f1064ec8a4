import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import type { Batch, BatchContext, Callback, FitEndContext } from "./callback.js";
import type { DataSource } from "./data.js";
import type { ObserverBus } from "./bus.js";
import { CHECKPOINT_EVENTS, EVENTS, type EventName } from "./events.js";
import { Cancellation } from "./cancel.js";
import { FitloopError, PluginError } from "./errors.js";
import { hashString, mixSeed, Rng, withRandom } from "./rng.js";
import type { Hyperparameters } from "./hyperparams.js";
import type { Logger } from "./logger.js";
import { PluginLogs, type LogOptions } from "./logs.js";
import { hookOrder, type ResolvedPlugin } from "./order.js";
import { scaleTensors } from "./grads.js";
import type { RunSnapshot } from "./snapshot.js";
import type { FitOutcome, Logs, StopDetails, TrainState } from "./state.js";

type AnyHook = (this: Callback, ctx: PluginContext) => unknown;

/** Where `ctx.skipStep` can still keep the update from being applied. */
const SKIPPABLE: ReadonlySet<EventName> = new Set<EventName>(["afterForward", "afterLoss", "afterGradients", "beforeStep"]);

/** Everything one `fit()` shares between the loop and the plugin contexts. */
export class RunScope {
  batch: Batch | undefined;
  batchSize = 0;
  outputs: tf.Tensor | undefined;
  loss: tf.Scalar | undefined;
  grads: tf.NamedTensorMap | undefined;
  stepSkipped = false;
  /** A scale plugins asked for (`ctx.scaleGradients`), applied with the update unless someone reads the gradients first. */
  gradScale: tf.Scalar | undefined;
  /** Why plugins asked to skip this step's update (`ctx.skipStep`); the other hooks still run. */
  skipReasons: string[] = [];
  /** Values plugins log (`ctx.log`). */
  readonly pluginLogs: PluginLogs;
  /** The current epoch's record is in `state.history` (epoch values logged later go into it too). */
  epochRecorded = false;
  private readonly hooks = new Map<EventName, { fn: AnyHook; cb: Callback; ctx: PluginContext }[]>();

  constructor(
    readonly state: TrainState,
    readonly model: LayersModel,
    readonly optimizer: tf.Optimizer,
    readonly hyper: Hyperparameters,
    readonly logger: Logger,
    readonly bus: ObserverBus,
    plugins: readonly ResolvedPlugin[],
    reservedLogNames: ReadonlySet<string>,
    /** Takes the whole run's snapshot (the trainer knows the RNG and every plugin). */
    private readonly takeSnapshot: () => Promise<RunSnapshot>,
    /** Deterministic mode's seed (hooks draw their randomness from it). */
    readonly seed: number | undefined = undefined,
    /** A hook whose promise takes longer fails the run with HOOK_TIMEOUT. */
    readonly hookTimeoutMs: number | undefined = undefined,
    /** The run's data sources, for plugins that need another pass over them. */
    readonly data: { readonly train: DataSource; readonly validation: DataSource | undefined } | undefined = undefined,
  ) {
    this.pluginLogs = new PluginLogs(reservedLogNames, (t) => this.owns(t));
    this.plugins = plugins;
    const contexts = new Map(plugins.map((p) => [p, new PluginContext(this, p.name)]));
    for (const event of EVENTS) {
      this.hooks.set(
        event,
        hookOrder(plugins, event).map((p) => ({ fn: p.callback[event] as unknown as AnyHook, cb: p.callback, ctx: contexts.get(p)! })),
      );
    }
  }

  private readonly plugins: readonly ResolvedPlugin[];

  /** `state.batchesPerEpoch` through every plugin's `updatesPerEpoch`, checked (see HookContext). */
  updatesPerEpoch(): number | undefined {
    // the source's own count: known from beforeFit on (state.batchesPerEpoch is set at each epoch's start)
    const batches = this.data ? this.data.train.batchesPerEpoch : this.state.batchesPerEpoch;
    if (batches === undefined) return undefined;
    let n = batches;
    for (const { callback, name } of this.plugins) {
      if (typeof callback.updatesPerEpoch !== "function") continue;
      const next: unknown = callback.updatesPerEpoch(n);
      if (typeof next !== "number" || !Number.isInteger(next) || next < 0 || next > n) {
        throw new FitloopError("INVALID_UPDATES_PER_EPOCH", `updatesPerEpoch of "${name}" returned ${String(next)} for ${n} batches per epoch: it must be an integer in [0, ${n}]`);
      }
      n = next;
    }
    return n;
  }

  get stopRequested(): boolean {
    return this.state.stopRequests.length > 0;
  }

  /** Tensors the loop disposes itself (this batch's loss, outputs, gradients, pending gradient scale) and variables. */
  owns(t: tf.Tensor): boolean {
    if (t === this.loss || t === this.outputs || t === this.gradScale) return true;
    if (this.grads && Object.values(this.grads).includes(t)) return true;
    // a Variable: tfjs's Tensor[Symbol.hasInstance] makes `instanceof Variable` true for any tensor
    return typeof (t as Partial<tf.Variable>).assign === "function";
  }

  requestStop(by: string, reason: string, details?: StopDetails): void {
    this.state.stopRequests.push({ by, reason: String(reason), epoch: this.state.epoch, step: this.state.step, ...(details ? { details: { ...details } } : {}) });
  }

  log(plugin: string, event: EventName, name: string, value: number | tf.Scalar, options: LogOptions | undefined): void {
    let batch: boolean;
    try {
      batch = this.pluginLogs.check(plugin, event, name, value, options);
    } catch (e) {
      // a tensor passed to ctx.log is the loop's, also when the call is refused
      if (value instanceof tf.Tensor && !value.isDisposed && !this.owns(value) && !this.pluginLogs.isPending(value)) value.dispose();
      throw e;
    }
    if (batch) this.pluginLogs.addBatch(name, value, options?.reduce, this.state.batchLogs);
    else this.setEpochLog(name, value as number);
  }

  private setEpochLog(name: string, value: number): void {
    const s = this.state;
    const showing = s.logs === s.epochLogs;
    s.epochLogs = { ...s.epochLogs, [name]: value };
    if (showing) s.logs = s.epochLogs;
    const record = s.history.at(-1);
    if (this.epochRecorded && record && record.epoch === s.epoch) record.logs[name] = value;
  }

  /** The hook that threw last (names the culprit when a cancellation escapes its scope). */
  lastThrow: { event: EventName; plugin: string } | undefined;
  /** Between batches the loop lets the event loop run at most this often (ms); false: never. */
  yieldEveryMs: number | false = 50;
  /** When the loop last let the event loop run (performance.now()). */
  lastYield = performance.now();

  /** This safe point's snapshot, taken on the first `ctx.snapshot()` and shared by every caller there. */
  private snapshotAtPoint: Promise<RunSnapshot> | undefined;

  snapshot(plugin: string, event: EventName): Promise<RunSnapshot> {
    if (!CHECKPOINT_EVENTS.has(event)) {
      return Promise.reject(new FitloopError("SNAPSHOT_OUT_OF_SCOPE", `ctx.snapshot() from "${plugin}" in ${event}: snapshots are taken at the safe points only (batchCheckpoint, epochCheckpoint), after every plugin is done with the batch or epoch`));
    }
    return (this.snapshotAtPoint ??= this.takeSnapshot());
  }

  /** Runs the hooks of `event` one by one, then tells observers. */
  async fire(event: EventName): Promise<void> {
    if (CHECKPOINT_EVENTS.has(event)) this.snapshotAtPoint = undefined;
    for (const h of this.hooks.get(event)!) await this.call(h, event);
    this.bus.emit(event, this.state);
  }

  /**
   * `afterFit`: every plugin's hook runs (their cleanup), even when one throws; returns the errors
   * with the plugin that threw each.
   */
  async fireAll(event: EventName): Promise<{ error: unknown; plugin: string }[]> {
    const errors: { error: unknown; plugin: string }[] = [];
    for (const h of this.hooks.get(event)!) {
      try {
        await this.call(h, event);
      } catch (e) {
        errors.push({ error: e, plugin: h.ctx.plugin });
      }
    }
    this.bus.emit(event, this.state);
    return errors;
  }

  /** `afterGradients`: each hook may return replacement gradients; replaced tensors are disposed. */
  async fireGradients(): Promise<void> {
    for (const h of this.hooks.get("afterGradients")!) {
      const r = (await this.call(h, "afterGradients")) as tf.NamedTensorMap | void;
      if (r && typeof r === "object" && r !== this.grads) this.replaceGradients(r, h.ctx.plugin);
    }
    this.bus.emit("afterGradients", this.state);
  }

  /**
   * One hook call. In deterministic mode its synchronous part draws `Math.random` (so `tf.random*`
   * without a seed) from a stream of the run seed, the plugin, the event and the position: the same
   * in every run with that seed, and after a resume. An error that is not fitloop's own is wrapped
   * in a `PluginError` naming the plugin and the event (the original is its `cause`).
   */
  private async call(h: { fn: AnyHook; cb: Callback; ctx: PluginContext }, event: EventName): Promise<unknown> {
    h.ctx.event = event;
    try {
      const r = this.seed === undefined ? h.fn.call(h.cb, h.ctx) : withRandom(this.hookRng(h.ctx.plugin, event), () => h.fn.call(h.cb, h.ctx), { allowAsync: true });
      if (r === undefined || r === null || typeof (r as Promise<unknown>).then !== "function") return r;
      return await (this.hookTimeoutMs === undefined ? r : withTimeout(r as Promise<unknown>, this.hookTimeoutMs, h.ctx.plugin, event));
    } catch (e) {
      this.lastThrow = { event, plugin: h.ctx.plugin };
      throw e instanceof FitloopError || e instanceof Cancellation ? e : new PluginError(h.ctx.plugin, event, e);
    }
  }

  /** The randomness of one hook call (deterministic mode): a function of the run seed, plugin, event and position. */
  hookRng(plugin: string, event: EventName): Rng {
    const s = this.state;
    // validation batches share epoch, globalBatch and step: their index tells them apart
    const position = [s.epoch, s.globalBatch, s.step, ...(this.valBatchIndex === undefined ? [] : [this.valBatchIndex])];
    return new Rng(mixSeed(this.seed!, hashString(plugin), EVENTS.indexOf(event), ...position));
  }

  /** The validation batch being evaluated (its hooks' randomness depends on it), or undefined. */
  valBatchIndex: number | undefined;

  /**
   * Multiplies this step's update by `scale`. Not applied to `grads` right away: the optimizer can
   * take it while it reads each gradient (fitloop's wasm Adam does), so clipping costs its norm
   * only. Whoever reads `ctx.grads` afterwards gets the scaled gradients. Ownership as for returned
   * gradients: the loop disposes a scale made in this batch; one the plugin keeps (made before the
   * batch), one it logged, or one the loop owns is used through a clone.
   */
  scaleGradients(plugin: string, event: EventName, scale: tf.Scalar): void {
    const ok = (event === "afterGradients" || event === "beforeStep") && scale instanceof tf.Tensor && scale.size === 1 && !scale.isDisposed;
    if (!ok) {
      if (scale instanceof tf.Tensor && !scale.isDisposed && !this.owns(scale) && !this.pluginKeeps(scale) && !this.pluginLogs.isPending(scale)) scale.dispose();
      const disposed = scale instanceof tf.Tensor && scale.isDisposed ? " (this one was disposed: a scale made during a step is the loop's after it; to reuse one across steps, make it before the batch, e.g. in beforeFit)" : "";
      throw new FitloopError("INVALID_GRADIENT_SCALE", `ctx.scaleGradients from "${plugin}" in ${event}: takes a live scalar tensor, in afterGradients or beforeStep (before the update)${disposed}`);
    }
    // a logged scale is disposed by the read, before the update: the loop needs its own
    const shared = this.owns(scale) || this.pluginKeeps(scale) || this.pluginLogs.isPending(scale);
    const s = tf.keep(shared ? tf.clone(scale) : scale);
    if (this.gradScale) {
      const combined = tf.keep(tf.mul(this.gradScale, s) as tf.Scalar);
      tf.dispose([this.gradScale, s]);
      this.gradScale = combined;
    } else {
      this.gradScale = s as tf.Scalar;
    }
  }

  /** The gradients with any pending scale applied (materialised once, for hooks that read them). */
  currentGrads(): tf.NamedTensorMap | undefined {
    if (this.grads && this.gradScale) {
      const names = Object.keys(this.grads);
      // keep: the first read may happen inside a plugin's own tf.tidy
      const scaled = scaleTensors(Object.values(this.grads), this.gradScale).map((t) => tf.keep(t));
      for (const t of Object.values(this.grads)) if (!this.pluginLogs.isPending(t)) t.dispose();
      this.grads = Object.fromEntries(names.map((n, i) => [n, scaled[i]!]));
      this.dropGradScale();
    }
    return this.grads;
  }

  dropGradScale(): void {
    this.gradScale?.dispose();
    this.gradScale = undefined;
  }

  /** The id the engine gives its next tensor when this batch began (tensors below it predate the batch). */
  batchStartId = 0;

  /** Marks the start of a batch: tensors created before now are not this batch's. */
  startBatch(): void {
    this.batchStartId = nextTensorId();
  }

  /**
   * A returned gradient the plugin keeps for itself (created before this batch: a cached tensor),
   * or one the loop must not dispose (a variable, this batch's loss or outputs).
   */
  private notOurs(t: tf.Tensor, old: ReadonlySet<tf.Tensor>): boolean {
    if (old.has(t) || this.pluginLogs.isPending(t)) return false;
    return this.pluginKeeps(t) || this.owns(t);
  }

  /**
   * A tensor made before this batch: a plugin's cache. One made during the batch is the loop's once
   * returned, `tf.keep` or not (`tf.keep` is how a plugin gets fresh gradients out of its own tidy:
   * treating those as the plugin's would leak them every step). A cache made lazily in the first
   * step is therefore refused at the second, with an error saying to make it before the batch.
   */
  private pluginKeeps(t: tf.Tensor): boolean {
    return t.id < this.batchStartId;
  }

  /**
   * Gradients returned from `afterGradients` become the loop's: it disposes them after the update.
   * A tensor the plugin keeps (see `notOurs`) is used through a clone (shares the data), so the
   * plugin's own stays alive. Refused replacements are disposed, except the plugin's own.
   */
  private replaceGradients(next: tf.NamedTensorMap, plugin: string): void {
    // a hook that replaced the gradients without reading them replaced the scaled ones too
    this.dropGradScale();
    const old = this.grads ?? {};
    const oldSet = new Set(Object.values(old));
    try {
      checkReplacement(old, next, plugin);
    } catch (e) {
      // a single tensor returned by mistake is refused as a whole (not read as a map of its fields)
      for (const t of next instanceof tf.Tensor ? [next] : Object.values(next)) if (t instanceof tf.Tensor && !t.isDisposed && !this.notOurs(t, oldSet) && !oldSet.has(t) && !this.pluginLogs.isPending(t)) t.dispose();
      throw e;
    }
    const kept = new Set(Object.values(next));
    // a replaced gradient a plugin logged waits for the read, which disposes it
    for (const t of Object.values(old)) if (!kept.has(t) && !this.pluginLogs.isPending(t)) t.dispose();
    // tfjs keeps optimizer slots by position: keep computeGradients' (trainable-variable) key order.
    const ordered: tf.NamedTensorMap = {};
    const clones = new Map<tf.Tensor, tf.Tensor>();
    for (const name of Object.keys(old)) {
      const t = next[name]!;
      ordered[name] = this.notOurs(t, oldSet) ? (clones.get(t) ?? clones.set(t, tf.keep(tf.clone(t))).get(t)!) : t;
    }
    this.grads = ordered;
  }

  setLogs(logs: Logs): void {
    this.state.logs = logs;
  }

  finish(outcome: FitOutcome): void {
    this.state.outcome = outcome;
  }
}

/** The context one plugin sees; `requestStop` records that plugin's name. */
export class PluginContext implements BatchContext, FitEndContext {
  event: EventName = "beforeFit";
  constructor(
    private readonly run: RunScope,
    readonly plugin: string,
  ) {}
  get state(): Readonly<TrainState> {
    return this.run.state;
  }
  get logs(): Readonly<Logs> {
    return this.run.state.logs;
  }
  get hyper(): Hyperparameters {
    return this.run.hyper;
  }
  get updatesPerEpoch(): number | undefined {
    return this.run.updatesPerEpoch();
  }
  get logger(): Logger {
    return this.run.logger;
  }
  get model(): LayersModel {
    return this.run.model;
  }
  get optimizer(): tf.Optimizer {
    return this.run.optimizer;
  }
  get stopRequested(): boolean {
    return this.run.stopRequested;
  }
  requestStop(reason: string, details?: StopDetails): void {
    this.run.requestStop(this.plugin, reason, details);
  }
  log(name: string, value: number | tf.Scalar, options?: LogOptions): void {
    this.run.log(this.plugin, this.event, name, value, options);
  }
  skipStep(reason: string): void {
    if (!SKIPPABLE.has(this.event)) throw new FitloopError("SKIP_OUT_OF_SCOPE", `ctx.skipStep from "${this.plugin}" in ${this.event}: a step can be skipped from afterForward to beforeStep (before the update)`);
    this.run.skipReasons.push(`${this.plugin}: ${reason}`);
  }
  hasLog(name: string): boolean {
    return this.run.pluginLogs.has(name, this.run.state.batchLogs);
  }
  snapshot(): Promise<RunSnapshot> {
    return this.run.snapshot(this.plugin, this.event);
  }
  random(): number {
    return Math.random(); // in deterministic mode, Math.random is this hook's seeded stream while it runs
  }
  get batch(): Batch {
    if (!this.run.batch) throw new Error(`ctx.batch is only available in batch hooks (not in ${this.event})`);
    return this.run.batch;
  }
  get batchSize(): number {
    return this.run.batchSize;
  }
  get outputs(): tf.Tensor | undefined {
    return this.run.outputs;
  }
  get loss(): tf.Scalar | undefined {
    return this.run.loss;
  }
  get grads(): Readonly<tf.NamedTensorMap> | undefined {
    return this.run.currentGrads();
  }
  scaleGradients(scale: tf.Scalar): void {
    this.run.scaleGradients(this.plugin, this.event, scale);
  }
  get stepSkipped(): boolean {
    return this.run.stepSkipped;
  }
  get skipRequested(): boolean {
    return this.run.skipReasons.length > 0;
  }
  get data(): { readonly train: DataSource; readonly validation: DataSource | undefined } {
    if (!this.run.data) throw new Error("ctx.data is only available during fit()");
    return this.run.data;
  }
  get outcome(): FitOutcome {
    if (!this.run.state.outcome) throw new Error(`ctx.outcome is only available in afterFit (not in ${this.event})`);
    return this.run.state.outcome;
  }
}

/**
 * Replacement gradients must cover exactly the same variables with the same shapes: tfjs keeps
 * optimizer slots by position, so a dropped or extra gradient would shift every slot after it.
 */
function checkReplacement(old: tf.NamedTensorMap, next: tf.NamedTensorMap, plugin: string): void {
  if (next instanceof tf.Tensor || Array.isArray(next)) {
    throw new FitloopError("INVALID_GRADIENTS", `afterGradients of "${plugin}" returned ${next instanceof tf.Tensor ? `a single tensor [${next.shape.join(",")}]` : `an array of ${(next as unknown[]).length}`}; return a map of gradients by variable name, like ctx.grads (${Object.keys(old).join(", ")})`);
  }
  for (const [name, t] of Object.entries(next)) {
    if (!(t instanceof tf.Tensor)) throw new FitloopError("INVALID_GRADIENTS", `afterGradients of "${plugin}" returned ${t === null ? "null" : typeof t} for "${name}"; return a tensor per variable`);
    if (t.isDisposed) {
      throw new FitloopError(
        "INVALID_GRADIENTS",
        `afterGradients of "${plugin}" returned a disposed tensor for "${name}". Returned gradients belong to the loop, which disposes them after the update (tf.keep or not); a tensor you reuse across steps must be made before the batch, e.g. in beforeFit (the loop then uses a clone), or return tf.clone() of it`,
      );
    }
    if (name in old && t.dtype !== old[name]!.dtype) throw new FitloopError("INVALID_GRADIENTS", `afterGradients of "${plugin}" returned a ${t.dtype} gradient for "${name}", whose gradient is ${old[name]!.dtype}`);
  }
  const missing = Object.keys(old).filter((k) => !(k in next));
  const extra = Object.keys(next).filter((k) => !(k in old));
  const reshaped = Object.keys(old).filter((k) => k in next && next[k]!.shape.join(",") !== old[k]!.shape.join(","));
  if (missing.length || extra.length || reshaped.length) {
    const parts = [missing.length ? `missing ${missing.join(", ")}` : "", extra.length ? `unknown ${extra.join(", ")}` : "", reshaped.length ? `wrong shape for ${reshaped.join(", ")}` : ""];
    throw new FitloopError("INVALID_GRADIENTS", `afterGradients of "${plugin}" returned gradients that do not match the variables: ${parts.filter(Boolean).join("; ")}. Return one gradient per variable, same names and shapes (zeros to freeze one).`);
  }
}

/** The id tfjs's engine gives its next tensor (tfjs 4.x: the static `Engine.nextTensorId`); 0 when unknown, so every tensor counts as new. */
function nextTensorId(): number {
  const id = (tf.engine().constructor as unknown as { nextTensorId?: unknown }).nextTensorId;
  return typeof id === "number" ? id : 0;
}

/** Rejects with HOOK_TIMEOUT when `p` takes longer than `ms` (the hook's work may still be running). */
function withTimeout<T>(p: Promise<T>, ms: number, plugin: string, event: EventName): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FitloopError("HOOK_TIMEOUT", `plugin "${plugin}" did not finish ${event} within ${ms} ms (hookTimeoutMs); the run stops`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
