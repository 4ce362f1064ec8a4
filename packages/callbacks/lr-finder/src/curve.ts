/**
 * The sweep and the smoothing, as fastai does them (fastai/callback/schedule.py `LRFinder`,
 * fastai/learner.py `AvgSmoothLoss`).
 */

export type SweepMode = "exponential" | "linear";

/**
 * The learning rate of step `i` (0-based) of a sweep of `steps` steps: fastai's `SchedExp` /
 * `SchedLin` at `pos = i / steps` (`LRFinder.before_batch` uses `train_iter / num_it`, and
 * `train_iter` counts the batches done before this one). So step 0 runs at `start` and the last
 * recorded step, `steps - 1`, just below `end`: `end` itself is never used.
 */
export function sweepLr(i: number, steps: number, start: number, end: number, mode: SweepMode = "exponential"): number {
  const pos = i / steps;
  return mode === "exponential" ? start * (end / start) ** pos : start + pos * (end - start);
}

/** All the learning rates of a sweep that runs to the end (`sweepLr(0..steps-1)`). */
export function sweepLrs(steps: number, start: number, end: number, mode: SweepMode = "exponential"): number[] {
  return Array.from({ length: steps }, (_, i) => sweepLr(i, steps, start, end, mode));
}

/**
 * fastai's `AvgSmoothLoss`: an exponential moving average started at 0 with bias correction,
 * `avg = lerp(loss, avg, beta)` (`loss + beta * (avg - loss)`), `smoothed = avg / (1 - beta^count)`.
 * The first smoothed value is the first loss. Computed in float64 (fastai: float32 tensors).
 */
export class SmoothedLoss {
  private avg = 0;
  private count = 0;
  constructor(readonly beta: number) {}

  /** Adds a loss; returns the smoothed value after it. */
  add(loss: number): number {
    this.count++;
    this.avg = loss + this.beta * (this.avg - loss);
    return this.value;
  }

  get value(): number {
    return this.avg / (1 - this.beta ** this.count);
  }
}

/** `SmoothedLoss` over a whole series. */
export function smoothLosses(losses: readonly number[], beta = 0.98): number[] {
  const s = new SmoothedLoss(beta);
  return losses.map((l) => s.add(l));
}
