/**
 * Replays journal records into studies and trials with the rules of Optuna's
 * `JournalStorageReplayResult` (3.1, unchanged since): ids and numbers by log order, a duplicate
 * study name ignored, records for a missing or finished trial ignored, a second RUNNING for a trial
 * ignored (the first one claims a WAITING trial), a parameter whose distribution does not match the
 * study's earlier trials ignored. Trials are replaced, never changed in place, so a `TrialRecord`
 * handed out is a stable snapshot.
 */
import { TunerError } from "./errors.js";
import type { JsonObject, JsonValue } from "./json.js";
import { OP, TRIAL_STATE_NAMES, isFinished, type JournalRecord, type TrialStateName } from "./journal.js";
import { distributionFromJson, incompatibility, toExternal, type CategoricalChoice, type Distribution } from "./space.js";

export type StudyDirection = "minimize" | "maximize";
const DIRECTIONS = ["not_set", "minimize", "maximize"] as const;

/** A trial as the journal says it is (Optuna's `FrozenTrial`); plain data, serialisable. */
export interface TrialRecord {
  /** Unique across the whole journal (all studies). */
  readonly id: number;
  /** 0, 1, 2, ... within its study. */
  readonly number: number;
  readonly studyId: number;
  readonly state: TrialStateName;
  /** The objective value of a finished trial (a pruned trial's last intermediate value), or undefined. */
  readonly value: number | undefined;
  readonly values: readonly number[] | null;
  readonly params: { readonly [name: string]: CategoricalChoice };
  readonly distributions: { readonly [name: string]: Distribution };
  /** Reported values by step. */
  readonly intermediateValues: { readonly [step: number]: number };
  readonly userAttrs: JsonObject;
  readonly systemAttrs: JsonObject;
  /** Naive local ISO timestamps, as Optuna writes them. */
  readonly datetimeStart: string | null;
  readonly datetimeComplete: string | null;
}

export interface StudyRecord {
  readonly id: number;
  readonly name: string;
  readonly directions: readonly ("not_set" | StudyDirection)[];
  readonly userAttrs: JsonObject;
  readonly systemAttrs: JsonObject;
}

type Rec = JournalRecord;
const bad = (n: number, why: string): never => {
  throw new TunerError("JOURNAL_CORRUPT", `journal record ${n}: ${why}`);
};
const int = (r: Rec, k: string, n: number): number => (typeof r[k] === "number" && Number.isInteger(r[k]) ? (r[k] as number) : bad(n, `${k} is not an integer`));
const str = (r: Rec, k: string, n: number): string => (typeof r[k] === "string" ? (r[k] as string) : bad(n, `${k} is not a string`));
const obj = (v: JsonValue | undefined, k: string, n: number): JsonObject => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as JsonObject) : bad(n, `${k} is not an object`));
const numbers = (v: JsonValue | undefined, k: string, n: number): number[] | null =>
  v === null || v === undefined ? null : Array.isArray(v) && v.every((x) => typeof x === "number") ? [...(v as number[])] : bad(n, `${k} is not a list of numbers`);
const time = (v: JsonValue | undefined, k: string, n: number): string | null => (v === null || v === undefined ? null : typeof v === "string" ? v : bad(n, `${k} is not a timestamp`));
/** `toExternal` of a stored internal value; one the distribution cannot hold (a categorical index out of range) is a bad record. */
const external = (d: Distribution, v: number, n: number): CategoricalChoice => {
  try {
    return toExternal(d, v);
  } catch (e) {
    return bad(n, `a parameter value ${v} does not fit its distribution: ${(e as Error).message}`);
  }
};
const withValue = (t: Omit<TrialRecord, "value">): TrialRecord => ({ ...t, value: t.values && t.values.length === 1 ? t.values[0] : undefined });

export class JournalReplay {
  /** Records applied so far: the next `readFrom` starts here. */
  logNumberRead = 0;
  readonly studies = new Map<number, StudyRecord>();
  /** By trial id (ids are never reused, also after a study is deleted). */
  readonly trials: TrialRecord[] = [];
  private readonly trialIdsOf = new Map<number, number[]>();
  private nextStudyId = 0;
  /** The trial a worker last claimed (created RUNNING, or moved to RUNNING first). */
  private readonly owned = new Map<string, number>();
  /** Which worker's record finished each trial: a compare-and-set by log order. */
  private readonly finishedBy = new Map<number, string>();
  private readonly distCache = new Map<string, Distribution>();

  /** `onBadRecord`: skip a record replaying refuses (reported there) instead of throwing; every check runs before a record changes anything. */
  constructor(private readonly onBadRecord?: (logNumber: number, error: TunerError) => void) {}

  apply(records: readonly JournalRecord[]): void {
    for (const r of records) {
      const n = this.logNumberRead++;
      if (!this.onBadRecord) {
        this.applyOne(r, n);
        continue;
      }
      try {
        this.applyOne(r, n);
      } catch (e) {
        if (!(e instanceof TunerError) || e.code !== "JOURNAL_CORRUPT") throw e;
        this.onBadRecord(n, e);
      }
    }
  }

  private applyOne(r: JournalRecord, n: number): void {
    switch (r.op_code) {
      case OP.CREATE_STUDY: this.createStudy(r, n); break;
      case OP.DELETE_STUDY: this.studies.delete(int(r, "study_id", n)); break;
      case OP.SET_STUDY_USER_ATTR: this.studyAttr(r, n, "user_attr", "userAttrs"); break;
      case OP.SET_STUDY_SYSTEM_ATTR: this.studyAttr(r, n, "system_attr", "systemAttrs"); break;
      case OP.CREATE_TRIAL: this.createTrial(r, n); break;
      case OP.SET_TRIAL_PARAM: this.setParam(r, n); break;
      case OP.SET_TRIAL_STATE_VALUES: this.setState(r, n); break;
      case OP.SET_TRIAL_INTERMEDIATE_VALUE: this.setIntermediate(r, n); break;
      case OP.SET_TRIAL_USER_ATTR: this.trialAttr(r, n, "user_attr", "userAttrs"); break;
      case OP.SET_TRIAL_SYSTEM_ATTR: this.trialAttr(r, n, "system_attr", "systemAttrs"); break;
    }
  }

  studyByName(name: string): StudyRecord | undefined {
    for (const s of this.studies.values()) if (s.name === name) return s;
    return undefined;
  }

  trialsOf(studyId: number): TrialRecord[] {
    return (this.trialIdsOf.get(studyId) ?? []).map((id) => this.trials[id]!);
  }

  ownedBy(workerId: string): number | undefined {
    return this.owned.get(workerId);
  }

  finisherOf(trialId: number): string | undefined {
    return this.finishedBy.get(trialId);
  }

  private dist(json: JsonValue | undefined, n: number): Distribution {
    if (typeof json !== "string") return bad(n, "a distribution is not a JSON string");
    let d = this.distCache.get(json);
    if (!d) {
      try {
        d = distributionFromJson(json);
      } catch (e) {
        return bad(n, (e as Error).message);
      }
      this.distCache.set(json, d);
    }
    return d;
  }

  private createStudy(r: Rec, n: number): void {
    const name = str(r, "study_name", n);
    const dirs = r["directions"];
    if (!Array.isArray(dirs)) return bad(n, "directions is not a list");
    const directions = (dirs as JsonValue[]).map((d) => (typeof d === "number" && DIRECTIONS[d] ? DIRECTIONS[d] : bad(n, `direction ${JSON.stringify(d)}`)));
    if (this.studyByName(name)) return; // the first CREATE_STUDY of a name wins
    const id = this.nextStudyId++;
    this.studies.set(id, { id, name, directions, userAttrs: {}, systemAttrs: {} });
    this.trialIdsOf.set(id, []);
  }

  private studyAttr(r: Rec, n: number, key: "user_attr" | "system_attr", field: "userAttrs" | "systemAttrs"): void {
    const s = this.studies.get(int(r, "study_id", n));
    if (s) this.studies.set(s.id, { ...s, [field]: { ...s[field], ...obj(r[key], key, n) } });
  }

  private createTrial(r: Rec, n: number): void {
    const studyId = int(r, "study_id", n);
    if (!this.studies.has(studyId)) return;
    if (!this.onBadRecord) return this.createTrialChecked(r, n, studyId);
    try {
      this.createTrialChecked(r, n, studyId);
    } catch (e) {
      // the trial exists for every other reader: keep its id and number (a FAIL with no parameters),
      // or every later record would point at the wrong trial
      const ids = this.trialIdsOf.get(studyId)!;
      const id = this.trials.length;
      this.trials.push(withValue({ id, number: ids.length, studyId, state: "FAIL", values: null, params: {}, distributions: {}, intermediateValues: {}, userAttrs: {}, systemAttrs: { "fitloop:unreadable": (e as Error).message }, datetimeStart: null, datetimeComplete: null }));
      ids.push(id);
      this.finishedBy.set(id, r.worker_id);
      throw e;
    }
  }

  private createTrialChecked(r: Rec, n: number, studyId: number): void {
    const ids = this.trialIdsOf.get(studyId)!;
    const id = this.trials.length;
    const distributions: Record<string, Distribution> = {};
    for (const [k, v] of Object.entries(obj(r["distributions"] ?? {}, "distributions", n))) distributions[k] = this.dist(v, n);
    const params: Record<string, CategoricalChoice> = {};
    for (const [k, v] of Object.entries(obj(r["params"] ?? {}, "params", n))) {
      const d = distributions[k];
      if (!d || typeof v !== "number") return bad(n, `param ${k} has no distribution or is not a number`);
      params[k] = external(d, v, n);
    }
    const state = r["state"] === undefined ? "RUNNING" : TRIAL_STATE_NAMES[int(r, "state", n)] ?? bad(n, `state ${String(r["state"])}`);
    const value = r["value"];
    const values = numbers(r["values"], "values", n) ?? (typeof value === "number" ? [value] : null);
    const intermediate: Record<number, number> = {};
    for (const [k, v] of Object.entries(obj(r["intermediate_values"] ?? {}, "intermediate_values", n))) intermediate[Number(k)] = typeof v === "number" ? v : bad(n, "an intermediate value is not a number");
    this.trials.push(
      withValue({
        id,
        number: ids.length,
        studyId,
        state,
        values,
        params,
        distributions,
        intermediateValues: intermediate,
        userAttrs: obj(r["user_attrs"] ?? {}, "user_attrs", n),
        systemAttrs: obj(r["system_attrs"] ?? {}, "system_attrs", n),
        datetimeStart: time(r["datetime_start"], "datetime_start", n),
        datetimeComplete: time(r["datetime_complete"], "datetime_complete", n),
      }),
    );
    ids.push(id);
    if (state === "RUNNING") this.owned.set(r.worker_id, id);
    if (isFinished(state)) this.finishedBy.set(id, r.worker_id);
  }

  /** The trial a record may change: it exists and is not finished (Optuna's `_trial_exists_and_updatable`). */
  private updatable(r: Rec, n: number): TrialRecord | undefined {
    const t = this.trials[int(r, "trial_id", n)];
    return t && !isFinished(t.state) ? t : undefined;
  }

  private setParam(r: Rec, n: number): void {
    const t = this.updatable(r, n);
    if (!t) return;
    const name = str(r, "param_name", n);
    const d = this.dist(r["distribution"], n);
    const internal = r["param_value_internal"];
    if (typeof internal !== "number") return bad(n, "param_value_internal is not a number");
    const earlier = this.trialsOf(t.studyId).find((p) => name in p.distributions);
    if (earlier && incompatibility(earlier.distributions[name]!, d) !== undefined) return;
    this.replace({ ...t, params: { ...t.params, [name]: external(d, internal, n) }, distributions: { ...t.distributions, [name]: d } });
  }

  private setState(r: Rec, n: number): void {
    const t = this.updatable(r, n);
    if (!t) return;
    const state = TRIAL_STATE_NAMES[int(r, "state", n)] ?? bad(n, `state ${String(r["state"])}`);
    if (state === "RUNNING" && t.state === "RUNNING") return; // the first RUNNING claims the trial
    const values = numbers(r["values"], "values", n);
    const next = { ...t, state, values: values ?? t.values };
    if (state === "RUNNING") {
      next.datetimeStart = time(r["datetime_start"], "datetime_start", n);
      this.owned.set(r.worker_id, t.id);
    }
    if (isFinished(state)) {
      next.datetimeComplete = time(r["datetime_complete"], "datetime_complete", n);
      this.finishedBy.set(t.id, r.worker_id);
    }
    this.replace(next);
  }

  private setIntermediate(r: Rec, n: number): void {
    const t = this.updatable(r, n);
    const v = r["intermediate_value"];
    if (!t) return;
    if (typeof v !== "number") return bad(n, "intermediate_value is not a number");
    this.replace({ ...t, intermediateValues: { ...t.intermediateValues, [int(r, "step", n)]: v } });
  }

  private trialAttr(r: Rec, n: number, key: "user_attr" | "system_attr", field: "userAttrs" | "systemAttrs"): void {
    const t = this.updatable(r, n);
    if (t) this.replace({ ...t, [field]: { ...t[field], ...obj(r[key], key, n) } });
  }

  private replace(t: Omit<TrialRecord, "value">): void {
    this.trials[t.id] = withValue(t);
  }
}
