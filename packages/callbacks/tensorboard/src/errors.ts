import { FitloopError } from "@fitloop/core";

/**
 * An event that cannot be encoded (`INVALID_EVENT`) or an event file that does not decode
 * (`CORRUPT_EVENT_FILE`: a CRC mismatch, a truncated record, a malformed protobuf). For a corrupt
 * file, `record` is the 0-based record index and `offset` the byte offset where that record starts.
 */
export class EventFileError extends FitloopError {
  constructor(
    code: "INVALID_EVENT" | "CORRUPT_EVENT_FILE",
    message: string,
    readonly record?: number,
    readonly offset?: number,
  ) {
    super(code, message);
  }
}
