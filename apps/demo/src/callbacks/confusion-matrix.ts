/**
 * An example of writing your own fitloop plugin (referenced from the root README).
 *
 * A plugin is any object with hooks (see docs/events.md for every event and its context). This one
 * counts, during each validation pass, which digit the model predicted for which true digit. It
 * costs no extra forward pass: `afterValBatch` sees the batch's labels and the model's outputs the
 * loop already computed. After each validation it logs `val_worst_class_acc` (the accuracy of the
 * hardest class), which every sink then receives like any other log: the progress bar, metrics.csv,
 * TensorBoard and the report. At the end of the run it prints per-class accuracy and the most
 * frequent confusions of the best epoch (by `val_loss`, whose weights early stopping restores), and
 * writes them to `confusion.json` when given a path. It is stateful (`stateKey`, `stateDict`,
 * `loadStateDict`): checkpoints save its best matrix, so `resume` reports the same as an
 * uninterrupted run.
 */
import { writeFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER, type BatchContext, type Callback, type FitEndContext, type HookContext, type StateDict } from "@fitloop/core";

export interface ConfusionMatrixOptions {
  classes: number;
  /** Where to write the best epoch's matrix as JSON (optional). */
  path?: string;
  /** Class names for the printout (default: the indices). */
  classNames?: readonly string[];
}

export class ConfusionMatrix implements Callback {
  readonly name = "ConfusionMatrix";
  // Logging plugins run late, after monitors; any order works here since it only reads.
  readonly order = ORDER.LOG;
  readonly stateKey = "confusionMatrix";
  private counts: number[][];
  private best: { epoch: number; valLoss: number; counts: number[][] } | undefined;

  constructor(private readonly options: ConfusionMatrixOptions) {
    this.counts = this.empty();
  }

  private empty(): number[][] {
    return Array.from({ length: this.options.classes }, () => new Array<number>(this.options.classes).fill(0));
  }

  stateDict(): StateDict {
    return this.best ? { epoch: this.best.epoch, valLoss: this.best.valLoss, counts: this.best.counts.flat() } : {};
  }

  loadStateDict(state: StateDict): void {
    if (state["counts"] === undefined) return void (this.best = undefined);
    const flat = Array.from(state["counts"] as ArrayLike<number>);
    const k = this.options.classes;
    if (flat.length !== k * k) throw new Error(`ConfusionMatrix: saved matrix has ${flat.length} cells, expected ${k * k}`);
    this.best = { epoch: Number(state["epoch"]), valLoss: Number(state["valLoss"]), counts: Array.from({ length: k }, (_, r) => flat.slice(r * k, (r + 1) * k)) };
  }

  beforeValidate(): void {
    this.counts = this.empty();
  }

  afterValBatch(ctx: BatchContext): void {
    if (!ctx.outputs) return;
    // Tensors in a hook belong to the loop and are valid during the hook only: read them now.
    const [predicted, actual] = tf.tidy(() => [tf.argMax(ctx.outputs!, -1), tf.reshape(ctx.batch.ys, [-1])]);
    const p = predicted!.dataSync();
    const a = actual!.dataSync();
    predicted!.dispose();
    actual!.dispose();
    for (let i = 0; i < p.length; i++) this.counts[a[i]!]![p[i]!]! += 1;
  }

  afterValidate(ctx: HookContext): void {
    const accuracies = this.counts.map((row, k) => row[k]! / Math.max(1, row.reduce((s, c) => s + c, 0)));
    ctx.log("val_worst_class_acc", Math.min(...accuracies));
    const valLoss = ctx.logs["val_loss"];
    if (valLoss !== undefined && (!this.best || valLoss < this.best.valLoss)) {
      this.best = { epoch: ctx.state.epoch, valLoss, counts: this.counts.map((row) => [...row]) };
    }
  }

  afterFit(ctx: FitEndContext): void {
    if (!this.best) return;
    const { epoch, counts } = this.best;
    const name = (k: number) => this.options.classNames?.[k] ?? String(k);
    const perClass = counts.map((row, k) => ({ class: name(k), accuracy: row[k]! / Math.max(1, row.reduce((s, c) => s + c, 0)), samples: row.reduce((s, c) => s + c, 0) }));
    const confusions: { actual: string; predicted: string; count: number }[] = [];
    counts.forEach((row, a) => row.forEach((count, p) => void (a !== p && count > 0 && confusions.push({ actual: name(a), predicted: name(p), count }))));
    confusions.sort((x, y) => y.count - x.count);
    ctx.logger.info(
      `ConfusionMatrix (epoch ${epoch + 1}, the best by val_loss): per-class accuracy ` +
        perClass.map((c) => `${c.class}: ${(100 * c.accuracy).toFixed(1)}%`).join(", ") +
        `; most confused: ${confusions.slice(0, 3).map((c) => `${c.actual} as ${c.predicted} (${c.count})`).join(", ") || "none"}`,
    );
    if (this.options.path) writeFileSync(this.options.path, JSON.stringify({ epoch, perClass, confusions, counts }, null, 2));
  }
}
