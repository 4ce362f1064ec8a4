import { FitloopError } from "@fitloop/core";

/** A checkpoint file that is not in the format (a bad header, dtype, shape, offset, tag or name). */
export class CheckpointFormatError extends FitloopError {
  constructor(message: string) {
    super("CHECKPOINT_FORMAT", message);
  }
}

/** A checkpoint whose files do not match its manifest (size or sha256), or that lacks a file. */
export class CheckpointIntegrityError extends FitloopError {
  constructor(
    message: string,
    readonly checkpoint: string,
  ) {
    super("CHECKPOINT_CORRUPT", message);
  }
}

/** No loadable checkpoint where one was asked for. */
export class NoCheckpointError extends FitloopError {
  constructor(message: string) {
    super("NO_CHECKPOINT", message);
  }
}

/** A store already has an entry under that checkpoint name. */
export class CheckpointExistsError extends FitloopError {
  constructor(name: string, where: string) {
    super("CHECKPOINT_EXISTS", `checkpoint "${name}" exists in ${where}`);
  }
}
