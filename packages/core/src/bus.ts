import { EventEmitter } from "eventemitter3";
import type { EventName } from "./events.js";
import type { Logger } from "./logger.js";
import type { EpochRecord, Logs, TrainState } from "./state.js";

/** The run's position when the event fired: a frozen copy, so observers cannot change the run. */
export interface ObserverState {
  readonly epoch: number;
  readonly epochs: number;
  readonly step: number;
  readonly globalBatch: number;
  readonly batchIndex: number;
  readonly batchesPerEpoch: number | undefined;
  readonly stopRequested: boolean;
  /** The last completed epoch's record, if any. */
  readonly lastEpoch: EpochRecord | undefined;
}

/** What an observer receives: frozen copies of the state and logs at the time of the event. */
export interface ObserverEvent {
  readonly event: EventName;
  readonly state: ObserverState;
  readonly logs: Readonly<Logs>;
}

export type Observer = (e: ObserverEvent) => void | Promise<void>;

export interface ObserverError {
  readonly event: EventName;
  readonly error: unknown;
}

/**
 * The observer bus (eventemitter3): progress bars, loggers, dashboards. What holds:
 * - observers run after the hooks of their event (on a microtask), never inside the hook sequence,
 *   and see frozen copies: they cannot change the run;
 * - the loop never awaits an observer's promise, and one that throws or rejects is reported, not fatal;
 * - they share the JavaScript thread: a synchronous observer's time adds to the run's. Keep them
 *   light, or make the slow part asynchronous (its awaited part does not hold the loop);
 * - `flush()` waits for the deliveries and async observer work still pending (`fit()` does not); an
 *   observer may await it to let the others finish first (it does not wait for itself).
 */
export class ObserverBus {
  private readonly emitter = new EventEmitter();
  private readonly errorListeners = new Set<(e: ObserverError) => void>();
  /** Async observer work not yet settled, and deliveries not yet made. */
  private readonly pending = new Set<Promise<unknown>>();
  /** Set while an observer's synchronous part runs: a flush() started there must not wait for that observer. */
  private calling: { onPromise: ((p: Promise<unknown>) => void)[] } | undefined;

  constructor(private readonly logger: Logger) {}

  /** Subscribes to one event, or `"*"` for all; returns the unsubscribe function. */
  on(event: EventName | "*", observer: Observer): () => void {
    const guarded = (e: ObserverEvent) => {
      const frame = { onPromise: [] as ((p: Promise<unknown>) => void)[] };
      const outer = this.calling;
      this.calling = frame;
      try {
        const r = observer(e);
        if (r && typeof (r as Promise<void>).then === "function") {
          const settled = Promise.resolve(r).catch((err: unknown) => this.report(e.event, err));
          this.pending.add(settled);
          void settled.finally(() => this.pending.delete(settled));
          for (const tell of frame.onPromise) tell(settled);
        }
      } catch (err) {
        this.report(e.event, err);
      } finally {
        this.calling = outer;
      }
    };
    this.emitter.on(event, guarded);
    return () => this.emitter.off(event, guarded);
  }

  /** Called with every error an observer throws. */
  onObserverError(listener: (e: ObserverError) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  hasObservers(event: EventName): boolean {
    return this.emitter.listenerCount(event) + this.emitter.listenerCount("*") > 0;
  }

  /** Snapshots now, delivers on a microtask: observers run after the hook sequence, never inside it. */
  emit(event: EventName, state: Readonly<TrainState>): void {
    if (!this.hasObservers(event)) return;
    const last = state.history[state.history.length - 1];
    const snapshot: ObserverState = Object.freeze({
      epoch: state.epoch,
      epochs: state.epochs,
      step: state.step,
      globalBatch: state.globalBatch,
      batchIndex: state.batchIndex,
      batchesPerEpoch: state.batchesPerEpoch,
      stopRequested: state.stopRequests.length > 0,
      lastEpoch: last ? Object.freeze({ epoch: last.epoch, logs: Object.freeze({ ...last.logs }) }) : undefined,
    });
    const payload: ObserverEvent = Object.freeze({ event, state: snapshot, logs: Object.freeze({ ...state.logs }) });
    const delivered = Promise.resolve().then(() => {
      this.emitter.emit(event, payload);
      this.emitter.emit("*", payload);
    });
    this.pending.add(delivered);
    void delivered.finally(() => this.pending.delete(delivered));
  }

  /**
   * Resolves when every event emitted so far was delivered and every async observer's promise has
   * settled (also the ones started meanwhile): call it after `fit()` before reading what observers
   * wrote. With `timeoutMs`, resolves `false` if work is still pending then (`true` otherwise).
   */
  async flush(timeoutMs?: number): Promise<boolean> {
    // an observer awaiting flush() waits for the others, not for itself (that would never end)
    let self: Promise<unknown> | undefined;
    this.calling?.onPromise.push((p) => (self = p));
    const others = () => [...this.pending].filter((p) => p !== self);
    const drain = async (): Promise<true> => {
      await Promise.resolve(); // lets an observer that called flush() register its own promise first
      for (let rest = others(); rest.length > 0; rest = others()) await Promise.allSettled(rest);
      return true;
    };
    if (timeoutMs === undefined) return drain();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([drain(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private report(event: EventName, error: unknown): void {
    this.logger.warn(`fitloop: an observer of "${event}" threw; training continues`, error);
    for (const l of this.errorListeners) {
      try {
        l({ event, error });
      } catch {
        // an error listener that throws is ignored, like any observer
      }
    }
  }
}
