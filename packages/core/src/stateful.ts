import type { Callback } from "./callback.js";
import { DuplicateStateKeyError, OptionsError } from "./errors.js";
import type { StateDict } from "./state.js";

/** A plugin with `stateKey` + `stateDict` + `loadStateDict` (the Lightning contract). */
export type StatefulCallback = Callback & {
  readonly stateKey: string;
  stateDict(): StateDict;
  loadStateDict(state: StateDict): void;
};

export function isStateful(cb: Callback): cb is StatefulCallback {
  return typeof cb.stateKey === "string" && typeof cb.stateDict === "function" && typeof cb.loadStateDict === "function";
}

/** Checks that stateful plugins have unique keys; returns them by key. */
export function collectStateful(callbacks: readonly Callback[], nameOf: (cb: Callback) => string): Map<string, StatefulCallback> {
  const byKey = new Map<string, StatefulCallback[]>();
  for (const cb of callbacks) {
    if (cb.stateKey !== undefined && !isStateful(cb)) {
      throw new OptionsError(nameOf(cb), [{ path: "stateKey", message: `"${String(cb.stateKey)}" is set, but stateDict() and loadStateDict() are not both implemented, so the state would silently not be saved` }]);
    }
    if (!isStateful(cb)) continue;
    const list = byKey.get(cb.stateKey) ?? [];
    list.push(cb);
    byKey.set(cb.stateKey, list);
  }
  const out = new Map<string, StatefulCallback>();
  for (const [key, list] of byKey) {
    if (list.length > 1) throw new DuplicateStateKeyError(key, list.map(nameOf));
    out.set(key, list[0]!);
  }
  return out;
}
