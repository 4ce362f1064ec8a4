/**
 * The timing arithmetic of `Timer` and `Throughput`, apart from the plugins so it can be tested (and
 * reused) on its own. Host numbers only: one subtraction and a few additions per step.
 *
 * Every millisecond of the fit is given to a unit of work, so the parts add up to the wall time and
 * the ETA has no hidden remainder: a training batch gets the time since the previous mark (the end of
 * the previous step, or the end of the previous validation pass: data loading, every plugin's hooks
 * and the step itself), a validation pass the time since the last step. What runs between epochs
 * (`afterEpoch` hooks, checkpoints) goes to the next epoch's first batch.
 */
export class StepClock {
  /** The end of the last measured unit (ms); undefined before the fit's first epoch. */
  private mark: number | undefined;
  /** This fit: time and count of training batches and of validation passes. */
  private trainMs = 0;
  private trainBatches = 0;
  private valMs = 0;
  private valPasses = 0;
  /** This epoch. */
  private epochStart = 0;
  private epochTrainMs = 0;
  private epochSamples = 0;
  constructor(private readonly now: () => number) {}

  /** A new fit: nothing measured yet (a resumed fit measures its own batches only). */
  reset(): void {
    this.mark = undefined;
    this.trainMs = this.trainBatches = this.valMs = this.valPasses = 0;
  }

  startEpoch(): void {
    const t = this.now();
    this.epochStart = t;
    this.mark ??= t;
    this.epochTrainMs = this.epochSamples = 0;
  }

  /** Drops the time since the last mark: it is given to no unit. */
  restart(): void {
    this.mark = this.now();
  }

  /** End of a training step: its wall time in ms. */
  step(samples: number): number {
    const t = this.now();
    const ms = t - (this.mark ?? t);
    this.mark = t;
    this.trainMs += ms;
    this.trainBatches++;
    this.epochTrainMs += ms;
    this.epochSamples += samples;
    return ms;
  }

  /** End of a validation pass. */
  validated(): void {
    const t = this.now();
    this.valMs += t - (this.mark ?? t);
    this.valPasses++;
    this.mark = t;
  }

  /** Seconds since the epoch began. */
  epochSeconds(): number {
    return (this.now() - this.epochStart) / 1000;
  }

  /** Samples per second over this epoch's training so far (NaN before the first step). */
  samplesPerSecond(): number {
    return this.epochTrainMs > 0 ? (1000 * this.epochSamples) / this.epochTrainMs : Number.NaN;
  }

  /** Seconds the given remaining work takes at this fit's mean batch and validation times. */
  secondsFor(batches: number, validations: number): number {
    const batchMs = this.trainBatches > 0 ? this.trainMs / this.trainBatches : 0;
    // before the first validation pass its cost is unknown: counted as 0 until measured
    const valMs = this.valPasses > 0 ? this.valMs / this.valPasses : 0;
    return (batches * batchMs + validations * valMs) / 1000;
  }
}

/** Where a run stands, as far as the remaining work is concerned. */
export interface Position {
  readonly epoch: number;
  readonly epochs: number;
  /** Batches done in this epoch (including the current one when it is done). */
  readonly batchesDone: number;
  readonly batchesPerEpoch: number | undefined;
  readonly hasValidation: boolean;
  /** A stop was requested: the run ends after this epoch's validation. */
  readonly stopping: boolean;
  /** This epoch's validation pass is done. */
  readonly validated: boolean;
}

/**
 * Training batches and validation passes left in the fit, or undefined when the number of batches
 * is not known (a streaming source without `batchesPerEpoch`).
 */
export function remainingWork(p: Position): { batches: number; validations: number } | undefined {
  if (p.batchesPerEpoch === undefined) return undefined;
  const thisEpochVal = p.hasValidation && !p.validated ? 1 : 0;
  if (p.stopping) return { batches: 0, validations: thisEpochVal };
  const laterEpochs = Math.max(0, p.epochs - p.epoch - 1);
  return {
    batches: Math.max(0, p.batchesPerEpoch - p.batchesDone) + laterEpochs * p.batchesPerEpoch,
    validations: thisEpochVal + (p.hasValidation ? laterEpochs : 0),
  };
}
