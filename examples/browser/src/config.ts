/**
 * The run's stopping rule, apart from the code that trains, so the browser test can replay it on the
 * recorded history without loading tfjs.
 */

/** The epoch budget: far more than the run needs, so the stop comes from early stopping, not the count. */
export const MAX_EPOCHS = 200;
/** Epochs without a val_loss improvement larger than MIN_DELTA before early stopping ends the run. */
export const PATIENCE = 8;
export const MIN_DELTA = 1e-3;
