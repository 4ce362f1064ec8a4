import { isImprovement, ORDER, parseOptions, resolveMonitorMode, systemClock, type Callback, type Clock, type FitEndContext, type HookContext, type Logger, type MonitorMode } from "@fitloop/core";
import { z } from "zod";
import { encodeRun, encodeWeights, versions } from "./format.js";
import { CheckpointExistsError } from "./errors.js";
import { listCheckpoints } from "./load.js";
import type { CheckpointStore } from "./store.js";
import { formatName } from "./template.js";

const isStore = (v: unknown) => typeof v === "object" && v !== null && ["write", "read", "list", "remove", "readPointers", "writePointers"].every((m) => typeof (v as Record<string, unknown>)[m] === "function");

const optionsSchema = z
  .strictObject({
    store: z.custom<CheckpointStore>(isStore, { message: "must be a checkpoint store (FileStore from @fitloop/checkpoint/node, MemoryStore, or your own CheckpointStore)" }),
    every: z
      .strictObject({
        steps: z.number().int().min(1, { message: "must be an integer >= 1" }).optional(),
        epochs: z.number().int().min(1, { message: "must be an integer >= 1" }).optional(),
        minutes: z.number().gt(0, { message: "must be > 0" }).optional(),
      })
      .default({ epochs: 1 }),
    filename: z.string({ message: "must be a name template, e.g. epoch={epoch}-val_loss={val_loss:.4f}" }).min(1).default("epoch={epoch}-step={step}"),
    keepLast: z.number().int().min(0, { message: "must be an integer >= 0, or null to keep every checkpoint" }).nullable().default(3),
    monitor: z.string().min(1).optional(),
    mode: z.enum(["auto", "min", "max"], { message: 'must be "auto", "min" or "max"' }).default("auto"),
    keepBest: z.number().int().min(0, { message: "must be an integer >= 0" }).default(1),
    saveLast: z.boolean().default(true),
    weightsOnly: z.boolean().default(false),
    saveOnSignal: z.boolean().default(false),
    clock: z.custom<Clock>((v) => typeof (v as Clock | undefined)?.now === "function", { message: "must be a clock ({ now(): milliseconds })" }).default(systemClock),
    name: z.string().min(1).optional(),
  })
  .superRefine((o, ctx) => {
    if (o.monitor && resolveMonitorMode(o.monitor, o.mode) === undefined) ctx.addIssue({ code: "custom", path: ["mode"], message: `"auto" cannot tell whether "${o.monitor}" should go down or up; pass mode "min" or "max"` });
    if (!o.monitor && o.mode !== "auto") ctx.addIssue({ code: "custom", path: ["mode"], message: "applies with a monitor only" });
  });

export type CheckpointOptions = z.input<typeof optionsSchema>;

interface Saved {
  readonly name: string;
  readonly step: number;
  /** The monitored value when saved (undefined: not in the logs there, e.g. a mid-epoch save). */
  readonly value: number | undefined;
}

/**
 * Saves the run at core's safe points (`batchCheckpoint` every N steps or T minutes,
 * `epochCheckpoint` every N epochs), each checkpoint one atomic directory in the store (see
 * format.ts), keeps the last K and the best K by a monitored metric, and points `latest` and `best`
 * at them. Resume with `fit({ resumeFrom: await resumeFrom(store) })`. With `saveOnSignal`, SIGINT
 * or SIGTERM (Node) saves at the next safe point and stops the run gracefully; a second one exits.
 */
export class Checkpoint implements Callback {
  readonly name: string;
  /** After monitors (early stopping) in `before*` order; it saves at the safe points, where order does not matter. */
  readonly order = ORDER.CHECKPOINT;
  readonly options: Readonly<z.output<typeof optionsSchema>>;
  private readonly direction: MonitorMode | undefined;
  private saved: Saved[] = [];
  private lastSavedStep = -1;
  private lastSaveTime = 0;
  private signalled: string | undefined;
  private removeSignalHandlers: (() => void) | undefined;
  private logger: Logger | undefined;

  constructor(options: CheckpointOptions) {
    this.options = parseOptions("Checkpoint", optionsSchema, options);
    this.name = this.options.name ?? "Checkpoint";
    this.direction = this.options.monitor ? resolveMonitorMode(this.options.monitor, this.options.mode) : undefined;
  }

  get store(): CheckpointStore {
    return this.options.store;
  }

  /** The checkpoints this plugin knows in the store (from earlier runs too), oldest first. */
  get checkpoints(): readonly Saved[] {
    return this.saved;
  }

  async beforeFit(ctx: HookContext): Promise<void> {
    this.logger = ctx.logger;
    // what is in the store already (a resumed run continues the same retention)
    this.saved = (await listCheckpoints(this.store))
      .filter((c) => c.manifest !== undefined)
      .map((c) => ({ name: c.name, step: c.manifest!.step, value: this.options.monitor ? numberOf(c.manifest!.logs[this.options.monitor]) : undefined }))
      .sort((a, b) => a.step - b.step);
    this.lastSavedStep = -1;
    this.lastSaveTime = this.options.clock.now();
    this.signalled = undefined;
    if (this.options.saveOnSignal) this.installSignalHandlers();
  }

  async batchCheckpoint(ctx: HookContext): Promise<void> {
    const { steps, minutes } = this.options.every;
    const s = ctx.state;
    // the batch that ends an epoch: its epoch's safe point follows at once, with the epoch's metrics
    const lastOfEpoch = s.batchesPerEpoch !== undefined && s.batchIndex >= s.batchesPerEpoch;
    if (this.signalled) {
      await this.save(ctx, `on ${this.signalled}`);
      ctx.requestStop(`${this.signalled}: saved a checkpoint and stopped`);
      this.signalled = undefined;
      return;
    }
    // a stop asked for in this batch, mid-epoch: this is the run's last safe point (no epoch one follows)
    if (ctx.stopRequested && !lastOfEpoch) {
      const due = this.stepsDue(s.step) || this.timeDue();
      if ((this.options.saveLast || due) && s.step !== this.lastSavedStep) await this.save(ctx, due && !this.options.saveLast ? `every ${this.options.every.steps ?? this.options.every.minutes} ${this.options.every.steps ? "steps" : "minutes"}` : "where the run stopped");
      return;
    }
    if (lastOfEpoch || s.step === this.lastSavedStep) return;
    if (this.stepsDue(s.step) || this.timeDue()) await this.save(ctx, this.stepsDue(s.step) ? `every ${steps} steps` : `every ${minutes} minutes`);
  }

  /** After a whole epoch (core fires it only then). */
  async epochCheckpoint(ctx: HookContext): Promise<void> {
    const s = ctx.state;
    const { epochs } = this.options.every;
    const due = epochs !== undefined && (s.epoch + 1) % epochs === 0;
    const ending = this.options.saveLast && (ctx.stopRequested || s.epoch === s.epochs - 1);
    const reason = this.signalled ? `on ${this.signalled}` : due ? `every ${epochs} epochs` : this.stepsDue(s.step) ? `every ${this.options.every.steps} steps` : this.timeDue() ? `every ${this.options.every.minutes} minutes` : ending ? "at the end of the run" : undefined;
    if (reason && s.step !== this.lastSavedStep) await this.save(ctx, reason);
    if (this.signalled) {
      ctx.requestStop(`${this.signalled}: saved a checkpoint and stopped`);
      this.signalled = undefined;
    }
  }

  private stepsDue(step: number): boolean {
    const { steps } = this.options.every;
    return steps !== undefined && step > 0 && step % steps === 0;
  }

  private timeDue(): boolean {
    const { minutes } = this.options.every;
    return minutes !== undefined && this.options.clock.now() - this.lastSaveTime >= minutes * 60_000;
  }

  afterFit(_ctx: FitEndContext): void {
    this.removeSignalHandlers?.();
    this.removeSignalHandlers = undefined;
  }

  dispose(): void {
    this.removeSignalHandlers?.();
  }

  private async save(ctx: HookContext, why: string): Promise<void> {
    const s = ctx.state;
    const snapshot = await ctx.snapshot();
    // the logs the checkpoint is ranked by: this point's (batch logs mid-epoch, the epoch's at its end)
    const info = { versions: versions(), step: s.step, epoch: s.epoch, logs: ctx.logs };
    const files = this.options.weightsOnly ? await encodeWeights(snapshot.weights, ctx.model, info) : await encodeRun(snapshot, ctx.model, info);
    // mid-epoch saves have batch logs only: a key that is not there (val_*) reads "NA" there; at an
    // epoch's end every key must exist (a typo is an error at the first epoch, not a silent "NA")
    const atEpochEnd = ctx.event === "epochCheckpoint";
    const base = formatName(this.options.filename, { epoch: s.epoch, step: s.step, batch: s.batchIndex, logs: ctx.logs }, atEpochEnd ? "error" : "NA").slice(0, 190);
    const existing = new Set(await this.store.list());
    let name = base;
    // the same name twice (a template without the step, a resumed run): never replace a good checkpoint
    for (let v = 1; ; v++) {
      if (!existing.has(name)) {
        try {
          await this.store.write(name, files);
          break;
        } catch (e) {
          // something else is there under that name (not a checkpoint the list shows): take the next
          if (!(e instanceof CheckpointExistsError) || v > 100) throw e;
        }
      }
      name = `${base}-v${v}`;
    }
    const value = this.options.monitor ? numberOf(ctx.logs[this.options.monitor]) : undefined;
    this.saved.push({ name, step: s.step, value });
    this.lastSavedStep = s.step;
    this.lastSaveTime = this.options.clock.now();
    const best = this.ranked()[0];
    await this.store.writePointers({ latest: name, ...(best ? { best: best.name } : {}) });
    await this.applyRetention(name, best?.name);
    ctx.logger.info(`${this.name}: saved "${name}" (${why}) in ${this.store.description}`);
  }

  /** Checkpoints with a finite monitored value, best first. */
  private ranked(): Saved[] {
    const dir = this.direction;
    if (!dir) return [];
    const rule = { mode: dir, minDelta: 0, minDeltaMode: "absolute" as const };
    return this.saved.filter((c) => c.value !== undefined && Number.isFinite(c.value)).sort((a, b) => (isImprovement(a.value!, b.value!, rule) ? -1 : isImprovement(b.value!, a.value!, rule) ? 1 : b.step - a.step));
  }

  /** Keeps the last K by step, the best K by the monitor, and what the pointers name; removes the rest. */
  private async applyRetention(latest: string, best: string | undefined): Promise<void> {
    const { keepLast, keepBest } = this.options;
    if (keepLast === null) return;
    const keep = new Set<string>([latest, ...(best ? [best] : [])]);
    for (const c of [...this.saved].sort((a, b) => b.step - a.step).slice(0, keepLast)) keep.add(c.name);
    for (const c of this.ranked().slice(0, keepBest)) keep.add(c.name);
    for (const c of this.saved.filter((c) => !keep.has(c.name))) {
      try {
        await this.store.remove(c.name);
      } catch (e) {
        this.logger?.warn(`${this.name}: could not remove old checkpoint "${c.name}": ${(e as Error).message}`);
        continue;
      }
      this.saved = this.saved.filter((x) => x.name !== c.name);
    }
  }

  /** SIGINT/SIGTERM in Node: save at the next safe point and stop; a second signal exits at once. */
  private installSignalHandlers(): void {
    const proc = (globalThis as { process?: { on?: (s: string, f: () => void) => void; off?: (s: string, f: () => void) => void; kill?: (pid: number, s: string) => void; pid?: number } }).process;
    if (!proc?.on || !proc.off) return;
    const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => {
      const handler = () => {
        if (this.signalled) {
          // second signal: give up waiting for a safe point
          this.removeSignalHandlers?.();
          proc.kill?.(proc.pid ?? 0, signal);
          return;
        }
        this.signalled = signal;
        this.logger?.warn(`${this.name}: ${signal}: saving a checkpoint at the next safe point, then stopping (again to exit now)`);
      };
      proc.on!(signal, handler);
      return [signal, handler] as const;
    });
    this.removeSignalHandlers = () => {
      for (const [signal, handler] of handlers) proc.off!(signal, handler);
    };
  }
}

function numberOf(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (v && typeof v === "object" && "$float" in v) return Number((v as { $float: string }).$float);
  return undefined;
}
