#!/usr/bin/python3
"""Reference values for fitloop's TPE port, computed by Optuna 3.1 itself.

Run with Debian's python (python3-optuna 3.1, numpy 1.24):

    /usr/bin/python3 packages/recipes/scripts/tpe-reference.py > packages/recipes/src/tuner/tpe-reference.fixture.ts

It writes a TypeScript module: for a few studies (log/linear/stepped floats, ints, categoricals,
PRUNED trials with and without intermediate values, NaN/inf values, FAIL trials, trials missing a
parameter, a parameter recorded with an older range; minimize and maximize) Optuna's observation
pairs, below/above split, both `_ParzenEstimator`s (weights, mus, sigmas, categorical weights), their
log-pdf at fixed points, and one full `TPESampler.sample_independent` call: the uniforms numpy drew,
the candidates, log l, log g and the value Optuna returned. Also the truncated-normal numerics
(`math.erf`/`erfc`, `_erf.erf`, `_log_ndtr`, `_log_gauss_mass`, `ppf`, `logpdf`) and numpy's
`argsort` on arrays with ties.
"""
import json
import math
import sys
import warnings

warnings.simplefilter("ignore")

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution, distribution_to_json
from optuna.samplers import TPESampler
from optuna.samplers._tpe import _truncnorm as truncnorm
from optuna.samplers._tpe._erf import erf as optuna_erf
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator
from optuna.samplers._tpe.sampler import _get_observation_pairs, _split_observation_pairs, default_gamma
from optuna.trial import TrialState, create_trial

optuna.logging.set_verbosity(optuna.logging.ERROR)

N_EI = 24
SEED = 1234


def floats(xs):
    return [float(x) for x in xs]


def make_trials(rs, space, n, objective, *, pruned_every=0, fail_every=0, missing=None, nan_every=0, old=None):
    """`n` trials over `space` (name -> distribution), drawn from `rs`; every `pruned_every`-th is PRUNED
    at a step that varies (some with a NaN last value, some with no intermediate values)."""
    out = []
    for i in range(n):
        params, dists = {}, {}
        for name, d in space.items():
            if missing and name in missing and i % missing[name] == 1:
                continue
            dd = old[name] if old and name in old and i < old[name][1] else d
            if isinstance(dd, tuple):
                dd = dd[0]
            if isinstance(dd, CategoricalDistribution):
                v = dd.choices[rs.randint(len(dd.choices))]
            elif isinstance(dd, IntDistribution):
                if dd.log:
                    v = int(min(dd.high, max(dd.low, round(math.exp(rs.uniform(math.log(dd.low), math.log(dd.high)))))))
                else:
                    v = int(dd.low + dd.step * rs.randint((dd.high - dd.low) // dd.step + 1))
            elif dd.log:
                v = float(math.exp(rs.uniform(math.log(dd.low), math.log(dd.high))))
            elif dd.step is not None:
                v = float(dd.low + dd.step * rs.randint(int(round((dd.high - dd.low) / dd.step)) + 1))
            else:
                v = float(rs.uniform(dd.low, dd.high))
            params[name], dists[name] = v, dd
        value = objective(params, rs)
        if fail_every and i % fail_every == fail_every - 1:
            out.append(dict(state="FAIL", value=None, params=params, dists=dists, iv={}))
        elif pruned_every and i % pruned_every == pruned_every - 1:
            k = (i // pruned_every) % 4
            if k == 0:
                iv = {}
            elif k == 1:
                iv = {0: value * 1.5, 2: value * 1.2}
            elif k == 2:
                iv = {0: value * 2.0, 1: float("nan")}
            else:
                iv = {s: value * (1 + 1 / (s + 1)) for s in range(5)}
            out.append(dict(state="PRUNED", value=None, params=params, dists=dists, iv=iv))
        else:
            if nan_every and i % nan_every == nan_every - 1:
                value = [float("nan"), float("inf"), float("-inf")][(i // nan_every) % 3]
            out.append(dict(state="COMPLETE", value=float(value), params=params, dists=dists, iv={}))
    return out


def build_study(direction, trials):
    study = optuna.create_study(direction=direction)
    for t in trials:
        state = TrialState[t["state"]]
        study.add_trial(
            create_trial(
                state=state,
                value=t["value"] if state == TrialState.COMPLETE else None,
                params=t["params"],
                distributions=t["dists"],
                intermediate_values=t["iv"],
            )
        )
    return study


def estimator_dump(pe, name, dist):
    out = {"weights": floats(pe._weights)}
    if isinstance(dist, CategoricalDistribution):
        out["categoricalWeights"] = [floats(r) for r in pe._categorical_weights[name]]
    else:
        out.update(low=float(pe._low[name]), high=float(pe._high[name]), q=None if pe._q[name] is None else float(pe._q[name]),
                   mus=floats(pe._mus[name]), sigmas=floats(pe._sigmas[name]))
    return out


def probe_points(dist):
    """Internal values where the log-pdfs are compared."""
    if isinstance(dist, CategoricalDistribution):
        return list(range(len(dist.choices)))
    if isinstance(dist, IntDistribution):
        if dist.log:
            return floats(sorted(set(int(round(x)) for x in np.exp(np.linspace(math.log(dist.low), math.log(dist.high), 40)))))
        return floats(range(dist.low, dist.high + 1, dist.step))
    if dist.step is not None:
        k = int(round((dist.high - dist.low) / dist.step))
        return floats(np.linspace(dist.low, dist.high, k + 1))
    if dist.log:
        return floats(np.exp(np.linspace(math.log(dist.low), math.log(dist.high), 41)))
    return floats(np.linspace(dist.low, dist.high, 41))


def case(name, direction, space, trials, *, params=None):
    study = build_study(direction, trials)
    sampler_kwargs = params or {}
    pe_params = TPESampler(**sampler_kwargs)._parzen_estimator_parameters
    gamma = sampler_kwargs.get("gamma", default_gamma)
    n_ei = sampler_kwargs.get("n_ei_candidates", N_EI)
    results = {}
    for pname, dist in space.items():
        values, scores, _ = _get_observation_pairs(study, [pname], False, False)
        n = sum(s < float("inf") for s, _ in scores)
        n_below = gamma(n)
        ib, ia = _split_observation_pairs(scores, n_below, None)
        cv = np.asarray(values[pname], dtype=float)
        mask = ~np.isnan(cv)
        below = {pname: cv[ib[mask[ib]]]}
        above = {pname: cv[ia[mask[ia]]]}
        pb = _ParzenEstimator(below, {pname: dist}, pe_params)
        pa = _ParzenEstimator(above, {pname: dist}, pe_params)
        points = probe_points(dist)
        pts = np.asarray(points, dtype=int if isinstance(dist, CategoricalDistribution) else float)
        # one sample_independent call, replayed step by step from the same seed, and checked against Optuna's own
        uniforms = floats(np.random.RandomState(SEED).random_sample(2 * n_ei))
        rng = np.random.RandomState(SEED)
        cand = pb.sample(rng, n_ei)
        log_l = pb.log_pdf(cand)
        log_g = pa.log_pdf(cand)
        chosen = TPESampler._compare(cand, log_l, log_g)[pname]
        sampler = TPESampler(seed=SEED, **sampler_kwargs)
        optuna_value = sampler.sample_independent(study, study.trials[0], pname, dist)
        expected = dist.to_external_repr(chosen)
        assert optuna_value == expected or (isinstance(expected, float) and math.isnan(expected)), (name, pname, optuna_value, expected)
        results[pname] = {
            "distribution": distribution_to_json(dist),
            "values": [None if v is None else float(v) for v in values[pname]],
            "scores": [[float(s), float(v[0])] for s, v in scores],
            "n": int(n),
            "nBelow": int(n_below),
            "below": [int(i) for i in ib],
            "above": [int(i) for i in ia],
            "estimatorBelow": estimator_dump(pb, pname, dist),
            "estimatorAbove": estimator_dump(pa, pname, dist),
            "points": points,
            "logPdfBelow": floats(pb.log_pdf({pname: pts})),
            "logPdfAbove": floats(pa.log_pdf({pname: pts})),
            "uniforms": uniforms,
            "candidates": floats(cand[pname]),
            "logL": floats(log_l),
            "logG": floats(log_g),
            "chosenIndex": int(np.argmax(log_l - log_g)),
            "optunaValue": optuna_value,
        }
    table = []

    def dist_index(d):
        j = distribution_to_json(d)
        if j not in table:
            table.append(j)
        return table.index(j)

    trials_out = [
            {
                "state": t.state.name,
                "value": t.value,
                "params": t.params,
                "distributions": {k: dist_index(d) for k, d in t.distributions.items()},
                "intermediate": {str(k): v for k, v in t.intermediate_values.items()},
            }
            for t in study.trials
    ]
    return {
        "name": name,
        "direction": direction,
        "options": {k: v for k, v in sampler_kwargs.items() if k != "gamma"},
        "distributionTable": table,
        "trials": trials_out,
        "params": results,
    }


def main():
    rs = np.random.RandomState(7)
    cases = []

    lr_space = {"lr": FloatDistribution(1e-5, 1e-1, log=True), "units": IntDistribution(8, 64, step=8)}
    lr_obj = lambda p, rs: (math.log10(p.get("lr", 1e-3)) + 3) ** 2 + p.get("units", 32) / 100 + rs.normal(0, 0.05)
    cases.append(case("float-log, stepped int, PRUNED and FAIL trials, a trial missing a param (minimize)", "minimize", lr_space,
                      make_trials(rs, lr_space, 30, lr_obj, pruned_every=4, fail_every=9, missing={"units": 7})))

    lin_space = {"x": FloatDistribution(-5, 5)}
    cases.append(case("float-linear, 45 trials: above weights ramp (maximize)", "maximize", lin_space,
                      make_trials(rs, lin_space, 45, lambda p, rs: -((p["x"] - 1.3) ** 2) + rs.normal(0, 0.1), pruned_every=6)))

    step_space = {"dropout": FloatDistribution(0.0, 0.5, step=0.1), "wd": FloatDistribution(0.0, 1.0, step=0.25)}
    cases.append(case("float with step: many ties (minimize)", "minimize", step_space,
                      make_trials(rs, step_space, 40, lambda p, rs: abs(p["dropout"] - 0.2) + p["wd"] + rs.normal(0, 0.01), pruned_every=5)))

    int_space = {"k": IntDistribution(1, 20), "layers": IntDistribution(1, 1024, log=True), "units": IntDistribution(0, 100, step=5)}
    cases.append(case("int, int log, int step: ties past numpy's insertion-sort size (minimize)", "minimize", int_space,
                      make_trials(rs, int_space, 70, lambda p, rs: (p["k"] - 7) ** 2 + math.log2(p["layers"]) + p["units"] / 50 + rs.normal(0, 0.5), pruned_every=7, fail_every=11)))

    cat_space = {"opt": CategoricalDistribution(["adam", "sgd", "rmsprop", 1, None]), "flag": CategoricalDistribution([True, False])}
    cat_obj = lambda p, rs: {"adam": 0.1, "sgd": 0.5, "rmsprop": 0.3, 1: 0.9, None: 0.7}[p["opt"]] + (0.2 if p["flag"] else 0) + rs.normal(0, 0.05)
    cases.append(case("categorical (maximize)", "maximize", cat_space, make_trials(rs, cat_space, 32, cat_obj, pruned_every=5)))

    nan_space = {"x": FloatDistribution(0, 10), "c": CategoricalDistribution(["a", "b", "c"])}
    cases.append(case("NaN and +-inf values of COMPLETE trials (minimize)", "minimize", nan_space,
                      make_trials(rs, nan_space, 24, lambda p, rs: p["x"] + rs.normal(0, 1), nan_every=5, pruned_every=6)))

    big_space = {"lr": FloatDistribution(1e-4, 1.0, log=True), "n": IntDistribution(1, 8)}
    cases.append(case("260 trials: gamma capped at 25, weights ramp (minimize)", "minimize", big_space,
                      make_trials(rs, big_space, 260, lambda p, rs: (math.log10(p["lr"]) + 2) ** 2 + abs(p["n"] - 3) + rs.normal(0, 0.3), pruned_every=8)))

    old_space = {"x": FloatDistribution(0, 5)}
    cases.append(case("a range changed: older trials recorded uniform(0, 10), values outside the new range (minimize)", "minimize", old_space,
                      make_trials(rs, old_space, 26, lambda p, rs: (p["x"] - 4) ** 2, old={"x": (FloatDistribution(0, 10), 12)})))

    opt_space = {"x": FloatDistribution(-3, 3), "y": IntDistribution(0, 9)}
    cases.append(case("options: prior weight 2, no magic clip, endpoints, no prior, 8 candidates (maximize)", "maximize", opt_space,
                      make_trials(rs, opt_space, 20, lambda p, rs: -abs(p["x"]) - abs(p["y"] - 4) + rs.normal(0, 0.1), pruned_every=4),
                      params={"prior_weight": 2.0, "consider_magic_clip": False, "consider_endpoints": True, "consider_prior": False, "n_ei_candidates": 8, "n_startup_trials": 5}))

    # numerics
    xs = floats(np.concatenate([rs.uniform(-8, 8, 200), rs.uniform(-1.5, 1.5, 100), rs.uniform(-40, 40, 60),
                                [0.0, 1e-30, -1e-30, 0.84375, -0.84375, 1.25, -1.25, 1 / 0.35, 6.0, -6.0, 28.0, -28.0, 30.0, -30.0, 0.25, -0.25, -20.0, -20.5, -37.0]]))
    ab = [(float(a), float(a + abs(d))) for a, d in zip(rs.uniform(-30, 30, 150), rs.uniform(0, 10, 150))]
    ab += [(-1.0, 1.0), (0.0, 2.0), (-2.0, 0.0), (-50.0, -45.0), (45.0, 50.0), (-1e-3, 1e-3), (-40.0, 40.0), (3.0, 3.0)]
    qs = floats(rs.uniform(0, 1, len(ab)))
    qs[-2:] = [0.0, 0.5]
    xin = floats(np.array([a for a, b in ab]) + rs.uniform(0, 1, len(ab)) * np.array([b - a for a, b in ab]))
    arrays = [floats(rs.randint(0, k, n)) for n, k in [(5, 2), (16, 3), (17, 3), (30, 4), (100, 5), (300, 10), (64, 64), (200, 2)]]
    numerics = {
        "x": xs,
        "erf": [math.erf(x) for x in xs],
        "erfc": [math.erfc(x) for x in xs],
        "optunaErf": floats(optuna_erf(np.asarray(xs))),
        "logNdtr": [truncnorm._log_ndtr_single(x) for x in xs],
        "ab": [list(p) for p in ab],
        "logGaussMass": [float(truncnorm._log_gauss_mass(np.array([a]), np.array([b]))[0]) for a, b in ab],
        "q": qs,
        "ppf": [float(truncnorm.ppf(np.array([q]), np.array([a]), np.array([b]))[0]) for q, (a, b) in zip(qs, ab)],
        "xIn": xin,
        "logPdf": [float(truncnorm.logpdf(np.array([x]), a, b, loc=0.3, scale=1.7)[0]) for x, (a, b) in zip(xin, ab)],
        "arrays": arrays,
        "argsort": [[int(i) for i in np.argsort(np.asarray(a))] for a in arrays],
        "defaultWeights": {str(n): floats(optuna.samplers._tpe.sampler.default_weights(n)) for n in [0, 1, 24, 25, 26, 27, 40, 100]},
    }

    data = {"optuna": optuna.__version__, "numpy": np.__version__, "eiCandidates": N_EI, "cases": cases, "numerics": numerics}
    text = json.dumps(data, indent=None, separators=(",", ":"))
    sys.stdout.write(
        "// Generated by packages/recipes/scripts/tpe-reference.py with Optuna "
        + optuna.__version__ + " and numpy " + np.__version__ + ": do not edit, regenerate.\n"
        + "// Python's json (bare NaN/Infinity) is a JavaScript expression.\n"
        + "/* eslint-disable */\n"
        + "import type { TpeReference } from \"./tpe.test.js\";\n\n"
        + "export const tpeReference: TpeReference = " + text + ";\n"
    )


if __name__ == "__main__":
    main()
