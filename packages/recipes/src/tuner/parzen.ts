/**
 * The numerics of Optuna 3.1's TPE, ported so the densities are Optuna's to rounding:
 * `samplers/_tpe/_erf.py` (numpy's erf, FreeBSD's algorithm), Python's `math.erf`/`math.erfc`
 * (fdlibm's `s_erf.c`, which glibc and so CPython use), `_truncnorm.py` (log-CDF, Gaussian mass,
 * log-pdf and the bisection ppf) and `parzen_estimator.py` (`_ParzenEstimator` in univariate mode:
 * bounds, mus, bandwidths, magic clip, the prior, weights, sampling and log-pdf). numpy's default
 * `argsort` (introsort) is ported too: ties between observations decide which one gets which
 * bandwidth, so a stable sort would give a different mixture.
 */
import { OptionsError } from "@fitloop/core";
import type { Distribution } from "./space.js";

// ---------------------------------------------------------------- erf

const ERX = 8.45062911510467529297e-1;
const EFX = 1.28379167095512586316e-1;
const EFX8 = 1.02703333676410069053e0;
const PP = [1.28379167095512558561e-1, -3.25042107247001499370e-1, -2.84817495755985104766e-2, -5.77027029648944159157e-3, -2.37630166566501626084e-5] as const;
const QQ = [3.97917223959155352819e-1, 6.50222499887672944485e-2, 5.08130628187576562776e-3, 1.32494738004321644526e-4, -3.96022827877536812320e-6] as const;
const PA = [-2.36211856075265944077e-3, 4.14856118683748331666e-1, -3.72207876035701323847e-1, 3.18346619901161753674e-1, -1.10894694282396677476e-1, 3.54783043256182359371e-2, -2.16637559486879084300e-3] as const;
const QA = [1.06420880400844228286e-1, 5.40397917702171048937e-1, 7.18286544141962662868e-2, 1.26171219808761642112e-1, 1.36370839120290507362e-2, 1.19844998467991074170e-2] as const;
const RA = [-9.86494403484714822705e-3, -6.93858572707181764372e-1, -1.05586262253232909814e1, -6.23753324503260060396e1, -1.62396669462573470355e2, -1.84605092906711035994e2, -8.12874355063065934246e1, -9.81432934416914548592e0] as const;
const SA = [1.96512716674392571292e1, 1.37657754143519042600e2, 4.34565877475229228821e2, 6.45387271733267880336e2, 4.29008140027567833386e2, 1.08635005541779435134e2, 6.57024977031928170135e0, -6.04244152148580987438e-2] as const;
const RB = [-9.86494292470009928597e-3, -7.99283237680523006574e-1, -1.77579549177547519889e1, -1.60636384855821916062e2, -6.37566443368389627722e2, -1.02509513161107724954e3, -4.83519191608651397019e2] as const;
const SB = [3.03380607434824582924e1, 3.25792512996573918826e2, 1.53672958608443695994e3, 3.19985821950859553908e3, 2.55305040643316442583e3, 4.74528541206955367215e2, -2.24409524465858183362e1] as const;

const smallR = (z: number) => PP[0] + z * (PP[1] + z * (PP[2] + z * (PP[3] + z * PP[4])));
const smallS = (z: number) => 1 + z * (QQ[0] + z * (QQ[1] + z * (QQ[2] + z * (QQ[3] + z * QQ[4]))));
const midP = (s: number) => PA[0] + s * (PA[1] + s * (PA[2] + s * (PA[3] + s * (PA[4] + s * (PA[5] + s * PA[6])))));
const midQ = (s: number) => 1 + s * (QA[0] + s * (QA[1] + s * (QA[2] + s * (QA[3] + s * (QA[4] + s * QA[5])))));
const raR = (s: number) => RA[0] + s * (RA[1] + s * (RA[2] + s * (RA[3] + s * (RA[4] + s * (RA[5] + s * (RA[6] + s * RA[7]))))));
const saS = (s: number) => 1 + s * (SA[0] + s * (SA[1] + s * (SA[2] + s * (SA[3] + s * (SA[4] + s * (SA[5] + s * (SA[6] + s * SA[7])))))));
const rbR = (s: number) => RB[0] + s * (RB[1] + s * (RB[2] + s * (RB[3] + s * (RB[4] + s * (RB[5] + s * RB[6])))));
const sbS = (s: number) => 1 + s * (SB[0] + s * (SB[1] + s * (SB[2] + s * (SB[3] + s * (SB[4] + s * (SB[5] + s * SB[6]))))));

/** Optuna's `_erf.erf` (numpy code, FreeBSD's algorithm without the low-word split). */
export function erfOptuna(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const a = Math.abs(x);
  if (a < 2 ** -28) return x + EFX * x;
  if (a < 0.84375) {
    const z = x * x;
    return x + x * (smallR(z) / smallS(z));
  }
  if (a < 1.25) return (ERX + midP(a - 1) / midQ(a - 1)) * Math.sign(x);
  if (a < 1 / 0.35) {
    const s = 1 / (a * a);
    return (1 - (Math.exp(-a * a - 0.5625) * Math.exp(raR(s) / saS(s))) / a) * Math.sign(x);
  }
  if (a < 6) {
    const s = 1 / (a * a);
    return (1 - (Math.exp(-a * a - 0.5625) * Math.exp(rbR(s) / sbS(s))) / a) * Math.sign(x);
  }
  return Math.sign(x);
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const hiWord = (x: number): number => {
  f64[0] = x;
  return u32[LITTLE ? 1 : 0]! | 0;
};
/** `x` with the low 32 bits of its representation cleared (fdlibm's `SET_LOW_WORD(z, 0)`). */
const clearLow = (x: number): number => {
  f64[0] = x;
  u32[LITTLE ? 0 : 1] = 0;
  return f64[0]!;
};
const TINY = 1e-300;

/** Python's `math.erf`: fdlibm's `s_erf.c` (glibc's, to the last bit or so). */
export function erf(x: number): number {
  const hx = hiWord(x);
  const ix = hx & 0x7fffffff;
  if (ix >= 0x7ff00000) return 1 - ((hx >>> 31) << 1) + 1 / x;
  if (ix < 0x3feb0000) {
    if (ix < 0x3e300000) {
      if (ix < 0x00800000) return 0.125 * (8.0 * x + EFX8 * x);
      return x + EFX * x;
    }
    const z = x * x;
    return x + x * (smallR(z) / smallS(z));
  }
  if (ix < 0x3ff40000) {
    const s = Math.abs(x) - 1;
    const P = midP(s);
    const Q = midQ(s);
    return hx >= 0 ? ERX + P / Q : -ERX - P / Q;
  }
  if (ix >= 0x40180000) return hx >= 0 ? 1 - TINY : TINY - 1;
  const ax = Math.abs(x);
  const s = 1 / (ax * ax);
  const [R, S] = ix < 0x4006db6e ? [raR(s), saS(s)] : [rbR(s), sbS(s)];
  const z = clearLow(ax);
  const r = Math.exp(-z * z - 0.5625) * Math.exp((z - ax) * (z + ax) + R / S);
  return hx >= 0 ? 1 - r / ax : r / ax - 1;
}

/** Python's `math.erfc`: fdlibm's `s_erf.c`. */
export function erfc(x: number): number {
  const hx = hiWord(x);
  const ix = hx & 0x7fffffff;
  if (ix >= 0x7ff00000) return ((hx >>> 31) << 1) + 1 / x;
  if (ix < 0x3feb0000) {
    if (ix < 0x3c700000) return 1 - x;
    const z = x * x;
    const y = smallR(z) / smallS(z);
    if (hx < 0x3fd00000) return 1 - (x + x * y);
    return 0.5 - (x * y + (x - 0.5));
  }
  if (ix < 0x3ff40000) {
    const s = Math.abs(x) - 1;
    const P = midP(s);
    const Q = midQ(s);
    return hx >= 0 ? 1 - ERX - P / Q : 1 + (ERX + P / Q);
  }
  if (ix < 0x403c0000) {
    const ax = Math.abs(x);
    const s = 1 / (ax * ax);
    let R: number;
    let S: number;
    if (ix < 0x4006db6d) {
      R = raR(s);
      S = saS(s);
    } else {
      if (hx < 0 && ix >= 0x40180000) return 2 - TINY;
      R = rbR(s);
      S = sbS(s);
    }
    const z = clearLow(ax);
    const r = Math.exp(-z * z - 0.5625) * Math.exp((z - ax) * (z + ax) + R / S);
    return hx > 0 ? r / ax : 2 - r / ax;
  }
  return hx > 0 ? TINY * TINY : 2 - TINY;
}

// ---------------------------------------------------------------- truncated normal

const SQRT2 = 2 ** 0.5;
const NORM_PDF_LOG_C = Math.log(Math.sqrt(2 * Math.PI));

/** numpy's `logaddexp`. */
export function logAddExp(x: number, y: number): number {
  if (x === y) return x + Math.LN2;
  const t = x - y;
  if (t > 0) return x + Math.log1p(Math.exp(-t));
  if (t <= 0) return y + Math.log1p(Math.exp(t));
  return t;
}

/** `_truncnorm._ndtr_single`: the standard normal CDF with Python's erf/erfc. */
function ndtrSingle(a: number): number {
  const x = a / SQRT2;
  if (x < -1 / SQRT2) return 0.5 * erfc(-x);
  if (x < 1 / SQRT2) return 0.5 + 0.5 * erf(x);
  return 1.0 - 0.5 * erfc(x);
}

/** `_truncnorm._ndtr`: the standard normal CDF with Optuna's numpy erf. */
function ndtr(a: number): number {
  return 0.5 + 0.5 * erfOptuna(a / SQRT2);
}

/** `_truncnorm._log_ndtr_single`: log of the standard normal CDF, with the asymptotic series below -20. */
export function logNdtr(a: number): number {
  if (a > 6) return -ndtrSingle(-a);
  if (a > -20) return Math.log(ndtrSingle(a));
  const logLHS = -0.5 * (a * a) - Math.log(-a) - 0.5 * Math.log(2 * Math.PI);
  let lastTotal = 0.0;
  let rhs = 1.0;
  let numerator = 1.0;
  let denomFactor = 1.0;
  const denomCons = 1 / (a * a);
  let sign = 1;
  let i = 0;
  while (Math.abs(lastTotal - rhs) > Number.EPSILON) {
    i += 1;
    lastTotal = rhs;
    sign = -sign;
    denomFactor *= denomCons;
    numerator *= 2 * i - 1;
    rhs += sign * numerator * denomFactor;
  }
  return logLHS + Math.log(rhs);
}

const logDiff = (logP: number, logQ: number) => logP + Math.log1p(-Math.exp(logQ - logP));

/** `_truncnorm._log_gauss_mass`: log of the standard normal mass in `[a, b]`, worked in the left tail. */
export function logGaussMass(a: number, b: number): number {
  if (b <= 0) return logDiff(logNdtr(b), logNdtr(a));
  if (a > 0) return logDiff(logNdtr(-a), logNdtr(-b));
  return Math.log1p(-ndtr(a) - ndtr(-b));
}

/** `_truncnorm.logpdf` for one point: the normal `(loc, scale)` truncated to `[a, b]` (standardised bounds). */
export function truncnormLogPdf(x: number, a: number, b: number, loc: number, scale: number): number {
  const z = (x - loc) / scale;
  if (a === b) return Number.NaN;
  if (z < a || b < z) return Number.NEGATIVE_INFINITY;
  return -(z * z) / 2.0 - NORM_PDF_LOG_C - logGaussMass(a, b);
}

/** `_truncnorm._bisect` as written: 100 halvings of `[-100, 100]` for `logNdtr(x) = c`. */
function ndtriExp(c: number): number {
  let a = -100;
  let b = 100;
  if (logNdtr(a) > c) [a, b] = [b, a];
  let m = Number.NaN;
  for (let k = 0; k < 100; k++) {
    m = (a + b) / 2;
    if (logNdtr(m) < c) a = m;
    else b = m;
  }
  return m;
}

/** `_truncnorm.ppf` for one point: the `q` quantile of the standard normal truncated to `[a, b]`. */
export function truncnormPpf(q: number, a: number, b: number): number {
  if (a === b) return Number.NaN;
  if (q === 1) return b;
  if (q === 0) return a;
  if (a < 0) return ndtriExp(logAddExp(logNdtr(a), Math.log(q) + logGaussMass(a, b)));
  return -ndtriExp(logAddExp(logNdtr(-b), Math.log1p(-q) + logGaussMass(a, b)));
}

// ---------------------------------------------------------------- numpy helpers

/** numpy's float ordering: NaN after everything. */
const lessF = (a: number, b: number) => a < b || (b !== b && a === a);

/** numpy 1.24's `argsort(kind="quicksort")` (introsort: median-of-3 quicksort, insertion sort up to 16, heapsort past the depth limit), ties as numpy leaves them. */
export function argsortNumpy(v: readonly number[]): number[] {
  const num = v.length;
  const t = Array.from({ length: num }, (_, i) => i);
  if (num < 2) return t;
  const swap = (i: number, j: number) => {
    const x = t[i]!;
    t[i] = t[j]!;
    t[j] = x;
  };
  const V = (i: number) => v[t[i]!]!;
  const stack: number[] = [];
  const depths: number[] = [];
  let pl = 0;
  let pr = num - 1;
  let msb = 0;
  for (let n = num; (n >>= 1) > 0; ) msb++;
  let cdepth = msb * 2;
  for (;;) {
    if (cdepth < 0) {
      heapsortRange(v, t, pl, pr - pl + 1);
    } else {
      while (pr - pl > 15) {
        const pm = pl + ((pr - pl) >> 1);
        if (lessF(V(pm), V(pl))) swap(pm, pl);
        if (lessF(V(pr), V(pm))) swap(pr, pm);
        if (lessF(V(pm), V(pl))) swap(pm, pl);
        const vp = V(pm);
        let pi = pl;
        let pj = pr - 1;
        swap(pm, pj);
        for (;;) {
          do ++pi;
          while (lessF(V(pi), vp));
          do --pj;
          while (lessF(vp, V(pj)));
          if (pi >= pj) break;
          swap(pi, pj);
        }
        swap(pi, pr - 1);
        if (pi - pl < pr - pi) {
          stack.push(pi + 1, pr);
          pr = pi - 1;
        } else {
          stack.push(pl, pi - 1);
          pl = pi + 1;
        }
        depths.push(--cdepth);
      }
      for (let pi = pl + 1; pi <= pr; ++pi) {
        const vi = t[pi]!;
        const vp = v[vi]!;
        let pj = pi;
        while (pj > pl && lessF(vp, V(pj - 1))) {
          t[pj] = t[pj - 1]!;
          pj--;
        }
        t[pj] = vi;
      }
    }
    if (!stack.length) break;
    pr = stack.pop()!;
    pl = stack.pop()!;
    cdepth = depths.pop()!;
  }
  return t;
}

/** numpy's `aheapsort` on `t[start .. start + n)`. */
function heapsortRange(v: readonly number[], t: number[], start: number, n: number): void {
  const A = (k: number) => t[start + k - 1]!; // 1-based
  const set = (k: number, x: number) => void (t[start + k - 1] = x);
  const sift = (tmp: number, i0: number, size: number) => {
    let i = i0;
    let j = i0 << 1;
    while (j <= size) {
      if (j < size && lessF(v[A(j)]!, v[A(j + 1)]!)) j += 1;
      if (lessF(v[tmp]!, v[A(j)]!)) {
        set(i, A(j));
        i = j;
        j += j;
      } else break;
    }
    set(i, tmp);
  };
  for (let l = n >> 1; l > 0; --l) sift(A(l), l, n);
  for (let size = n; size > 1; ) {
    const tmp = A(size);
    set(size, A(1));
    size -= 1;
    sift(tmp, 1, size);
  }
}

/** numpy's `round` (`rint`): halves to even. */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

const clip = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);

/** numpy's `RandomState.choice(n, p=weights)` for one draw `u`: `cumsum(p) / sum`, searched on the right. */
function pick(cdf: readonly number[], u: number): number {
  let k = 0;
  while (k < cdf.length && cdf[k]! <= u) k++;
  return k;
}

function cumsum(xs: readonly number[]): number[] {
  const out: number[] = [];
  let s = 0;
  for (const x of xs) out.push((s += x));
  return out;
}

// ---------------------------------------------------------------- the estimator

export interface ParzenEstimatorParameters {
  readonly considerPrior: boolean;
  readonly priorWeight: number;
  readonly considerMagicClip: boolean;
  readonly considerEndpoints: boolean;
  /** Optuna's `weights(n)`: one non-negative weight per observation, oldest first. */
  readonly weights: (n: number) => readonly number[];
}

/** Optuna's `default_weights`: 1 for each of the last 25 observations, older ones ramping up from `1/n`. */
export function defaultWeights(n: number): number[] {
  if (n === 0) return [];
  if (n < 25) return Array<number>(n).fill(1);
  const m = n - 25;
  // numpy's linspace(1/n, 1, num=m): start + k * step, the last point exactly 1
  const start = 1.0 / n;
  const ramp = m === 1 ? [start] : Array.from({ length: m }, (_, k) => (k === m - 1 ? 1.0 : start + k * ((1.0 - start) / (m - 1))));
  return [...ramp, ...Array<number>(25).fill(1)];
}

/**
 * Optuna's `_ParzenEstimator` for one parameter (univariate TPE): a mixture of truncated normals
 * (one per observation, plus the prior) on the parameter's internal scale (log for log
 * distributions, widened by half a step for steps and ints), or for a categorical a smoothed
 * histogram per observation.
 */
export class ParzenEstimator {
  /** Mixture weights (observations, then the prior), summing to 1. */
  readonly weights: readonly number[];
  /** Numerical: bounds of the internal scale and the grid step (null when continuous). */
  readonly low: number | undefined;
  readonly high: number | undefined;
  readonly q: number | null;
  readonly mus: readonly number[] | undefined;
  readonly sigmas: readonly number[] | undefined;
  /** Categorical: per component, the probability of each choice. */
  readonly categoricalWeights: readonly (readonly number[])[] | undefined;

  constructor(
    observations: readonly number[],
    readonly distribution: Distribution,
    readonly parameters: ParzenEstimatorParameters,
  ) {
    const n = observations.length;
    const considerPrior = parameters.considerPrior || n === 0;
    this.weights = this.calculateWeights(n, considerPrior);
    if (distribution.kind === "categorical") {
      this.low = this.high = undefined;
      this.q = null;
      this.mus = this.sigmas = undefined;
      const k = distribution.choices.length;
      const rows = considerPrior ? n + 1 : n;
      const value = considerPrior ? parameters.priorWeight / (n + 1) : parameters.priorWeight / n;
      const cw = Array.from({ length: rows }, () => Array<number>(k).fill(value));
      observations.forEach((o, i) => (cw[i]![Math.trunc(o)]! += 1));
      this.categoricalWeights = cw.map((row) => {
        const s = row.reduce((a, b) => a + b, 0);
        return row.map((x) => x / s);
      });
      return;
    }
    this.categoricalWeights = undefined;
    const [low, high, q] = parzenBounds(distribution);
    this.low = low;
    this.high = high;
    this.q = q;
    const obs = distribution.log ? observations.map(Math.log) : [...observations];
    const priorMu = 0.5 * (low + high);
    const priorSigma = 1.0 * (high - low);
    const mus = considerPrior ? [...obs, priorMu] : obs;
    const sortedIndices = argsortNumpy(mus);
    const sm = [low, ...sortedIndices.map((i) => mus[i]!), high];
    const sortedSigmas = mus.map((_, k) => Math.max(sm[k + 1]! - sm[k]!, sm[k + 2]! - sm[k + 1]!));
    if (!parameters.considerEndpoints && sm.length >= 4) {
      sortedSigmas[0] = sm[2]! - sm[1]!;
      sortedSigmas[sortedSigmas.length - 1] = sm[sm.length - 2]! - sm[sm.length - 3]!;
    }
    const sigmas = Array<number>(mus.length);
    sortedIndices.forEach((orig, k) => (sigmas[orig] = sortedSigmas[k]!));
    const maxSigma = 1.0 * (high - low);
    const minSigma = parameters.considerMagicClip ? (1.0 * (high - low)) / Math.min(100.0, 1.0 + mus.length) : 1e-12;
    for (let i = 0; i < sigmas.length; i++) sigmas[i] = clip(sigmas[i]!, minSigma, maxSigma);
    if (considerPrior) sigmas[n] = priorSigma;
    this.mus = mus;
    this.sigmas = sigmas;
  }

  private calculateWeights(n: number, considerPrior: boolean): number[] {
    const got: unknown = this.parameters.weights(n);
    const bad = (why: string) => new OptionsError("tpeSampler", [{ path: "weights", message: `weights(${n}) returned ${why}` }]);
    if (!Array.isArray(got) || !got.every((x) => typeof x === "number")) throw bad("something other than an array of numbers");
    const w = (got as number[]).slice(0, n);
    // Optuna's checks, in its order
    if (w.some((x) => x < 0)) throw bad(`negative values ${JSON.stringify(w)}`);
    if (w.length > 0 && w.reduce((a, b) => a + b, 0) <= 0) throw bad(`all-zero values ${JSON.stringify(w)}`);
    if (!w.every(Number.isFinite)) throw bad("infinite or NaN values");
    if (w.length < n) throw bad(`${w.length} values for ${n} observations`);
    const all = considerPrior ? [...w, this.parameters.priorWeight] : w;
    const s = all.reduce((a, b) => a + b, 0);
    return all.map((x) => x / s);
  }

  /**
   * `size` draws as Optuna's `_ParzenEstimator.sample` makes them from `random` (numpy's order: the
   * `size` component picks first, then one uniform per draw), in internal repr: the value (rounded to
   * the grid for steps and ints), or a categorical's index.
   */
  sample(random: () => number, size: number): number[] {
    const wc = cumsum(this.weights);
    const total = wc[wc.length - 1]!;
    const cdf = wc.map((x) => x / total);
    const active = Array.from({ length: size }, () => pick(cdf, random()));
    const u = Array.from({ length: size }, () => random());
    const d = this.distribution;
    if (d.kind === "categorical") {
      return active.map((a, k) => {
        const cum = cumsum(this.categoricalWeights![a]!);
        return cum.filter((c) => c < u[k]!).length;
      });
    }
    const mus = this.mus!;
    const sigmas = this.sigmas!;
    const low = this.low!;
    const high = this.high!;
    const raw = active.map((a, k) => truncnormPpf(u[k]!, (low - mus[a]!) / sigmas[a]!, (high - mus[a]!) / sigmas[a]!) * sigmas[a]! + mus[a]!);
    return raw.map((x) => fromUniform(d, x, this.q));
  }

  /** The mixture's log density (log mass on a grid) at internal values: `_ParzenEstimator.log_pdf`. */
  logPdf(samples: readonly number[]): number[] {
    const d = this.distribution;
    if (d.kind === "categorical") {
      const cw = this.categoricalWeights!;
      const k = d.choices.length;
      const mix = Array.from({ length: k }, (_, c) => cw.reduce((s, row, i) => s + row[c]! * this.weights[i]!, 0));
      return samples.map((x) => Math.log(mix[x]!));
    }
    const mus = this.mus!;
    const sigmas = this.sigmas!;
    const low = this.low!;
    const high = this.high!;
    const q = this.q;
    const logW = this.weights.map(Math.log);
    const a = mus.map((m, i) => (low - m) / sigmas[i]!);
    const b = mus.map((m, i) => (high - m) / sigmas[i]!);
    const logAccept = mus.map((_, i) => logGaussMass(a[i]!, b[i]!));
    return samples.map((s0) => {
      const s = d.log ? Math.log(s0) : s0;
      const comp = mus.map((m, i) => {
        let lp: number;
        if (q === null) {
          const z = (s - m) / sigmas[i]!;
          lp = a[i] === b[i] ? Number.NaN : z < a[i]! || b[i]! < z ? Number.NEGATIVE_INFINITY : -(z * z) / 2.0 - NORM_PDF_LOG_C - logAccept[i]!;
        } else {
          const upper = Math.min(s + q / 2.0, high);
          const lower = Math.max(s - q / 2.0, low);
          lp = logGaussMass((lower - m) / sigmas[i]!, (upper - m) / sigmas[i]!) - logAccept[i]!;
        }
        return lp + logW[i]!;
      });
      const max = comp.reduce((x, y) => (y > x || Number.isNaN(y) ? y : x), Number.NEGATIVE_INFINITY);
      return Math.log(comp.reduce((acc, c) => acc + Math.exp(c - max), 0)) + max;
    });
  }
}

/** Optuna's `_calculate_parzen_bounds`: `[low, high]` of the internal scale and the step. */
function parzenBounds(d: Exclude<Distribution, { kind: "categorical" }>): [number, number, number | null] {
  if (d.kind === "float") {
    if (d.log) return [Math.log(d.low), Math.log(d.high), null];
    if (d.step !== null) return [d.low - 0.5 * d.step, d.high + 0.5 * d.step, d.step];
    return [d.low, d.high, null];
  }
  if (d.log) return [Math.log(d.low - 0.5), Math.log(d.high + 0.5), null];
  return [d.low - 0.5 * d.step, d.high + 0.5 * d.step, d.step];
}

/** Optuna's `_transform_from_uniform`: back from the internal scale, rounded to the grid (halves to even) and clipped. */
function fromUniform(d: Exclude<Distribution, { kind: "categorical" }>, x: number, q: number | null): number {
  if (d.kind === "float") {
    if (d.log) return Math.exp(x);
    if (q !== null) return clip(roundHalfEven((x - d.low) / q) * q + d.low, d.low, d.high);
    return x;
  }
  if (d.log) return clip(roundHalfEven(Math.exp(x)), d.low, d.high);
  return clip(roundHalfEven((x - d.low) / q!) * q! + d.low, d.low, d.high);
}

/** numpy's `argmax`: the first maximum, or the first NaN when there is one. */
export function argmaxNumpy(xs: readonly number[]): number {
  let best = 0;
  for (let i = 0; i < xs.length; i++) {
    if (Number.isNaN(xs[i]!)) return i;
    if (xs[i]! > xs[best]!) best = i;
  }
  return best;
}
