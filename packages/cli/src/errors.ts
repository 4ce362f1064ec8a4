/**
 * What the `fitloop` command can get wrong from its user, as typed errors with stable codes, and
 * the exit code each problem gets: 2 for input that can never work (a flag, the storage spec, the
 * objective module, a study declared differently), 1 for everything that went wrong while running.
 */
import { FitloopError, OptionsError } from "@fitloop/core";
import { TunerError } from "@fitloop/recipes";

export type CliErrorCode =
  /** `--storage` names nothing fitloop can open (an unknown scheme, a directory, a missing directory). */
  | "INVALID_STORAGE"
  /** The objective module cannot be loaded, or lacks an export, or an export has the wrong type. */
  | "INVALID_OBJECTIVE_MODULE"
  /** A flag or option, alone or combined with the others (`--prefix` with a journal file). */
  | "INVALID_USAGE";

export class CliError extends FitloopError {
  declare readonly code: CliErrorCode;
  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Exit code 2: input that no retry fixes. */
export const EXIT_USAGE = 2;
/** Exit code 1: a failure while running (storage down, an objective that threw). */
export const EXIT_FAILURE = 1;

/** The tuner's codes that mean "what you asked for does not fit the study": fixing the input fixes them. */
const INPUT_TUNER_CODES = new Set<string>(["SPACE_MISMATCH", "DIRECTION_MISMATCH", "STUDY_NOT_FOUND", "INVALID_VALUE"]);

export function exitCodeOf(error: unknown): number {
  if (error instanceof CliError || error instanceof OptionsError) return EXIT_USAGE;
  if (error instanceof TunerError && INPUT_TUNER_CODES.has(error.code)) return EXIT_USAGE;
  return EXIT_FAILURE;
}
