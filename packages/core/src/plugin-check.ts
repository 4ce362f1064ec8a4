import type { Callback } from "./callback.js";
import { OptionsError, type OptionIssue } from "./errors.js";
import { EVENTS, isEventName, type EventName } from "./events.js";
import { nearest } from "./suggest.js";

/** What a plugin may have besides its hooks. */
const FIELDS = new Set(["name", "order", "runsAfter", "runsBefore", "stateKey", "stateDict", "loadStateDict", "updatesPerEpoch", "dispose", "constructor"]);

/** Hook names of Keras, tf.keras / tfjs (`onEpochEnd`) and Lightning, and the fitloop event meant. */
const FOREIGN: Readonly<Record<string, EventName | "stateDict" | "loadStateDict">> = {
  on_train_begin: "beforeFit",
  on_train_end: "afterFit",
  on_epoch_begin: "beforeEpoch",
  on_epoch_end: "afterEpoch",
  on_batch_begin: "beforeBatch",
  on_batch_end: "afterBatch",
  on_train_batch_begin: "beforeBatch",
  on_train_batch_end: "afterBatch",
  on_test_begin: "beforeValidate",
  on_test_end: "afterValidate",
  on_test_batch_begin: "beforeValBatch",
  on_test_batch_end: "afterValBatch",
  on_fit_start: "beforeFit",
  on_fit_end: "afterFit",
  on_train_start: "beforeFit",
  on_train_epoch_start: "beforeEpoch",
  on_train_epoch_end: "afterEpoch",
  on_validation_start: "beforeValidate",
  on_validation_end: "afterValidate",
  on_validation_epoch_end: "afterValidate",
  on_validation_batch_start: "beforeValBatch",
  on_validation_batch_end: "afterValBatch",
  on_before_backward: "afterLoss",
  on_after_backward: "afterGradients",
  on_before_optimizer_step: "beforeStep",
  on_save_checkpoint: "epochCheckpoint",
  on_exception: "afterFit",
  setup: "beforeFit",
  teardown: "afterFit",
  state_dict: "stateDict",
  load_state_dict: "loadStateDict",
};

const RESERVED_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** Every property name of a plugin: own and inherited (its class's methods), up to Object.prototype. */
function propertyNames(cb: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = cb; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) for (const k of Object.getOwnPropertyNames(o)) names.add(k);
  return [...names];
}

/**
 * Refuses what would otherwise be ignored: hooks under Keras/Lightning names or misspelled event
 * names (with the fitloop event meant), hooks that are not functions, `runsAfter`/`runsBefore`
 * that are not arrays of names, and reserved `stateKey`s.
 */
export function checkPlugin(cb: Callback, name: string): void {
  const issues: OptionIssue[] = [];
  const record = cb as unknown as Record<string, unknown>;
  for (const key of propertyNames(cb)) {
    if (isEventName(key)) {
      if (record[key] !== undefined && typeof record[key] !== "function") issues.push({ path: key, message: `must be a function (ctx) => ..., got ${typeof record[key]}` });
      continue;
    }
    if (FIELDS.has(key)) continue;
    const snake = key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
    const foreign = FOREIGN[key] ?? FOREIGN[snake];
    // read lazily: a plugin's getters (a normaliser's `mean` before it is fitted) may throw
    const isFunction = () => typeof record[key] === "function";
    // `setup` / `teardown` are also plain helper names: one beside the fitloop hook it would stand for is a helper
    const helper = () => (key === "setup" || key === "teardown") && typeof record[foreign as string] === "function";
    if (foreign && isFunction() && !helper()) {
      issues.push({ path: key, message: `is a ${key.includes("_") ? "Keras/Lightning" : "Keras/tfjs"} hook name, which fitloop never calls; the fitloop ${foreign === "stateDict" || foreign === "loadStateDict" ? "method" : "event"} is "${foreign}"` });
    } else if ((/^(before|after)[A-Z]/.test(key) || /^on[A-Z_]/.test(key)) && isFunction()) {
      // a hook under a name close to an event, or an on* name about the loop: one that fitloop never
      // calls. Helper methods and callbacks a plugin takes (`afterWarmup()`, `onImprove`) are left alone,
      // and so are fields that are not functions (`afterEpochs: 5` is an option, not a hook).
      const guess = nearest(key, EVENTS);
      if (guess || (key.startsWith("on") && /(^|_)(epoch|batch|train|training|fit|step|valid|validation|val|test|predict|begin|end|start)(_|$)/.test(snake))) {
        issues.push({ path: key, message: `is not a fitloop event${guess ? `; did you mean "${guess}"?` : ""} (events: ${EVENTS.join(", ")})` });
      }
    } else if (/^(before|after)/i.test(key) && typeof record[key] === "function") {
      // a slip of case or an underscore (`beforebatch`, `AfterEpoch`, `after_epoch`): a hook never called
      const guess = nearest(key.replace(/_/g, ""), EVENTS);
      if (guess) issues.push({ path: key, message: `is not a fitloop event (names are case-sensitive); did you mean "${guess}"? (events: ${EVENTS.join(", ")})` });
    }
  }
  for (const key of ["runsAfter", "runsBefore"] as const) {
    const v = record[key];
    if (v !== undefined && (!Array.isArray(v) || !v.every((x) => typeof x === "string"))) issues.push({ path: key, message: `must be an array of plugin names, got ${JSON.stringify(v)}` });
  }
  if (cb.stateKey !== undefined && (typeof cb.stateKey !== "string" || cb.stateKey.length === 0 || RESERVED_KEYS.has(cb.stateKey))) {
    issues.push({ path: "stateKey", message: `must be a non-empty string other than __proto__, constructor, prototype; got ${JSON.stringify(cb.stateKey)}` });
  }
  if (issues.length) throw new OptionsError(`plugin "${name}"`, issues);
}
