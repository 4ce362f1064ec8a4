/**
 * Typed errors. Every error fitloop throws on bad input is a `FitloopError` with a stable `code`,
 * so callers can branch on `err.code` without parsing messages.
 */
export class FitloopError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** One problem with one option: the path of the option, what was wrong, and what is accepted. */
export interface OptionIssue {
  readonly path: string;
  readonly message: string;
}

/** Invalid plugin or trainer options; lists every problem at once. */
export class OptionsError extends FitloopError {
  readonly owner: string;
  readonly issues: readonly OptionIssue[];
  constructor(owner: string, issues: readonly OptionIssue[]) {
    const lines = issues.map((i) => `  - ${i.path || "(options)"}: ${i.message}`);
    super("INVALID_OPTIONS", `Invalid options for ${owner}:\n${lines.join("\n")}`);
    this.owner = owner;
    this.issues = issues;
  }
}

/** Where in a run a bad batch was found (streaming sources have no global sample index). */
export interface BatchLocation {
  readonly role: "train" | "validation";
  /** 0-based epoch. */
  readonly epoch: number;
  /** 0-based batch index within the epoch. */
  readonly index: number;
}

export interface DataErrorDetails {
  /** Index of the offending sample: in the data set when known, else within `batch`. */
  readonly sampleIndex?: number;
  readonly batch?: BatchLocation;
  /** The underlying error (a file system error, a parser's error). */
  readonly cause?: unknown;
}

/** The data does not fit the model or is unusable (empty, NaN, labels out of range, ...). */
export class DataError extends FitloopError {
  /** Index of the offending sample, when one sample is to blame (in `batch`, when that is set). */
  readonly sampleIndex: number | undefined;
  /** The batch that was refused during training (per-batch checks), when known. */
  readonly batch: BatchLocation | undefined;
  /** `details` may be the sample index alone. */
  constructor(code: string, message: string, details?: number | DataErrorDetails) {
    const d: DataErrorDetails = typeof details === "number" ? { sampleIndex: details } : (details ?? {});
    super(code, message, d.cause !== undefined ? { cause: d.cause } : undefined);
    this.sampleIndex = d.sampleIndex;
    this.batch = d.batch;
  }
}

/** Model output and labels do not have compatible shapes for the chosen loss. */
export class ShapeMismatchError extends FitloopError {
  /** The batch that was refused during training (per-batch checks), when known. */
  readonly batch: BatchLocation | undefined;
  constructor(message: string, batch?: BatchLocation) {
    super("SHAPE_MISMATCH", message);
    this.batch = batch;
  }
}

/** Plugin ordering cannot be satisfied (a cycle) or names a plugin that is not registered. */
export class PluginOrderError extends FitloopError {
  constructor(code: "ORDER_CYCLE" | "MISSING_PLUGIN" | "DUPLICATE_PLUGIN_NAME", message: string) {
    super(code, message);
  }
}

/** Two stateful plugins in one run claim the same `stateKey`. */
export class DuplicateStateKeyError extends FitloopError {
  constructor(readonly stateKey: string, names: readonly string[]) {
    super("DUPLICATE_STATE_KEY", `stateKey "${stateKey}" is used by more than one plugin: ${names.join(", ")}. Give each a unique stateKey.`);
  }
}

/** A requested backend is not installed or failed to initialise. */
export class BackendError extends FitloopError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("BACKEND_UNAVAILABLE", message, options);
  }
}

/** An optimizer does not have the requested hyperparameter. */
export class HyperparameterError extends FitloopError {
  constructor(message: string) {
    super("UNSUPPORTED_HYPERPARAMETER", message);
  }
}

/**
 * Restoring state that does not match the current run (different variables, shapes, keys), or a
 * state that cannot be stored. `issues` lists every problem by path (a key such as
 * `train.cursor.epoch`, `weights[2]`, `slots.accumulatedFirstMoment[0]`, `$.best.weights[2]`);
 * the message lists them all. Thrown with a message alone, it has one issue with an empty path.
 */
export class StateError extends FitloopError {
  readonly issues: readonly { readonly path: string; readonly message: string }[];
  constructor(message: string, issues?: readonly { readonly path: string; readonly message: string }[]) {
    const list = issues ?? [];
    const line = (i: { readonly path: string; readonly message: string }) => (i.path ? `${i.path}: ${i.message}` : i.message);
    // one issue stays on one line (messages are grepped in logs); several go one per line
    super("STATE_MISMATCH", list.length === 0 ? message : list.length === 1 ? `${message}: ${line(list[0]!)}` : `${message}:\n${list.map((i) => `  - ${line(i)}`).join("\n")}`);
    this.issues = list.length ? list : [{ path: "", message }];
  }
}

/** A plugin's hook threw an error that is not fitloop's own; `cause` is the original. */
export class PluginError extends FitloopError {
  constructor(
    readonly plugin: string,
    readonly event: string,
    cause: unknown,
  ) {
    super("PLUGIN_FAILED", `plugin "${plugin}" threw in ${event}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
