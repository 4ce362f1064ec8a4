/**
 * A study over a journal: opens (or creates) it by name, replays what every worker has written and
 * writes this worker's records. Knows nothing of files or processes: any `JournalStorage` will do.
 */
import { parseOptions } from "@fitloop/core";
import { z } from "zod";
import { TunerError } from "./errors.js";
import { localIsoTimestamp, type JsonObject, type JsonValue } from "./json.js";
import { OP, TRIAL_STATE, type JournalRecord, type JournalStorage, type OpCode, type TrialStateName } from "./journal.js";
import { JournalReplay, type StudyDirection, type StudyRecord, type TrialRecord } from "./replay.js";
import type { CategoricalChoice } from "./space.js";

export interface OpenStudyOptions {
  readonly storage: JournalStorage;
  readonly name: string;
  /** For a new study; checked against an existing one. Default: the existing study's, or "minimize". */
  readonly direction?: StudyDirection;
  /** Create the study when the journal has none of this name. Default true. */
  readonly create?: boolean;
}

const openSchema = z.strictObject({
  storage: z.custom<JournalStorage>((s) => typeof s === "object" && s !== null && "readFrom" in s && "append" in s && "locked" in s, { message: "must be a JournalStorage (MemoryJournal, FileJournal, ...)" }),
  name: z.string({ message: "must be a non-empty string" }).min(1, { message: "must be a non-empty string" }),
  direction: z.enum(["minimize", "maximize"], { message: 'must be "minimize" or "maximize"' }).optional(),
  create: z.boolean().optional(),
});

let workers = 0;

/** A journal record of this worker, fields in Optuna's order (`op_code`, `worker_id`, then the rest). */
export function makeRecord(workerId: string, op: OpCode, fields: JsonObject): JournalRecord {
  return { op_code: op, worker_id: workerId, ...fields };
}

export class Study {
  private constructor(
    readonly storage: JournalStorage,
    readonly name: string,
    readonly id: number,
    readonly direction: StudyDirection,
    /** This handle's `worker_id` in the journal (Optuna: a uuid per storage object plus the thread). */
    readonly workerId: string,
    private readonly replay: JournalReplay,
  ) {}

  /** Opens the study `name` in `storage`, creating it unless `create: false`. Concurrent creators end up with one study. */
  static async open(options: OpenStudyOptions): Promise<Study> {
    const o = parseOptions("Study.open", openSchema, options);
    const replay = new JournalReplay(o.storage.onBadRecord);
    const workerId = `${globalThis.crypto.randomUUID()}-${workers++}`;
    const sync = async () => replay.apply(await o.storage.readFrom(replay.logNumberRead));
    await sync();
    if (!replay.studyByName(o.name)) {
      if (o.create === false) throw new TunerError("STUDY_NOT_FOUND", `no study named "${o.name}" in the journal (studies: ${[...replay.studies.values()].map((s) => `"${s.name}"`).join(", ") || "none"})`);
      // under the lock, so two processes opening a new study write one CREATE_STUDY between them
      await o.storage.locked(async (w) => {
        await sync();
        if (!replay.studyByName(o.name)) await w.append([makeRecord(workerId, OP.CREATE_STUDY, { study_name: o.name, directions: [o.direction === "maximize" ? 2 : 1] })]);
      });
      await sync();
    }
    const s = replay.studyByName(o.name)!;
    if (s.directions.length !== 1 || s.directions[0] === "not_set") throw new TunerError("DIRECTION_MISMATCH", `study "${o.name}" has directions [${s.directions.join(", ")}]; the tuner handles one objective`);
    const direction = s.directions[0] as StudyDirection;
    if (o.direction && o.direction !== direction) throw new TunerError("DIRECTION_MISMATCH", `study "${o.name}" exists with direction "${direction}", not "${o.direction}"`);
    return new Study(o.storage, o.name, s.id, direction, workerId, replay);
  }

  /** Reads what was appended since the last sync (by any worker). */
  async sync(): Promise<void> {
    this.replay.apply(await this.storage.readFrom(this.replay.logNumberRead));
  }

  /** Every trial, by number, as of the last `sync()`. */
  get trials(): readonly TrialRecord[] {
    return this.replay.trialsOf(this.id);
  }

  get record(): StudyRecord {
    return this.replay.studies.get(this.id) ?? { id: this.id, name: this.name, directions: [this.direction], userAttrs: {}, systemAttrs: {} };
  }

  trialById(id: number): TrialRecord {
    const t = this.replay.trials[id];
    if (!t || t.studyId !== this.id) throw new RangeError(`no trial with id ${id} in study "${this.name}"`);
    return t;
  }

  /** The best COMPLETE trial (ties: the earliest), or undefined. */
  get bestTrial(): TrialRecord | undefined {
    let best: TrialRecord | undefined;
    for (const t of this.trials) {
      if (t.state !== "COMPLETE" || t.value === undefined || Number.isNaN(t.value)) continue;
      if (!best || (this.direction === "minimize" ? t.value < best.value! : t.value > best.value!)) best = t;
    }
    return best;
  }

  /** The trial this handle claimed last (created it RUNNING, or moved it from WAITING to RUNNING first). */
  ownedTrial(): number | undefined {
    return this.replay.ownedBy(this.workerId);
  }

  /** Whether this handle's record is the one that finished the trial. */
  finishedIt(trialId: number): boolean {
    return this.replay.finisherOf(trialId) === this.workerId;
  }

  /** A record of this worker. */
  makeRecord(op: OpCode, fields: JsonObject): JournalRecord {
    return makeRecord(this.workerId, op, fields);
  }

  stateRecord(trialId: number, state: TrialStateName, values: readonly number[] | null = null): JournalRecord {
    const fields: { [key: string]: JsonValue } = { trial_id: trialId, state: TRIAL_STATE[state], values };
    if (state === "RUNNING") fields["datetime_start"] = localIsoTimestamp();
    else if (state !== "WAITING") fields["datetime_complete"] = localIsoTimestamp();
    return this.makeRecord(OP.SET_TRIAL_STATE_VALUES, fields);
  }

  attrRecord(trialId: number, kind: "user" | "system", key: string, value: JsonValue): JournalRecord {
    return kind === "user" ? this.makeRecord(OP.SET_TRIAL_USER_ATTR, { trial_id: trialId, user_attr: { [key]: value } }) : this.makeRecord(OP.SET_TRIAL_SYSTEM_ATTR, { trial_id: trialId, system_attr: { [key]: value } });
  }

  /**
   * Queues a trial with these parameters (Optuna's `enqueue_trial`): a WAITING trial with
   * `system_attrs.fixed_params`; the next free worker, fitloop or Python, runs it first. Parameters
   * it leaves out are sampled.
   */
  async enqueue(params: { readonly [name: string]: CategoricalChoice }, options: { readonly userAttrs?: JsonObject } = {}): Promise<void> {
    await this.storage.append([
      this.makeRecord(OP.CREATE_TRIAL, {
        study_id: this.id,
        datetime_start: null,
        state: TRIAL_STATE.WAITING,
        value: null,
        values: null,
        distributions: {},
        params: {},
        user_attrs: options.userAttrs ?? {},
        system_attrs: { fixed_params: params },
        intermediate_values: {},
      }),
    ]);
    await this.sync();
  }

  /** Sets a study user attribute (Optuna's `study.set_user_attr`). */
  async setUserAttr(key: string, value: JsonValue): Promise<void> {
    await this.storage.append([this.makeRecord(OP.SET_STUDY_USER_ATTR, { study_id: this.id, user_attr: { [key]: value } })]);
    await this.sync();
  }
}
