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

/** The data does not fit the model or is unusable (empty, NaN, labels out of range, ...). */
export class DataError extends FitloopError {
  /** Index of the offending sample, when one sample is to blame. */
  readonly sampleIndex: number | undefined;
  constructor(code: string, message: string, sampleIndex?: number) {
    super(code, message);
    this.sampleIndex = sampleIndex;
  }
}

/** Model output and labels do not have compatible shapes for the chosen loss. */
export class ShapeMismatchError extends FitloopError {
  constructor(message: string) {
    super("SHAPE_MISMATCH", message);
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

/** Restoring state that does not match the current run (different variables, shapes, keys). */
export class StateError extends FitloopError {
  constructor(message: string) {
    super("STATE_MISMATCH", message);
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
