/** A series as plot-ready arrays: `x[i]`, `y[i]`. */
export interface SeriesData {
  readonly x: readonly number[];
  readonly y: readonly number[];
  /** Points per bucket: 1 while every point is kept; 2^k once the series was downsampled. */
  readonly stride: number;
}

interface Bucket {
  index: number;
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

/**
 * One logged value over the steps, in bounded memory. Up to `cap` buckets are kept; a bucket holds
 * the lowest and highest point of `stride` consecutive steps. When there would be more, adjacent
 * buckets merge and `stride` doubles, so a long run keeps its spikes (a loss spike, a gradient-norm
 * burst) rather than averaging them away, and `points()` never returns more than `2 * cap` points.
 * Non-finite values are counted, not stored (a plot cannot place them).
 */
export class MinMaxSeries {
  private buckets: Bucket[] = [];
  private width = 1;
  /** Values that were NaN or infinite. */
  nonFinite = 0;
  /** Every value added (finite or not). */
  count = 0;

  constructor(readonly cap: number) {
    if (!Number.isInteger(cap) || cap < 2) throw new RangeError(`MinMaxSeries: cap must be an integer >= 2, got ${cap}`);
  }

  /** `x` must not decrease from one call to the next (steps). */
  add(x: number, y: number): void {
    this.count++;
    if (!Number.isFinite(y)) {
      this.nonFinite++;
      return;
    }
    const index = Math.floor(x / this.width);
    const last = this.buckets[this.buckets.length - 1];
    if (last && last.index === index) {
      if (y < last.minY) (last.minY = y), (last.minX = x);
      if (y > last.maxY) (last.maxY = y), (last.maxX = x);
      return;
    }
    this.buckets.push({ index, minX: x, minY: y, maxX: x, maxY: y });
    if (this.buckets.length > this.cap) this.compact();
  }

  /** Halves the resolution: buckets `2k` and `2k + 1` become one. */
  private compact(): void {
    this.width *= 2;
    const out: Bucket[] = [];
    for (const b of this.buckets) {
      const index = Math.floor(b.index / 2);
      const prev = out[out.length - 1];
      if (prev && prev.index === index) {
        if (b.minY < prev.minY) (prev.minY = b.minY), (prev.minX = b.minX);
        if (b.maxY > prev.maxY) (prev.maxY = b.maxY), (prev.maxX = b.maxX);
      } else {
        out.push({ ...b, index });
      }
    }
    this.buckets = out;
  }

  get stride(): number {
    return this.width;
  }

  /** Each bucket's extremes in step order (one point when they coincide). */
  points(): SeriesData {
    const x: number[] = [];
    const y: number[] = [];
    for (const b of this.buckets) {
      const minFirst = b.minX <= b.maxX;
      x.push(minFirst ? b.minX : b.maxX);
      y.push(minFirst ? b.minY : b.maxY);
      if (b.minX !== b.maxX) {
        x.push(minFirst ? b.maxX : b.minX);
        y.push(minFirst ? b.maxY : b.minY);
      }
    }
    return { x, y, stride: this.width };
  }
}
