import { checkMonitorPossible, monitorValue, ORDER, type Callback, type FitEndContext, type HookContext, type StateDict, type StopDetails } from "@fitloop/core";
import { resolveEarlyStoppingOptions, type EarlyStoppingOptions, type ResolvedEarlyStoppingOptions } from "./options.js";
import { earlyStoppingStateDict, parseEarlyStoppingState } from "./state.js";
import { earlyStoppingStep, fmt, initialEarlyStoppingState, type EarlyStoppingState, type StopKind } from "./step.js";
import { WeightCopies } from "./weights.js";

/** What the last run decided (plain numbers; `undefined` where there is nothing to say yet). */
export interface EarlyStoppingResult {
  /** This plugin asked the run to stop. */
  readonly stopped: boolean;
  readonly stoppedEpoch: number | undefined;
  /** The epoch of the best finite value (`undefined` before any finite value). */
  readonly bestEpoch: number | undefined;
  readonly bestValue: number | undefined;
  readonly reason: string | undefined;
  readonly kind: StopKind | undefined;
}

/**
 * Stops training when a monitored value stops improving: Keras 3's `EarlyStopping` (stop epoch,
 * best epoch, which weights are restored), plus Lightning's `stoppingThreshold`,
 * `divergenceThreshold` and `checkFinite`. Decides in `afterEpoch` at `ORDER.MONITOR`, asks the
 * run to stop with `ctx.requestStop` (the outcome says why and when), and with
 * `restoreBestWeights` sets the best epoch's weights in `afterFit`, whatever ended the run. The
 * decision itself is `earlyStoppingStep`, a pure function; its counters and the best weights go
 * through `stateDict()`, so a resumed run stops where an uninterrupted one would.
 */
export class EarlyStopping implements Callback {
  readonly name: string;
  readonly order = ORDER.MONITOR;
  readonly stateKey: string;
  readonly options: ResolvedEarlyStoppingOptions;
  private state: EarlyStoppingState = initialEarlyStoppingState();
  private stop: { kind: StopKind; reason: string } | null = null;
  private readonly best = new WeightCopies();
  /** Our `beforeFit` ran in the current fit, so `afterFit` may restore (not after a previous fit's copy). */
  private active = false;

  constructor(options: EarlyStoppingOptions = {}) {
    this.options = resolveEarlyStoppingOptions(options, "EarlyStopping");
    this.name = this.options.name ?? "EarlyStopping";
    this.stateKey = this.options.stateKey ?? "early-stopping";
  }

  /** Where the last (or current) run stands. */
  get result(): EarlyStoppingResult {
    const s = this.state;
    return {
      stopped: s.stoppedEpoch !== null,
      stoppedEpoch: s.stoppedEpoch ?? undefined,
      bestEpoch: s.bestEpoch ?? undefined,
      bestValue: s.best ?? undefined,
      reason: this.stop?.reason,
      kind: this.stop?.kind,
    };
  }

  /** The best weights kept so far, read from the device (empty without `restoreBestWeights`). */
  bestWeights(): Float32Array[] {
    return this.best.values();
  }

  beforeFit(ctx: HookContext): void {
    this.active = false;
    checkMonitorPossible(ctx.state, this.options.monitor, this.name);
    if (ctx.state.resumed) {
      try {
        this.best.check(ctx.model, this.name);
      } catch (e) {
        this.reset();
        throw e;
      }
    } else {
      // Keras' on_train_begin: an instance can be reused for another fit
      this.reset();
    }
    this.active = true;
  }

  afterEpoch(ctx: HookContext): void {
    const o = this.options;
    const epoch = ctx.state.epoch;
    if (epoch < o.startFromEpoch) return;
    // an epoch cut short by CancelEpoch has no complete logs (core records only complete epochs)
    if (ctx.state.history.at(-1)?.epoch !== epoch) return;
    const current = monitorValue(ctx.logs, o.monitor, this.name, `at the end of epoch ${epoch}`);
    const { state, decision } = earlyStoppingStep(this.state, current, epoch, o);
    // Keras also copies at the first monitored epoch when the copy is missing; with finite-only
    // bests the first finite value always improves on +-Infinity, so `improved` covers it.
    if (decision.improved && o.restoreBestWeights) this.best.capture(ctx.model);
    this.state = state;
    if (!decision.stop) return;
    this.stop = { kind: decision.kind!, reason: decision.reason! };
    const details: Record<string, StopDetails[string]> = { kind: decision.kind!, monitor: o.monitor, value: current, stoppedEpoch: epoch, wait: state.wait };
    if (state.bestEpoch !== null) details["bestEpoch"] = state.bestEpoch;
    if (state.best !== null) details["bestValue"] = state.best;
    ctx.requestStop(decision.reason!, details);
    if (o.verbose) ctx.logger.info(`${this.name}: stopping at the end of epoch ${epoch}: ${decision.reason}`);
  }

  afterFit(ctx: FitEndContext): void {
    if (!this.active) return;
    this.active = false;
    if (!this.options.restoreBestWeights || !this.best.has) return;
    this.best.restore(ctx.model);
    if (this.options.verbose) {
      ctx.logger.info(`${this.name}: restored the weights of the best epoch, ${this.state.bestEpoch} (${this.options.monitor} ${fmt(this.state.best!)}); the run ${ctx.outcome.status}`);
    }
  }

  stateDict(): StateDict {
    return earlyStoppingStateDict({ state: this.state, stop: this.stop, weights: this.options.restoreBestWeights ? this.best.save() : null });
  }

  loadStateDict(dict: StateDict): void {
    const saved = parseEarlyStoppingState(this.name, dict, this.options.restoreBestWeights);
    this.state = saved.state;
    this.stop = saved.stop;
    // shapes are checked against the model in beforeFit, where the model is known
    if (this.options.restoreBestWeights && saved.weights) this.best.load(saved.weights);
    else this.best.dispose();
  }

  /** Releases the weight copies (a plugin passed as an instance is the caller's to dispose). */
  dispose(): void {
    this.best.dispose();
  }

  private reset(): void {
    this.state = initialEarlyStoppingState();
    this.stop = null;
    this.best.dispose();
  }
}
