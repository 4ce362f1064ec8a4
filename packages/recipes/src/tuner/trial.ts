/** The handle an objective gets for one trial: its parameters and seed, reporting and pruning. */
import { TunerError } from "./errors.js";
import type { JsonValue } from "./json.js";
import { OP } from "./journal.js";
import type { Pruner } from "./pruner.js";
import type { Params, SearchSpace } from "./space.js";
import type { Study } from "./study.js";

export class Trial<S extends SearchSpace = SearchSpace> {
  private readonly reported = new Set<number>();
  private pruneReason: string | undefined;
  private closed = false;

  constructor(
    private readonly study: Study,
    /** Unique in the journal. */
    readonly id: number,
    /** 0, 1, 2, ... in the study. */
    readonly number: number,
    /**
     * This trial's seed, derived from the study seed and the trial number (a retry keeps the seed of
     * the trial it repeats); recorded as `fitloop:seed`. Pass it to the Trainer and `seeded(...)`.
     */
    readonly seed: number,
    readonly params: Params<S>,
    /** Aborted when the trial's `timeoutMs` runs out: stop training (`TrialReporter` does). */
    readonly signal: AbortSignal,
    private readonly pruner: Pruner | undefined,
    where: { readonly checkpointDir?: string; readonly retryOf?: number } = {},
  ) {
    this.checkpointDir = where.checkpointDir;
    this.retryOf = where.retryOf;
  }

  /**
   * Where this trial keeps its checkpoints (tune's `checkpoints` option); for a trial queued again
   * after its worker died, the directory of the trial it repeats, with that run's checkpoints in it.
   */
  readonly checkpointDir: string | undefined;
  /** The number of the failed trial this one repeats (Optuna's `failed_trial`), if it is a retry. */
  readonly retryOf: number | undefined;

  /** The pruner's name ("median"), or undefined without one. */
  get prunerName(): string | undefined {
    return this.pruner?.name;
  }

  /** Set once `prune()` was called (by you or `TrialReporter`): the trial ends PRUNED whatever the objective returns. */
  get pruneRequested(): string | undefined {
    return this.pruneReason;
  }

  /**
   * Records an intermediate value (`SET_TRIAL_INTERMEDIATE_VALUE`, Optuna's `trial.report`): steps
   * are integers from 0 (epochs); a step already reported is ignored, as Optuna ignores it. NaN and
   * Infinity are written as Python writes them.
   */
  async report(value: number, step: number): Promise<void> {
    if (!Number.isInteger(step) || step < 0) throw new TunerError("INVALID_VALUE", `trial ${this.number}: a step must be an integer >= 0, got ${step}`);
    if (typeof value !== "number") throw new TunerError("INVALID_VALUE", `trial ${this.number}: an intermediate value must be a number, got ${typeof value}`);
    if (this.closed || this.reported.has(step)) return;
    this.reported.add(step);
    await this.study.storage.append([this.study.makeRecord(OP.SET_TRIAL_INTERMEDIATE_VALUE, { trial_id: this.id, step, intermediate_value: value })]);
  }

  /**
   * Whether the pruner would stop this trial now, against the other trials as the journal has them
   * (read anew: other processes' trials count). False without a pruner; true once the trial timed out.
   * System attributes the pruner asks for (successive halving's `completed_rung_{k}`) are written first.
   */
  async shouldPrune(): Promise<boolean> {
    if (this.closed) return true;
    if (!this.pruner) return false;
    await this.study.sync();
    const decision = this.pruner.shouldPrune({ direction: this.study.direction, trials: this.study.trials }, this.study.trialById(this.id));
    if (typeof decision === "boolean") return decision;
    // attributes the pruner writes (successive halving's rungs), in the journal before the answer
    const attrs = Object.entries(decision.systemAttrs ?? {});
    if (attrs.length) {
      await this.study.storage.append(attrs.map(([key, value]) => this.study.attrRecord(this.id, "system", key, value)));
      await this.study.sync();
    }
    return decision.prune;
  }

  /** Ends the trial as PRUNED when the objective returns (or throws). */
  prune(reason?: string): void {
    this.pruneReason ??= reason ?? (this.pruner ? `pruned by the ${this.pruner.name} pruner` : "pruned");
  }

  /** Sets a user attribute of this trial (Optuna's `trial.set_user_attr`). */
  async setUserAttr(key: string, value: JsonValue): Promise<void> {
    if (this.closed) return;
    await this.study.storage.append([this.study.attrRecord(this.id, "user", key, value)]);
  }

  /** After the trial is finished in the journal, later reports would be ignored by every reader: drop them here. */
  close(): void {
    this.closed = true;
  }
}
