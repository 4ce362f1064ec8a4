/**
 * fastai's learning-rate suggestions, as pure functions of a recorded curve. Source:
 * fastai/callback/schedule.py (`valley`, `slide`, `minimum`, `steep`, `Learner.lr_find`), fastai
 * 2.7 (nbs/14_callback.schedule.ipynb). fastai calls them on the *smoothed* losses (its
 * `Recorder.losses` is `AvgSmoothLoss.value`), trimmed as `lr_find` does (see `suggestionWindow`).
 *
 * Each returns `{ lr, index, loss }`: the suggested learning rate, the index (into the arrays passed
 * in) of the curve point it comes from, and the loss there (fastai's plotted point). `undefined`
 * where fastai would raise (too few points).
 */

export interface Suggestion {
  /** The suggested learning rate. */
  readonly lr: number;
  /** Index of the curve point it was derived from (into the arrays given; `findLearningRate` reports curve indices). */
  readonly index: number;
  /** The (smoothed) loss at that point; for `slide`, interpolated at `lr` in log-lr. */
  readonly loss: number;
}

export type SuggestionName = "valley" | "steep" | "minimum" | "slide";
export const SUGGESTION_NAMES: readonly SuggestionName[] = ["valley", "steep", "minimum", "slide"];

export type Suggestions = Readonly<Record<SuggestionName, Suggestion | undefined>>;

/** Index of the first smallest value (torch's `argmin` takes the first of ties). */
function argmin(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! < values[best]!) best = i;
  return best;
}

function checkLengths(fn: string, lrs: readonly number[], losses: readonly number[]): void {
  if (lrs.length !== losses.length) throw new RangeError(`${fn}: lrs has ${lrs.length} values but losses has ${losses.length}`);
}

/**
 * fastai's default, `valley` (by ESRI): the longest valley is the longest strictly decreasing
 * subsequence of the losses (O(n^2), as fastai); the suggestion sits a bit past its middle,
 * at `start + int(len/3) + int(len/6)` where `start = end - len`.
 *
 * One deliberate difference: when the longest valley has length 2 and ends at index 1, fastai's
 * `start` is -1 and Python's negative indexing picks the *last* (largest) learning rate; here the
 * index is clamped to 0.
 */
export function valley(lrs: readonly number[], losses: readonly number[]): Suggestion | undefined {
  checkLengths("valley", lrs, losses);
  const n = losses.length;
  if (n === 0) return undefined;
  let maxStart = 0;
  let maxEnd = 0;
  const lds = new Array<number>(n).fill(1);
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (losses[i]! < losses[j]! && lds[i]! < lds[j]! + 1) lds[i] = lds[j]! + 1;
      if (lds[maxEnd]! < lds[i]!) {
        maxEnd = i;
        maxStart = maxEnd - lds[maxEnd]!;
      }
    }
  }
  const sections = (maxEnd - maxStart) / 3;
  const index = Math.max(0, maxStart + Math.trunc(sections) + Math.trunc(sections / 2));
  return { lr: lrs[index]!, index, loss: losses[index]! };
}

/**
 * fastai's `steep`: the learning rate at the left end of the steepest fall of the loss against
 * log(lr) (the most negative `(loss[i+1] - loss[i]) / (ln lr[i+1] - ln lr[i])`). Needs 2 points.
 */
export function steep(lrs: readonly number[], losses: readonly number[]): Suggestion | undefined {
  checkLengths("steep", lrs, losses);
  if (losses.length < 2) return undefined;
  const grads: number[] = [];
  for (let i = 0; i + 1 < losses.length; i++) grads.push((losses[i + 1]! - losses[i]!) / (Math.log(lrs[i + 1]!) - Math.log(lrs[i]!)));
  const index = argmin(grads);
  return { lr: lrs[index]!, index, loss: losses[index]! };
}

/**
 * fastai's `minimum`: one tenth of the learning rate at the lowest loss. `index` and `loss` are
 * those of the lowest point (fastai plots the point at the minimum, not at lr/10).
 */
export function minimum(lrs: readonly number[], losses: readonly number[]): Suggestion | undefined {
  checkLengths("minimum", lrs, losses);
  if (losses.length === 0) return undefined;
  const index = argmin(losses);
  return { lr: lrs[index]! / 10, index, loss: losses[index]! };
}

export interface SlideOptions {
  /** Distance in points between the two gradients compared (fastai's `lr_diff`, default 15). */
  lrDiff?: number;
  /** Largest difference of the two gradients that counts as "flat" (fastai's `thresh`, default 0.005, in loss units per point). */
  thresh?: number;
  /** Factor on the result (fastai's `adjust_value`, default 1). */
  adjustValue?: number;
}

/**
 * fastai's `slide` (by Andrew Chang): slides a pair of points `lrDiff` apart from the right end
 * leftwards while their loss gradients (numpy's `np.gradient`: central differences, one-sided at
 * the ends) differ by more than `thresh`; suggests the left point's learning rate where they first
 * agree. Needs `lrDiff + 1` points (fastai raises an IndexError with fewer).
 */
export function slide(lrs: readonly number[], losses: readonly number[], options: SlideOptions = {}): Suggestion | undefined {
  checkLengths("slide", lrs, losses);
  const { lrDiff = 15, thresh = 0.005, adjustValue = 1 } = options;
  const n = losses.length;
  if (n < lrDiff + 1 || n < 2) return undefined;
  const grad = gradient(losses);
  // fastai's negative indices r_idx, l_idx as positive ones
  let r = n - 1;
  let l = r - lrDiff;
  let index = l;
  while (l >= 0 && Math.abs(grad[r]! - grad[l]!) > thresh) {
    index = l;
    r--;
    l--;
  }
  const lr = lrs[index]! * adjustValue;
  return { lr, index, loss: interp(Math.log10(lr), lrs.map(Math.log10), losses) };
}

/** numpy's `np.gradient` with unit spacing and `edge_order=1`. */
export function gradient(y: readonly number[]): number[] {
  const n = y.length;
  if (n < 2) throw new RangeError("gradient needs at least 2 values");
  const out = new Array<number>(n);
  out[0] = y[1]! - y[0]!;
  out[n - 1] = y[n - 1]! - y[n - 2]!;
  for (let i = 1; i < n - 1; i++) out[i] = (y[i + 1]! - y[i - 1]!) / 2;
  return out;
}

/** numpy's `np.interp` for increasing `xp`: clamps outside the range. */
function interp(x: number, xp: readonly number[], fp: readonly number[]): number {
  const n = xp.length;
  if (x <= xp[0]!) return fp[0]!;
  if (x >= xp[n - 1]!) return fp[n - 1]!;
  let i = 0;
  while (xp[i + 1]! < x) i++;
  if (xp[i + 1] === x) return fp[i + 1]!;
  const t = (x - xp[i]!) / (xp[i + 1]! - xp[i]!);
  return fp[i]! + t * (fp[i + 1]! - fp[i]!);
}

/**
 * The points fastai suggests from (`Learner.lr_find`): it drops the first `steps // 10` and the last 5
 * recorded points (`recorder.losses[num_it//10:-5]`, so the trim follows the configured `steps`, not
 * the number recorded), then cuts at the first NaN. Here the cut is at the first non-finite value
 * (NaN or +-Infinity). Returns `[start, end)` into the recorded curve (empty when `end <= start`).
 */
export function suggestionWindow(smoothed: readonly number[], steps: number): { start: number; end: number } {
  const start = Math.floor(steps / 10);
  let end = Math.max(0, smoothed.length - 5);
  for (let i = start; i < end; i++) {
    if (!Number.isFinite(smoothed[i]!)) {
      end = i;
      break;
    }
  }
  return { start, end: Math.max(start, end) };
}

/** The functions by name, for `findLearningRate`'s `suggest`. */
const FUNCTIONS: Record<SuggestionName, (lrs: readonly number[], losses: readonly number[]) => Suggestion | undefined> = { valley, steep, minimum, slide: (l, s) => slide(l, s) };

/**
 * All four suggestions for a recorded curve, as `Learner.lr_find` computes them: on the smoothed
 * losses inside `suggestionWindow`. Indices are into the whole curve.
 */
export function suggestAll(curve: { readonly lr: readonly number[]; readonly smoothed: readonly number[] }, steps: number): Suggestions {
  const { start, end } = suggestionWindow(curve.smoothed, steps);
  const lrs = curve.lr.slice(start, end);
  const losses = curve.smoothed.slice(start, end);
  const out = {} as Record<SuggestionName, Suggestion | undefined>;
  for (const name of SUGGESTION_NAMES) {
    const s = FUNCTIONS[name](lrs, losses);
    out[name] = s && { ...s, index: s.index + start };
  }
  return out;
}
