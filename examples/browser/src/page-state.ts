/**
 * The outcome of the page's run, for people (the status line) and for tests (`window.__fitloop`
 * and `data-*` attributes on <body>): one object, published whole at every change.
 */
import type { EpochRecord, StopRequest } from "@fitloop/core";

export type RunStatus = "running" | "done" | "error";

export interface PageState {
  status: RunStatus;
  /** The backend asked for in `?backend=`. */
  requestedBackend: string;
  /** tfjs's active backend once started (`tf.getBackend()`). */
  backend?: string;
  /** For webgl: the renderer behind it (a GPU, or SwiftShader in headless Chromium). */
  renderer?: string;
  /** The epoch budget given to `fit()`. */
  maxEpochs: number;
  /** Epochs completed so far. */
  epochs: number;
  /** `completed`, `stopped`, `cancelled` or `failed`, from the trainer. */
  outcomeStatus?: string;
  /** The trainer's stop requests: who stopped the run and why (EarlyStopping's reason and details). */
  stopRequests?: readonly StopRequest[];
  /** The trainer's `outcome.reason`. */
  stopReason?: string;
  /** EarlyStopping's own account: the epoch it stopped at, the best epoch and value, the rule that fired. */
  stoppedEpoch?: number;
  bestEpoch?: number;
  bestValue?: number;
  stopKind?: string;
  /** val_loss of the model after the run (the restored best weights). */
  restoredValLoss?: number;
  history: EpochRecord[];
  /** Set when status is `error`: a message that says what failed (an unavailable backend says so). */
  error?: string;
  /** Milliseconds from the start of training to its end. */
  trainMs?: number;
}

declare global {
  interface Window {
    __fitloop?: PageState;
  }
}

/** Publishes the state on `window`, on <body data-*>, and in the status line. */
export function publish(state: PageState): void {
  window.__fitloop = state;
  const body = document.body.dataset;
  body["status"] = state.status;
  body["backend"] = state.backend ?? state.requestedBackend;
  body["epochs"] = String(state.epochs);
  const status = document.getElementById("status");
  if (status) status.textContent = describe(state);
  status?.classList.toggle("error", state.status === "error");
}

function describe(s: PageState): string {
  const backend = `backend ${s.backend ?? s.requestedBackend}${s.renderer ? ` (${s.renderer})` : ""}`;
  if (s.status === "error") return `error on ${backend}: ${s.error ?? "unknown error"}`;
  const last = s.history.at(-1)?.logs;
  const progress = `epoch ${s.epochs} of at most ${s.maxEpochs}${last ? `, loss ${fmt(last["loss"])}, val_loss ${fmt(last["val_loss"])}, val_acc ${fmt(last["val_acc"])}` : ""}`;
  if (s.status === "running") return `training on ${backend}: ${progress}`;
  const restored = s.bestEpoch !== undefined ? `; best weights of epoch ${s.bestEpoch} restored (val_loss ${fmt(s.restoredValLoss)})` : "";
  const seconds = s.trainMs !== undefined ? ` in ${(s.trainMs / 1000).toFixed(1)} s` : "";
  return `${s.outcomeStatus ?? "done"} on ${backend} after ${s.epochs} epochs${seconds}: ${s.stopReason ?? "ran every epoch"}${restored}`;
}

const fmt = (v: number | undefined): string => (v === undefined ? "-" : v.toFixed(4));
