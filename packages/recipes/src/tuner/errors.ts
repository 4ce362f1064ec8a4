import { FitloopError } from "@fitloop/core";

export type TunerErrorCode =
  /** The space declares a parameter differently from the trials already in the study. */
  | "SPACE_MISMATCH"
  /** `direction` differs from the study's, or the study has several objectives. */
  | "DIRECTION_MISMATCH"
  /** `create: false` and no study of that name. */
  | "STUDY_NOT_FOUND"
  /** A journal line that is not a record, or a torn line that is not the last one. */
  | "JOURNAL_CORRUPT"
  /** The file lock was taken from us (broken as stale) while we held it. */
  | "LOCK_LOST"
  /** A value a distribution cannot hold (an enqueued parameter, a reported step). */
  | "INVALID_VALUE"
  /** The study's storage cannot be reached when it is opened (a wrong URL, a server that is down). */
  | "STORAGE_UNAVAILABLE";

/** Every problem the tuner reports, with a stable `code`. */
export class TunerError extends FitloopError {
  declare readonly code: TunerErrorCode;
  constructor(code: TunerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Throw it from an objective to end the trial as PRUNED (Optuna's `TrialPruned`). */
export class TrialPruned extends Error {
  constructor(message = "pruned") {
    super(message);
    this.name = "TrialPruned";
  }
}
