import * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { StateError } from "@fitloop/core";

/** One weight tensor as a checkpoint stores it. */
export interface SavedWeight {
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

/**
 * On-device copies of every model weight (`model.weights`: trainable and not, e.g. BatchNorm's
 * moving statistics, as Keras' `get_weights`). Holds one set at a time; a set is disposed when
 * replaced and in `dispose()`.
 */
export class WeightCopies {
  private copies: tf.Tensor[] | undefined;

  get has(): boolean {
    return this.copies !== undefined;
  }

  get count(): number {
    return this.copies?.length ?? 0;
  }

  /** Copies the model's current weights, replacing (and disposing) the previous copy. */
  capture(model: LayersModel): void {
    // `read()` is the live variable: a clone keeps this epoch's values when the optimizer moves on
    const next = tf.tidy(() => model.weights.map((w) => tf.clone(w.read())));
    this.replace(next);
  }

  /** Builds the copies from saved values (validated by the caller). */
  load(saved: readonly SavedWeight[]): void {
    // a copy of the values: the saved state may be reused by the caller
    this.replace(saved.map((w) => tf.tensor(Float32Array.from(w.values), [...w.shape], "float32")));
  }

  /** The copies as plain arrays, for a checkpoint (a device read: not on the hot path). */
  save(): SavedWeight[] | null {
    return this.copies ? this.copies.map((t) => ({ shape: [...t.shape], values: Float32Array.from(t.dataSync()) })) : null;
  }

  /** A `StateError` unless the copies fit `model` one to one (count, shapes, dtype). */
  check(model: LayersModel, owner: string): void {
    if (!this.copies) return;
    const weights = model.weights;
    if (weights.length !== this.copies.length) {
      throw new StateError(`${owner}: the saved best weights do not match the model: ${this.copies.length} tensors saved, the model has ${weights.length} weights`);
    }
    weights.forEach((w, i) => {
      const c = this.copies![i]!;
      if (w.shape.join(",") !== c.shape.join(",") || w.dtype !== c.dtype) {
        throw new StateError(`${owner}: the saved best weights do not match the model: weight ${i} (${w.name}) is ${w.dtype} [${w.shape.join(", ")}], the saved copy is ${c.dtype} [${c.shape.join(", ")}]`);
      }
    });
  }

  /**
   * Sets the model's weights from the copies. tfjs assigns by reference (the variable shares the
   * copy's data, counted), so the copies stay valid and disposing them later leaves the model intact.
   */
  restore(model: LayersModel): void {
    if (this.copies) model.setWeights(this.copies);
  }

  /** The copied values (for tests and inspection): plain arrays, read from the device. */
  values(): Float32Array[] {
    return (this.copies ?? []).map((t) => Float32Array.from(t.dataSync()));
  }

  dispose(): void {
    this.replace(undefined);
  }

  private replace(next: tf.Tensor[] | undefined): void {
    if (this.copies) tf.dispose(this.copies);
    this.copies = next;
  }
}
