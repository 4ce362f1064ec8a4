import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel, LayerVariable } from "@tensorflow/tfjs-layers";
import { comparableName, FitloopError, lerpTensors, StateError } from "@fitloop/core";

/** One averaged weight as the plugin state stores it. */
export interface SavedAverageWeight {
  /** The model weight's name (compared without tfjs's counters when loaded). */
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

function checkPair(averages: readonly tf.Tensor[], weights: readonly tf.Tensor[], fn: string): void {
  // every update checks: compare without building strings, describe only on failure
  if (averages.length === weights.length && averages.every((a, i) => sameShape(a.shape, weights[i]!.shape))) return;
  const bad = averages.length !== weights.length ? `${averages.length} averages for ${weights.length} weights` : averages.map((a, i) => (a.shape.join(",") === weights[i]!.shape.join(",") ? "" : `tensor ${i} is [${a.shape.join(", ")}] in the averages and [${weights[i]!.shape.join(", ")}] in the weights`)).find(Boolean);
  if (bad) throw new FitloopError("AVERAGE_MISMATCH", `${fn}: the averages do not match the weights: ${bad}`);
}

/**
 * One EMA update: `average + (weight - average) * (1 - decay)` for each pair (the lerp form timm's
 * `ModelEmaV3` and PyTorch's `lerp_` use), as core's `lerpTensors`: on wasm one fused dispatch and
 * one pass over every weight. New tensors, yours to dispose; no device read.
 */
export function emaUpdate(averages: readonly tf.Tensor[], weights: readonly tf.Tensor[], decay: number): tf.Tensor[] {
  return emaStep(averages, weights, decay, false);
}

/** `emaUpdate`; with `donate`, the averages are given up (see core's `DonateOption`): the plugins' own update, which replaces them right after. */
export function emaStep(averages: readonly tf.Tensor[], weights: readonly tf.Tensor[], decay: number, donate: boolean): tf.Tensor[] {
  checkPair(averages, weights, "emaUpdate");
  if (!(decay >= 0 && decay <= 1)) throw new FitloopError("AVERAGE_MISMATCH", `emaUpdate: decay must be in [0, 1], got ${decay}`);
  return lerpTensors(averages, weights, 1 - decay, { donate });
}

/**
 * One SWA update, the running arithmetic mean of PyTorch's `AveragedModel`:
 * `average + (weight - average) / (n + 1)` with `n` models already averaged (n = 0 copies the
 * weights), as core's `lerpTensors` with `divide` (one fused pass on wasm; a true division, so
 * PyTorch 1.x's bits). New tensors, yours to dispose; no device read.
 */
export function swaUpdate(averages: readonly tf.Tensor[], weights: readonly tf.Tensor[], n: number): tf.Tensor[] {
  return swaStep(averages, weights, n, false);
}

/** `swaUpdate`; with `donate`, the averages are given up (see `emaStep`). */
export function swaStep(averages: readonly tf.Tensor[], weights: readonly tf.Tensor[], n: number, donate: boolean): tf.Tensor[] {
  checkPair(averages, weights, "swaUpdate");
  if (!Number.isSafeInteger(n) || n < 0) throw new FitloopError("AVERAGE_MISMATCH", `swaUpdate: n (models already averaged) must be an integer >= 0, got ${n}`);
  // a copy, not a lerp with t = 1: a + (w - a) is w only up to rounding
  if (n === 0) return weights.map((w) => tf.clone(w));
  return lerpTensors(averages, weights, n + 1, { divide: true, donate });
}

/**
 * The averaged copies of a model's weights on the device (plugin-owned variables), and the swap of
 * them into the model and back. Between runs the average lives on the host (`host`), so no tensor
 * outlives a fit.
 */
export class WeightAverage {
  /** The model weights being averaged, in `model.weights` order. */
  private targets: LayerVariable[] = [];
  private vars: tf.Variable[] | undefined;
  /** Every model weight as it was before `swapIn` (clones share the data: no copy). */
  private raw: tf.Tensor[] | undefined;
  /** The average outside a run (after `release`), or loaded from a state and not yet uploaded. */
  host: SavedAverageWeight[] | null = null;

  /** Which of `model`'s weights to average: the trainable ones, plus the others (BatchNorm statistics) with `buffers`; float32 only. */
  select(model: LayersModel, buffers: boolean): void {
    const trainable = new Set(model.trainableWeights);
    this.targets = model.weights.filter((w) => w.dtype === "float32" && (buffers || trainable.has(w)));
  }

  get names(): string[] {
    return this.targets.map((w) => w.name);
  }

  get onDevice(): boolean {
    return this.vars !== undefined;
  }

  get swapped(): boolean {
    return this.raw !== undefined;
  }

  /**
   * A `StateError` unless `saved` fits the selected weights one to one: count, names without
   * tfjs's counters, shapes, sizes, finite values. Every problem is listed.
   */
  check(saved: readonly SavedAverageWeight[], owner: string): void {
    const summary = `${owner}: the saved average does not match the model`;
    if (saved.length !== this.targets.length) {
      throw new StateError(summary, [{ path: "weights", message: `${saved.length} averaged weights saved, this plugin averages ${this.targets.length} of the model's (${this.targets.map((w) => w.name).join(", ")}); was it saved with another "buffers" option or another model?` }]);
    }
    const issues: { path: string; message: string }[] = [];
    this.targets.forEach((w, i) => {
      const s = saved[i]!;
      if (comparableName(s.name) !== comparableName(w.name)) issues.push({ path: `weights[${i}]`, message: `is "${s.name}", the model's weight ${i} is "${w.name}" (names compared without tfjs's counters): another order, or another model's` });
      if (s.shape.join(",") !== w.shape.join(",")) issues.push({ path: `weights[${i}]`, message: `${s.name} is [${s.shape.join(", ")}], the model's ${w.name} is [${w.shape.join(", ")}]` });
      const bad = s.values.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) issues.push({ path: `weights[${i}].values`, message: `${s.name} holds ${s.values[bad]} at index ${bad}: an average must be finite` });
    });
    if (issues.length) throw new StateError(summary, issues);
  }

  /** Puts `host` on the device (after `check`). */
  upload(): void {
    this.disposeVars();
    if (!this.host) return;
    this.vars = this.host.map((s) => {
      const t = tf.tensor(s.values, [...s.shape], "float32");
      const v = tf.variable(t, false);
      t.dispose(); // the variable keeps the data
      return v;
    });
  }

  /** Starts the average at the current weights (the first update of every rule is a copy). */
  start(): void {
    this.disposeVars();
    // a variable made from the model's tensor shares its data: the optimizer assigns new tensors, never writes in place
    this.vars = this.targets.map((w) => tf.variable(w.read(), false));
  }

  /**
   * Replaces every average with `rule(averages, weights)`, in one tidy; no device read. The rule may
   * donate the averages (write its results into their buffers: they are replaced right here and not
   * read before), and `assign` takes the result's buffer (no copy): an update costs the rule's one pass.
   */
  update(rule: (averages: readonly tf.Tensor[], weights: readonly tf.Tensor[]) => tf.Tensor[]): void {
    const vars = this.vars!;
    tf.tidy(() => {
      const next = rule(vars, this.targets.map((w) => w.read()));
      vars.forEach((v, i) => v.assign(next[i]!));
    });
  }

  /** Puts the averages into the model; every model weight's current value is kept for `swapOut`. */
  swapIn(model: LayersModel): void {
    if (this.raw || !this.vars) return;
    this.raw = model.weights.map((w) => w.read().clone());
    this.assignAverages();
  }

  /** Puts back what `swapIn` kept (every weight: also BatchNorm statistics recomputed meanwhile). */
  swapOut(model: LayersModel): void {
    const raw = this.raw;
    if (!raw) return;
    this.raw = undefined;
    model.weights.forEach((w, i) => (w.read() as tf.Variable).assign(raw[i]!));
    tf.dispose(raw);
  }

  /** Drops what `swapIn` kept: the model keeps the averages. */
  commit(): void {
    if (this.raw) tf.dispose(this.raw);
    this.raw = undefined;
  }

  /** The averages read from the device (a checkpoint's; not on the hot path). */
  read(): SavedAverageWeight[] | null {
    if (!this.vars) return this.host;
    return this.vars.map((v, i) => ({ name: this.targets[i]!.name, shape: [...v.shape], values: Float32Array.from(v.dataSync() as Float32Array) }));
  }

  /** Moves the average to the host and frees every tensor this holds (end of a run). */
  release(): void {
    if (this.vars) this.host = this.read();
    this.disposeVars();
    this.commit();
  }

  reset(): void {
    this.host = null;
    this.disposeVars();
    this.commit();
  }

  private assignAverages(): void {
    this.targets.forEach((w, i) => (w.read() as tf.Variable).assign(this.vars![i]!));
  }

  private disposeVars(): void {
    if (this.vars) for (const v of this.vars) v.dispose();
    this.vars = undefined;
  }
}
