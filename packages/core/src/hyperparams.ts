import * as tf from "@tensorflow/tfjs-core";
import { HyperparameterError } from "./errors.js";

/**
 * One adapter for the hyperparameters of every tfjs optimizer. tfjs is inconsistent:
 * - SGD and Momentum cache `-lr` (and Momentum caches `m`) in scalars: writing the field does nothing,
 *   and `MomentumOptimizer.setMomentum` updates only the field, not the cached scalar it uses.
 * - Adam, Adamax, RMSProp, Adagrad, Adadelta read their fields at every step.
 * "Momentum" means `momentum` for Momentum and RMSProp, `beta1` for Adam and Adamax
 * (what 1cycle cycles). Writes take effect on the next `applyGradients`.
 */
export interface Hyperparameters {
  learningRate: number;
  /** Momentum or beta1; `undefined` when the optimizer has none (setting it throws). */
  momentum: number | undefined;
  readonly hasMomentum: boolean;
  /** Name of the field `momentum` maps to (`momentum`, `beta1`) or undefined. */
  readonly momentumName: "momentum" | "beta1" | undefined;
}

// tfjs declares these fields protected/private; the adapter is the one place that touches them.
interface OptimizerFields {
  learningRate?: number;
  momentum?: number;
  beta1?: number;
  c?: tf.Scalar;
  m?: tf.Scalar;
  setLearningRate?: (lr: number) => void;
}

type Kind = "sgd" | "momentum" | "adam" | "adamax" | "rmsprop" | "adagrad" | "adadelta" | "unknown";

// tfjs's `Optimizer` defines `Symbol.hasInstance` as a duck-type check (has minimize, computeGradients
// and applyGradients), and every subclass inherits it: `adam instanceof tf.MomentumOptimizer` is true.
// So walk the real prototype chain (the ordinary `instanceof`), subclasses before their base
// (Momentum extends SGD); if no class matches (another copy of tfjs-core), fall back on the
// serialization class name.
const KINDS: ReadonlyArray<readonly [Exclude<Kind, "unknown">, abstract new (...args: never[]) => tf.Optimizer, string]> = [
  ["momentum", tf.MomentumOptimizer, "Momentum"],
  ["sgd", tf.SGDOptimizer, "SGD"],
  ["adam", tf.AdamOptimizer, "Adam"],
  ["adamax", tf.AdamaxOptimizer, "Adamax"],
  ["rmsprop", tf.RMSPropOptimizer, "RMSProp"],
  ["adagrad", tf.AdagradOptimizer, "Adagrad"],
  ["adadelta", tf.AdadeltaOptimizer, "Adadelta"],
];
const ordinaryInstanceOf = Function.prototype[Symbol.hasInstance];

export function optimizerKind(optimizer: tf.Optimizer): Kind {
  for (const [kind, cls] of KINDS) if (ordinaryInstanceOf.call(cls, optimizer)) return kind;
  const className = typeof optimizer.getClassName === "function" ? optimizer.getClassName() : undefined;
  for (const [kind, , name] of KINDS) if (className === name) return kind;
  return "unknown";
}

function assertFinite(name: string, value: number, min: number, maxExclusive = Number.POSITIVE_INFINITY): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value >= maxExclusive) {
    const range = maxExclusive === Number.POSITIVE_INFINITY ? `>= ${min}` : `in [${min}, ${maxExclusive})`;
    throw new HyperparameterError(`${name} must be a finite number ${range}, got ${String(value)}`);
  }
}

export function getLearningRate(optimizer: tf.Optimizer): number {
  const lr = (optimizer as unknown as OptimizerFields).learningRate;
  if (typeof lr !== "number") {
    throw new HyperparameterError(`${optimizer.getClassName()} has no learning rate field this adapter knows`);
  }
  return lr;
}

export function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  assertFinite("learningRate", lr, 0);
  const o = optimizer as unknown as OptimizerFields;
  const kind = optimizerKind(optimizer);
  if (kind === "sgd" || kind === "momentum") {
    o.setLearningRate!(lr); // refreshes the cached scalar
  } else if (typeof o.learningRate === "number") {
    o.learningRate = lr;
  } else {
    throw new HyperparameterError(`${optimizer.getClassName()} has no learning rate field this adapter knows`);
  }
}

export function momentumName(optimizer: tf.Optimizer): "momentum" | "beta1" | undefined {
  const kind = optimizerKind(optimizer);
  if (kind === "momentum" || kind === "rmsprop") return "momentum";
  if (kind === "adam" || kind === "adamax") return "beta1";
  return undefined;
}

export function getMomentum(optimizer: tf.Optimizer): number | undefined {
  const name = momentumName(optimizer);
  return name === undefined ? undefined : (optimizer as unknown as OptimizerFields)[name];
}

export function setMomentum(optimizer: tf.Optimizer, value: number): void {
  const name = momentumName(optimizer);
  if (name === undefined) {
    throw new HyperparameterError(`${optimizer.getClassName()} has no momentum or beta1; use momentum, rmsprop, adam or adamax`);
  }
  assertFinite(name, value, 0, name === "beta1" ? 1 : Number.POSITIVE_INFINITY);
  const o = optimizer as unknown as OptimizerFields;
  o[name] = value;
  if (optimizerKind(optimizer) === "momentum") {
    // MomentumOptimizer multiplies by its cached scalar `m`; replace it.
    o.m?.dispose();
    o.m = tf.keep(tf.scalar(value));
  }
}

/** A live view of an optimizer's hyperparameters (the object plugins get as `ctx.hyper`). */
export function hyperparameters(optimizer: tf.Optimizer): Hyperparameters {
  const name = momentumName(optimizer);
  // Adam, Adamax, RMSProp, Adagrad, Adadelta read the field each step: a plain write (schedules set it every step)
  const plainField = !["sgd", "momentum", "unknown"].includes(optimizerKind(optimizer)) && typeof (optimizer as unknown as OptimizerFields).learningRate === "number";
  return {
    get learningRate() {
      return getLearningRate(optimizer);
    },
    set learningRate(v: number) {
      if (plainField) {
        assertFinite("learningRate", v, 0);
        (optimizer as unknown as OptimizerFields).learningRate = v;
      } else {
        setLearningRate(optimizer, v);
      }
    },
    get momentum() {
      return getMomentum(optimizer);
    },
    set momentum(v: number | undefined) {
      if (v === undefined) throw new HyperparameterError("momentum cannot be set to undefined");
      setMomentum(optimizer, v);
    },
    hasMomentum: name !== undefined,
    momentumName: name,
  };
}
