/**
 * TPE against Optuna 3.1: the fixture (scripts/tpe-reference.py, run by Debian's python3-optuna) has
 * Optuna's observation pairs, split, Parzen estimators, log-pdfs, truncated-normal numerics and whole
 * `sample_independent` calls with the uniforms numpy drew; ours must match to 1e-9 relative and pick
 * the same value. Then behaviour (TPE beats random search on a quadratic) and odd studies.
 */
import { OptionsError } from "@fitloop/core";
import { describe, expect, it } from "vitest";
import { MemoryJournal, choice, distributionFromJson, int, logUniform, randomSampler, sample, tpeSampler, tune, uniform, type CategoricalChoice, type JsonObject, type ParamDistribution, type SamplerContext, type TrialRecord } from "./index.js";
import { ParzenEstimator, argsortNumpy, defaultWeights, erf, erfOptuna, erfc, logGaussMass, logNdtr, truncnormLogPdf, truncnormPpf, type ParzenEstimatorParameters } from "./parzen.js";
import { tpeReference } from "./tpe-reference.fixture.js";
import { observationPairs, splitObservationPairs, tpeCompare, tpeEstimators, type TpeSamplerOptions } from "./tpe.js";

interface EstimatorDump {
  weights: number[];
  categoricalWeights?: number[][];
  low?: number;
  high?: number;
  q?: number | null;
  mus?: number[];
  sigmas?: number[];
}
interface ParamReference {
  distribution: string;
  values: (number | null)[];
  scores: [number, number][];
  n: number;
  nBelow: number;
  below: number[];
  above: number[];
  estimatorBelow: EstimatorDump;
  estimatorAbove: EstimatorDump;
  points: number[];
  logPdfBelow: number[];
  logPdfAbove: number[];
  uniforms: number[];
  candidates: number[];
  logL: number[];
  logG: number[];
  chosenIndex: number;
  optunaValue: CategoricalChoice;
}
interface CaseReference {
  name: string;
  direction: "minimize" | "maximize";
  options: { [k: string]: number | boolean };
  /** Optuna's JSON of each distribution the trials use; a trial's `distributions` index it. */
  distributionTable: string[];
  trials: { state: "COMPLETE" | "PRUNED" | "FAIL"; value: number | null; params: { [k: string]: CategoricalChoice }; distributions: { [k: string]: number }; intermediate: { [k: string]: number } }[];
  params: { [name: string]: ParamReference };
}
/** The shape of `tpe-reference.fixture.ts`. */
export interface TpeReference {
  optuna: string;
  numpy: string;
  eiCandidates: number;
  cases: CaseReference[];
  numerics: {
    x: number[];
    erf: number[];
    erfc: number[];
    optunaErf: number[];
    logNdtr: number[];
    ab: [number, number][];
    logGaussMass: number[];
    q: number[];
    ppf: number[];
    xIn: number[];
    logPdf: number[];
    arrays: number[][];
    argsort: number[][];
    defaultWeights: { [n: string]: number[] };
  };
}

const ref = tpeReference;

/** Relative difference; equal infinities and NaN/NaN are 0; against 0 it is the absolute difference. */
function rel(a: number | null | undefined, b: number | null | undefined): number {
  if (a === b || (Number.isNaN(a) && Number.isNaN(b))) return 0;
  if (a === null || b === null || a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b)) return Number.POSITIVE_INFINITY;
  return Math.abs(a - b) / (b === 0 ? 1 : Math.abs(b));
}
const maxRel = (a: readonly (number | null)[], b: readonly (number | null)[]) => {
  expect(a.length).toBe(b.length);
  return a.reduce<number>((m, x, i) => Math.max(m, rel(x, b[i])), 0);
};

/** Largest difference per quantity, over every case (printed with FITLOOP_TPE_REPORT=1). */
const worst = new Map<string, number>();
const note = (what: string, d: number) => worst.set(what, Math.max(worst.get(what) ?? 0, d));
const TOL = 1e-9;

function records(c: CaseReference): TrialRecord[] {
  return c.trials.map((t, i) => {
    const distributions = Object.fromEntries(Object.entries(t.distributions).map(([k, d]) => [k, distributionFromJson(c.distributionTable[d]!)]));
    return {
      id: i,
      number: i,
      studyId: 0,
      state: t.state,
      value: t.value ?? undefined,
      values: t.value === null ? null : [t.value],
      params: t.params,
      distributions,
      intermediateValues: Object.fromEntries(Object.entries(t.intermediate).map(([k, v]) => [Number(k), v])),
      userAttrs: {},
      systemAttrs: {},
      datetimeStart: null,
      datetimeComplete: null,
    };
  });
}

const PY_OPTION: { [k: string]: keyof TpeSamplerOptions } = { prior_weight: "priorWeight", consider_magic_clip: "considerMagicClip", consider_endpoints: "considerEndpoints", consider_prior: "considerPrior", n_ei_candidates: "eiCandidates", n_startup_trials: "startupTrials" };
const tsOptions = (c: CaseReference): TpeSamplerOptions => Object.fromEntries(Object.entries(c.options).map(([k, v]) => [PY_OPTION[k] ?? k, v]));
const estimatorParameters = (o: TpeSamplerOptions): ParzenEstimatorParameters => ({
  considerPrior: o.considerPrior ?? true,
  priorWeight: o.priorWeight ?? 1,
  considerMagicClip: o.considerMagicClip ?? true,
  considerEndpoints: o.considerEndpoints ?? false,
  weights: defaultWeights,
});

function compareEstimator(ours: ParzenEstimator, theirs: EstimatorDump, where: string): void {
  note("weights", maxRel(ours.weights, theirs.weights));
  if (theirs.categoricalWeights) {
    theirs.categoricalWeights.forEach((row, i) => note("categorical weights", maxRel(ours.categoricalWeights![i]!, row)));
    expect(ours.categoricalWeights, where).toHaveLength(theirs.categoricalWeights.length);
  } else {
    expect(ours.q, where).toBe(theirs.q);
    note("bounds", Math.max(rel(ours.low, theirs.low), rel(ours.high, theirs.high))); // np.log and Math.log may differ in the last bit
    note("mus", maxRel(ours.mus!, theirs.mus!));
    note("sigmas", maxRel(ours.sigmas!, theirs.sigmas!));
  }
}

/** Replays numpy's uniforms, then fails: a sampler must not draw more than Optuna did. */
function replay(uniforms: readonly number[]): () => number {
  let i = 0;
  return () => {
    if (i >= uniforms.length) throw new Error("drew more uniforms than numpy");
    return uniforms[i++]!;
  };
}

describe(`TPE against Optuna ${ref.optuna} (numpy ${ref.numpy})`, () => {
  it("the truncated-normal numerics: Python's erf/erfc, Optuna's numpy erf, log-CDF, Gaussian mass, ppf and log-pdf to 1e-9 relative; numpy's argsort ties exactly", () => {
    const n = ref.numerics;
    note("erf", maxRel(n.x.map(erf), n.erf));
    note("erfc", maxRel(n.x.map(erfc), n.erfc));
    note("optuna erf", maxRel(n.x.map(erfOptuna), n.optunaErf));
    note("log ndtr", maxRel(n.x.map(logNdtr), n.logNdtr));
    note("log gauss mass", maxRel(n.ab.map(([a, b]) => logGaussMass(a, b)), n.logGaussMass));
    note("ppf", maxRel(n.ab.map(([a, b], i) => truncnormPpf(n.q[i]!, a, b)), n.ppf));
    note("truncnorm log-pdf", maxRel(n.ab.map(([a, b], i) => truncnormLogPdf(n.xIn[i]!, a, b, 0.3, 1.7)), n.logPdf));
    for (const k of ["erf", "erfc", "optuna erf", "log ndtr", "log gauss mass", "ppf", "truncnorm log-pdf"]) expect(worst.get(k), k).toBeLessThan(TOL);
    n.arrays.forEach((a, i) => expect(argsortNumpy(a), `array ${i} (${a.length})`).toEqual(n.argsort[i]));
    for (const [k, w] of Object.entries(n.defaultWeights)) expect(maxRel(defaultWeights(Number(k)), w), `default_weights(${k})`).toBeLessThan(1e-15);
  });

  for (const c of ref.cases) {
    describe(c.name, () => {
      const trials = records(c);
      const options = tsOptions(c);
      for (const [name, p] of Object.entries(c.params)) {
        const d = distributionFromJson(p.distribution);
        it(`${name}: observation pairs, split, both Parzen estimators and their log-pdf`, () => {
          const pairs = observationPairs(trials, name, d, c.direction);
          expect(pairs.values).toEqual(p.values);
          expect(pairs.scores.map(([s, v]) => [s, v])).toEqual(p.scores);
          expect(pairs.scores.length).toBe(p.n);
          const split = splitObservationPairs(pairs.scores, p.nBelow);
          expect(split).toEqual({ below: p.below, above: p.above });
          const { below, above } = tpeEstimators(pairs.values, split, d, estimatorParameters(options));
          compareEstimator(below, p.estimatorBelow, "below");
          compareEstimator(above, p.estimatorAbove, "above");
          note("log-pdf", maxRel(below.logPdf(p.points), p.logPdfBelow));
          note("log-pdf", maxRel(above.logPdf(p.points), p.logPdfAbove));
          for (const k of ["bounds", "weights", "categorical weights", "mus", "sigmas", "log-pdf"]) expect(worst.get(k) ?? 0, k).toBeLessThan(TOL);
        });

        it(`${name}: given Optuna's candidates, the same log l, log g and pick; given numpy's uniforms, the same candidates and value`, () => {
          const pairs = observationPairs(trials, name, d, c.direction);
          const { below, above } = tpeEstimators(pairs.values, splitObservationPairs(pairs.scores, p.nBelow), d, estimatorParameters(options));
          const picked = tpeCompare(p.candidates, below, above);
          note("log l of candidates", maxRel(picked.logL, p.logL));
          note("log g of candidates", maxRel(picked.logG, p.logG));
          expect(picked.index).toBe(p.chosenIndex);
          // the candidates drawn from numpy's uniforms: Optuna's, to rounding
          const drawn = below.sample(replay(p.uniforms), options.eiCandidates ?? 24);
          note("candidates", maxRel(drawn, p.candidates));
          // the whole sampler, fed numpy's uniforms: Optuna's value
          const value = tpeSampler(options).sample({ space: { [name]: d }, trials, direction: c.direction, random: replay(p.uniforms) }, name, d);
          if (typeof value === "number" && typeof p.optunaValue === "number" && !Number.isInteger(p.optunaValue)) note("sampled value", rel(value, p.optunaValue));
          else expect(value).toBe(p.optunaValue);
          for (const k of ["log l of candidates", "log g of candidates", "candidates", "sampled value"]) expect(worst.get(k) ?? 0, k).toBeLessThan(TOL);
        });
      }
    });
  }

  it("(report)", () => {
    if (process.env["FITLOOP_TPE_REPORT"]) console.log([...worst].map(([k, v]) => `${k}: ${v.toExponential(2)}`).join("\n"));
    expect(worst.size).toBeGreaterThan(10);
  });
});

// ---------------------------------------------------------------- behaviour

const memory = () => ({ storage: new MemoryJournal(), name: "s" });

describe("TPE in tune()", () => {
  it("on a 1-D quadratic, 30 trials: TPE's best beats random search's in at least 9 of 10 seeds (sign test p ~ 0.01), with the same first 10 (random) trials", async () => {
    const space = { x: uniform(-10, 10) };
    const objective = ({ x }: { x: number }) => (x - 2.5) ** 2;
    let wins = 0;
    const ratios: number[] = [];
    for (let seed = 0; seed < 10; seed++) {
      const r = await tune({ study: memory(), space, trials: 30, seed, objective });
      const t = await tune({ study: memory(), space, trials: 30, seed, objective, sampler: tpeSampler() });
      expect(t.study.trials.slice(0, 10).map((x) => x.params)).toEqual(r.study.trials.slice(0, 10).map((x) => x.params));
      if (t.best!.value! < r.best!.value!) wins++;
      ratios.push(t.best!.value! / r.best!.value!);
    }
    expect(wins).toBeGreaterThanOrEqual(9);
    ratios.sort((a, b) => a - b);
    expect(ratios[4]!, "median ratio of best values").toBeLessThan(0.2);
  });

  it("randomSampler() gives exactly the parameters of the default; tpeSampler is reproducible from the seed", async () => {
    const space = { lr: logUniform(1e-5, 1e-1), units: int(8, 64, { step: 8 }), act: choice(["relu", "tanh", null]), p: uniform(0, 0.5, { step: 0.1 }) };
    const objective = (p: { lr: number; units: number }) => Math.log10(p.lr) ** 2 + p.units / 64;
    const a = await tune({ study: memory(), space, trials: 14, seed: 3, objective });
    const b = await tune({ study: memory(), space, trials: 14, seed: 3, objective, sampler: randomSampler() });
    expect(b.study.trials.map((t) => t.params)).toEqual(a.study.trials.map((t) => t.params));
    const t1 = await tune({ study: memory(), space, trials: 14, seed: 3, objective, sampler: tpeSampler() });
    const t2 = await tune({ study: memory(), space, trials: 14, seed: 3, objective, sampler: tpeSampler() });
    expect(t2.study.trials.map((t) => t.params)).toEqual(t1.study.trials.map((t) => t.params));
    expect(t1.study.trials.slice(10).map((t) => t.params)).not.toEqual(a.study.trials.slice(10).map((t) => t.params));
    for (const t of t1.study.trials) {
      const p = t.params as { lr: number; units: number; act: string | null; p: number };
      expect(p.lr).toBeGreaterThanOrEqual(1e-5);
      expect(p.lr).toBeLessThanOrEqual(1e-1);
      expect(p.units % 8).toBe(0);
      expect(["relu", "tanh", null]).toContain(p.act);
      expect([0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5]).toContain(p.p);
    }
  });

  it("`sampler` is validated: not a sampler, or bad TPE options, is an OptionsError naming the option", async () => {
    const bad = tune({ study: memory(), space: { x: uniform(0, 1) }, trials: 1, objective: () => 0, sampler: {} as never });
    await expect(bad).rejects.toThrow(OptionsError);
    await expect(bad).rejects.toThrow(/sampler/);
    expect(() => tpeSampler({ startupTrials: -1 })).toThrow(/startupTrials/);
    expect(() => tpeSampler({ eiCandidates: 0 })).toThrow(/eiCandidates/);
    expect(() => tpeSampler({ priorWeight: 0 })).toThrow(/priorWeight/);
    expect(() => tpeSampler({ gamma: 3 as never })).toThrow(/gamma/);
    expect(() => tpeSampler({ nStartupTrials: 3 } as never)).toThrow(/nStartupTrials/);
  });
});

// ---------------------------------------------------------------- odd studies

function trial(number: number, state: TrialRecord["state"], value: number | null, params: { [k: string]: CategoricalChoice }, distributions: { [k: string]: ParamDistribution }, intermediate: { [step: number]: number } = {}): TrialRecord {
  return { id: number, number, studyId: 0, state, value: value ?? undefined, values: value === null ? null : [value], params, distributions, intermediateValues: intermediate, userAttrs: {} as JsonObject, systemAttrs: {}, datetimeStart: null, datetimeComplete: null };
}
const stream = (seed: number) => {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
};
const ctx = (trials: TrialRecord[], d: ParamDistribution, seed = 1, direction: "minimize" | "maximize" = "minimize"): SamplerContext => ({ space: { x: d }, trials, direction, random: stream(seed) });
const inside = (d: ParamDistribution, v: CategoricalChoice) => {
  if (d.kind === "categorical") return d.choices.includes(v);
  return typeof v === "number" && v >= d.low && v <= d.high && (d.kind === "float" ? d.step === null || Math.abs((v - d.low) / d.step - Math.round((v - d.low) / d.step)) < 1e-9 : (v - d.low) % d.step === 0);
};

describe("TPE on odd studies", () => {
  const x = uniform(-5, 5);
  const history = (n: number, d: ParamDistribution = x, f = (i: number) => ((i * 7919) % 1000) / 100 - 5) => Array.from({ length: n }, (_, i) => trial(i, "COMPLETE", f(i) ** 2, { x: f(i) }, { x: d }));

  it("an empty study, or fewer finished trials than startupTrials (RUNNING, WAITING and FAIL do not count): the random sampler's draw", () => {
    const tpe = tpeSampler();
    expect(tpe.sample(ctx([], x), "x", x)).toBe(sample(x, stream(1)));
    const some = [...history(9), trial(9, "FAIL", null, { x: 1 }, { x }), trial(10, "RUNNING", null, { x: 1 }, { x }), trial(11, "WAITING", null, {}, {})];
    expect(tpe.sample(ctx(some, x, 5), "x", x)).toBe(sample(x, stream(5)));
    // the tenth finished trial (PRUNED counts) switches TPE on
    const ten = [...some, trial(12, "PRUNED", null, { x: 0 }, { x }, { 0: 3 })];
    expect(tpe.sample(ctx(ten, x, 5), "x", x)).not.toBe(sample(x, stream(5)));
    // during startup a single-valued distribution draws as randomSampler() does, so the two stay in step
    for (const d of [int(3, 3), choice(["only"]), uniform(1, 1)]) {
      const count = (s: { sample: typeof tpe.sample }) => {
        let n = 0;
        s.sample({ space: {}, trials: [], direction: "minimize", random: () => (n++, 0.5) }, "x", d);
        return n;
      };
      expect(count(tpe), JSON.stringify(d)).toBe(count(randomSampler()));
    }
    // startupTrials 0 on an empty study: the prior alone
    for (const d of [x, logUniform(1e-4, 1), int(1, 9, { step: 2 }), int(1, 100, { log: true }), uniform(0, 1, { step: 0.25 }), choice(["a", "b"])]) {
      for (let s = 0; s < 20; s++) expect(inside(d, tpeSampler({ startupTrials: 0 }).sample(ctx([], d, s), "x", d))).toBe(true);
    }
  });

  it("NaN and infinite values, a NaN last intermediate value, PRUNED without reports: ranked as Optuna ranks them, the draw stays in range", () => {
    const odd = [
      ...history(10),
      trial(10, "COMPLETE", Number.NaN, { x: 4.9 }, { x }),
      trial(11, "COMPLETE", Number.POSITIVE_INFINITY, { x: -4.9 }, { x }),
      trial(12, "COMPLETE", Number.NEGATIVE_INFINITY, { x: 0.5 }, { x }),
      trial(13, "PRUNED", null, { x: 2 }, { x }, { 0: 1, 4: Number.NaN }),
      trial(14, "PRUNED", null, { x: 3 }, { x }),
    ];
    const { scores } = observationPairs(odd, "x", x, "minimize");
    expect(scores.slice(10)).toEqual([[Number.NEGATIVE_INFINITY, Number.NaN], [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY], [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY], [-4, Number.POSITIVE_INFINITY], [1, 0]]);
    const split = splitObservationPairs(scores, 2);
    expect(split.below).toContain(12); // -inf is the best value
    expect(split.below).not.toContain(10); // NaN ranks after every value
    for (let s = 0; s < 30; s++) {
      const v = tpeSampler().sample(ctx(odd, x, s), "x", x);
      expect(Number.isFinite(v) && inside(x, v), `seed ${s}: ${String(v)}`).toBe(true);
    }
    // maximize flips the values: +inf is the best
    expect(splitObservationPairs(observationPairs(odd, "x", x, "maximize").scores, 1).below).toEqual([11]);
  });

  it("trials without the parameter count for n and the split, and are left out of the estimators; none with it: the prior alone", () => {
    const other = Array.from({ length: 12 }, (_, i) => trial(i, "COMPLETE", i, { y: i }, { y: uniform(0, 20) }));
    const { values, scores } = observationPairs(other, "x", x, "minimize");
    expect(values).toEqual(Array(12).fill(null));
    expect(scores).toHaveLength(12);
    const { below, above } = tpeEstimators(values, splitObservationPairs(scores, 2), x, { considerPrior: true, priorWeight: 1, considerMagicClip: true, considerEndpoints: false, weights: defaultWeights });
    expect(below.mus).toEqual([0]);
    expect(above.sigmas).toEqual([10]);
    for (let s = 0; s < 20; s++) expect(inside(x, tpeSampler().sample(ctx(other, x, s), "x", x))).toBe(true);
  });

  it("a parameter whose distribution changed: a compatible one (another range) is used as Optuna uses it, an incompatible one (another kind, choices or scale) is left out", () => {
    const wide = uniform(-50, 50);
    const mixed = [
      ...history(6),
      ...history(3, wide, (i) => 40 + i).map((t, i) => ({ ...t, number: 6 + i, id: 6 + i })),
      trial(9, "COMPLETE", 0.1, { x: "a" }, { x: choice(["a", "b"]) }),
      trial(10, "COMPLETE", 0.2, { x: 3 }, { x: int(0, 5) }),
      trial(11, "COMPLETE", 0.3, { x: 0.5 }, { x: logUniform(0.1, 1) }),
    ];
    const { values } = observationPairs(mixed, "x", x, "minimize");
    expect(values.slice(6)).toEqual([40, 41, 42, null, null, null]);
    for (let s = 0; s < 20; s++) expect(inside(x, tpeSampler().sample(ctx(mixed, x, s), "x", x))).toBe(true);
    // a categorical whose choices changed is incompatible too
    const c2 = choice(["a", "b", "c"]);
    expect(observationPairs([trial(0, "COMPLETE", 1, { x: "a" }, { x: choice(["a", "b"]) })], "x", c2, "minimize").values).toEqual([null]);
  });

  it("a single-valued distribution gives its value without drawing; a bad gamma or weights function is an OptionsError naming it", () => {
    const never = () => expect.unreachable("drew");
    expect(tpeSampler().sample({ space: {}, trials: history(20), direction: "minimize", random: never }, "x", uniform(2, 2))).toBe(2);
    expect(tpeSampler().sample({ space: {}, trials: history(20), direction: "minimize", random: never }, "x", int(3, 3))).toBe(3);
    expect(tpeSampler().sample({ space: {}, trials: history(20), direction: "minimize", random: never }, "x", choice(["only"]))).toBe("only");
    expect(() => tpeSampler({ gamma: () => -1 }).sample(ctx(history(12), x), "x", x)).toThrow(/gamma\(12\) returned -1/);
    expect(() => tpeSampler({ gamma: () => 1.5 }).sample(ctx(history(12), x), "x", x)).toThrow(OptionsError);
    expect(() => tpeSampler({ weights: (n) => Array<number>(n).fill(-1) }).sample(ctx(history(12), x), "x", x)).toThrow(/weights.*negative/);
    expect(() => tpeSampler({ weights: (n) => Array<number>(n).fill(0) }).sample(ctx(history(12), x), "x", x)).toThrow(/weights.*all-zero/);
    expect(() => tpeSampler({ weights: (n) => Array<number>(n).fill(Number.NaN) }).sample(ctx(history(12), x), "x", x)).toThrow(/weights.*NaN/);
    // a gamma above n puts every trial below (Optuna slices), g(x) is the prior alone
    expect(inside(x, tpeSampler({ gamma: (n) => n + 5 }).sample(ctx(history(12), x), "x", x))).toBe(true);
  });

  it("every kind of distribution, on random histories: draws stay in range and on the grid", () => {
    const dists: ParamDistribution[] = [uniform(-1, 1), uniform(0, 1, { step: 0.1 }), logUniform(1e-6, 1e2), int(-3, 17), int(0, 100, { step: 10 }), int(1, 4096, { log: true }), choice([1, "two", null, true])];
    for (const d of dists) {
      for (let s = 0; s < 6; s++) {
        const r = stream(100 + s);
        const trials = Array.from({ length: 30 }, (_, i) => {
          const v = sample(d, r);
          const state = i % 5 === 4 ? "PRUNED" : "COMPLETE";
          return trial(i, state, state === "COMPLETE" ? r() : null, { x: v }, { x: d }, state === "PRUNED" ? { [i % 3]: r() } : {});
        });
        for (const direction of ["minimize", "maximize"] as const) {
          const v = tpeSampler().sample(ctx(trials, d, s, direction), "x", d);
          expect(inside(d, v), `${JSON.stringify(d)}: ${String(v)}`).toBe(true);
        }
      }
    }
  });
});
