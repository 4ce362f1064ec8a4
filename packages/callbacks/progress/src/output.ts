/** What the progress output needs of a stream: `process.stderr`, `process.stdout`, a file stream, ... */
export interface ProgressStream {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
  /** Terminal width (TTY streams). */
  readonly columns?: number;
  readonly destroyed?: boolean;
  readonly writableEnded?: boolean;
  /** A Node stream's error once a write failed (set at once; its 'error' event comes later). */
  readonly errored?: Error | null;
  on?(event: "error", listener: (error: Error) => void): unknown;
}

/**
 * Streams that have our 'error' listener, with who to tell. One listener per stream however many
 * runs use it (no listener pile-up); it stays, so an error that arrives after a run (a write's
 * error is emitted later, on the event loop) cannot crash the process as an unhandled 'error' event.
 */
const listeners = new WeakMap<object, Set<(error: unknown) => void>>();

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Writes to a stream without ever throwing: a closed or broken stream (a write that throws, an
 * 'error' event, a destroyed or ended stream) is reported once and the output stops; the caller,
 * the training loop, goes on. Writes are not awaited: the stream buffers them.
 */
export class SafeOutput {
  private failed = false;
  private readonly onError = (error: unknown) => this.fail(describe(error));

  constructor(
    readonly stream: ProgressStream,
    /** Called once, with why, when the stream fails. */
    private readonly report: (why: string) => void,
  ) {}

  get broken(): boolean {
    return this.failed;
  }

  /** Starts listening for the stream's errors (call at the start of a run). */
  attach(): void {
    let set = listeners.get(this.stream);
    if (!set) {
      const created = new Set<(error: unknown) => void>();
      set = created;
      listeners.set(this.stream, created);
      try {
        // ours is one permanent listener, not a leak: make room for it rather than trip Node's leak
        // warning on a stream others already listen on (tfjs-wasm's threads add 9 to stderr)
        const emitter = this.stream as Partial<Pick<NodeJS.EventEmitter, "getMaxListeners" | "setMaxListeners" | "listenerCount">>;
        const max = emitter.getMaxListeners?.() ?? 0;
        if (max > 0 && (emitter.listenerCount?.("error") ?? 0) >= max) emitter.setMaxListeners?.(max + 1);
        this.stream.on?.("error", (e) => created.forEach((l) => l(e)));
      } catch {
        // a stream-like object without a working `on`: its write errors are still caught below
      }
    }
    set.add(this.onError);
  }

  /** Stops listening (the stream keeps the shared listener, which then ignores its errors). */
  detach(): void {
    listeners.get(this.stream)?.delete(this.onError);
  }

  write(text: string): void {
    if (this.failed) return;
    const s = this.stream;
    if (s.destroyed === true || s.writableEnded === true) return this.fail("the stream is closed");
    // a training loop that never yields to the event loop (the cpu backend's reads resolve at once)
    // would see the 'error' event only after the run: the stream says so at once
    if (s.errored) return this.fail(describe(s.errored));
    try {
      s.write(text);
    } catch (e) {
      this.fail(describe(e));
    }
  }

  private fail(why: string): void {
    if (this.failed) return;
    this.failed = true;
    try {
      this.report(why);
    } catch {
      // a logger that throws: nothing more to do
    }
  }
}
