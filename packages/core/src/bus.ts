import { EventEmitter } from "eventemitter3";
import type { EventName } from "./events.js";
import type { Logger } from "./logger.js";
import type { Logs, TrainState } from "./state.js";

/** What an observer receives: a snapshot of the logs and a read-only view of the state. */
export interface ObserverEvent {
  readonly event: EventName;
  readonly state: Readonly<TrainState>;
  readonly logs: Readonly<Logs>;
}

export type Observer = (e: ObserverEvent) => void | Promise<void>;

export interface ObserverError {
  readonly event: EventName;
  readonly error: unknown;
}

/**
 * The observer bus (eventemitter3): progress bars, loggers, dashboards. Fire-and-forget: the loop
 * never awaits an observer, and an observer that throws (or rejects) is reported, not fatal.
 */
export class ObserverBus {
  private readonly emitter = new EventEmitter();
  private readonly errorListeners = new Set<(e: ObserverError) => void>();

  constructor(private readonly logger: Logger) {}

  /** Subscribes to one event, or `"*"` for all; returns the unsubscribe function. */
  on(event: EventName | "*", observer: Observer): () => void {
    const guarded = (e: ObserverEvent) => {
      try {
        const r = observer(e);
        if (r && typeof (r as Promise<void>).catch === "function") (r as Promise<void>).catch((err) => this.report(e.event, err));
      } catch (err) {
        this.report(e.event, err);
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

  emit(event: EventName, state: Readonly<TrainState>): void {
    if (!this.hasObservers(event)) return;
    const payload: ObserverEvent = { event, state, logs: { ...state.logs } };
    this.emitter.emit(event, payload);
    this.emitter.emit("*", payload);
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
