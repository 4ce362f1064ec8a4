import { describe, expect, it } from "vitest";
import { Rng } from "@fitloop/core";
import { choice, contains, distributionFromJson, distributionToJson, incompatibility, int, logUniform, sample, toExternal, toInternal, uniform } from "./index.js";

describe("search space", () => {
  it("each helper is Optuna's distribution, and its JSON is the string Optuna writes (checked against distribution_to_json of 3.1)", () => {
    expect(distributionToJson(logUniform(1e-5, 1e-1))).toBe('{"name": "FloatDistribution", "attributes": {"step": null, "low": 1e-05, "high": 0.1, "log": true}}');
    expect(distributionToJson(uniform(0, 0.5))).toBe('{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.0, "high": 0.5, "log": false}}');
    expect(distributionToJson(uniform(0, 0.5, { step: 0.1 }))).toBe('{"name": "FloatDistribution", "attributes": {"step": 0.1, "low": 0.0, "high": 0.5, "log": false}}');
    expect(distributionToJson(int(32, 256))).toBe('{"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 32, "high": 256}}');
    expect(distributionToJson(int(32, 256, { step: 32 }))).toBe('{"name": "IntDistribution", "attributes": {"log": false, "step": 32, "low": 32, "high": 256}}');
    expect(distributionToJson(int(32, 256, { log: true }))).toBe('{"name": "IntDistribution", "attributes": {"log": true, "step": 1, "low": 32, "high": 256}}');
    expect(distributionToJson(choice(["adam", "sgd"]))).toBe('{"name": "CategoricalDistribution", "attributes": {"choices": ["adam", "sgd"]}}');
    expect(distributionToJson(choice([1, "a", null, true, 2.5]))).toBe('{"name": "CategoricalDistribution", "attributes": {"choices": [1, "a", null, true, 2.5]}}');
    for (const d of [logUniform(1e-5, 1e-1), uniform(0, 0.5, { step: 0.1 }), int(1, 9, { step: 2 }), choice([true, null, "x"])]) expect(distributionFromJson(distributionToJson(d))).toEqual(d);
  });

  it("reads the deprecated classes and the short form Optuna still reads", () => {
    expect(distributionFromJson('{"name": "LogUniformDistribution", "attributes": {"low": 0.001, "high": 1.0}}')).toEqual(logUniform(1e-3, 1));
    expect(distributionFromJson('{"name": "DiscreteUniformDistribution", "attributes": {"low": 0.0, "high": 1.0, "q": 0.25}}')).toEqual(uniform(0, 1, { step: 0.25 }));
    expect(distributionFromJson('{"name": "IntUniformDistribution", "attributes": {"low": 0, "high": 10, "step": 2}}')).toEqual(int(0, 10, { step: 2 }));
    expect(distributionFromJson('{"type": "int", "low": 1, "high": 8, "log": true}')).toEqual(int(1, 8, { log: true }));
    expect(() => distributionFromJson('{"name": "Nope", "attributes": {}}')).toThrow(/unknown class Nope/);
  });

  it("internal values: a choice's index, an int truncated; compatibility as Optuna checks it", () => {
    const c = choice(["adam", "sgd", null]);
    expect(toInternal(c, "sgd")).toBe(1);
    expect(toExternal(c, 2)).toBe(null);
    expect(() => toInternal(c, "rmsprop")).toThrow(/"rmsprop" is not one of/);
    expect(toExternal(int(1, 10), 7.0)).toBe(7);
    expect(contains(int(0, 10, { step: 5 }), 5)).toBe(true);
    expect(contains(int(0, 10, { step: 5 }), 6)).toBe(false);
    expect(contains(uniform(0, 1, { step: 0.1 }), 0.30000000000000004)).toBe(true);
    expect(incompatibility(uniform(0, 1), uniform(0, 2))).toBeUndefined(); // another range is fine
    expect(incompatibility(logUniform(1e-3, 1), uniform(1e-3, 1))).toMatch(/log/);
    expect(incompatibility(choice(["a", "b"]), choice(["b", "a"]))).toMatch(/choices/);
    expect(incompatibility(int(0, 1), uniform(0, 1))).toMatch(/was int, now float/);
  });

  it("samples as Optuna's RandomSampler: log-uniform in log space, steps and ints with equal ends, choices uniform", () => {
    const rng = new Rng(5);
    const random = () => rng.next();
    const n = 20_000;
    const draw = <T>(f: () => T) => Array.from({ length: n }, f);
    const [log, ints, logInts, steps, abc] = [logUniform(1e-5, 1e-1), int(32, 256, { step: 32 }), int(1, 4, { log: true }), uniform(0, 0.5, { step: 0.1 }), choice(["a", "b", "c"])];
    const lr = draw(() => sample(log, random) as number);
    expect(Math.min(...lr)).toBeGreaterThanOrEqual(1e-5);
    expect(Math.max(...lr)).toBeLessThan(1e-1);
    const decades = [0, 1, 2, 3].map((k) => lr.filter((v) => v >= 10 ** (k - 5) && v < 10 ** (k - 4)).length / n);
    decades.forEach((f) => expect(f).toBeCloseTo(0.25, 1)); // a quarter per decade
    const units = draw(() => sample(ints, random) as number);
    const counts = new Map<number, number>();
    for (const u of units) counts.set(u, (counts.get(u) ?? 0) + 1);
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([32, 64, 96, 128, 160, 192, 224, 256]);
    for (const c of counts.values()) expect(c / n).toBeCloseTo(1 / 8, 1); // the ends as likely as the inside
    const small = draw(() => sample(logInts, random) as number);
    expect(new Set(small)).toEqual(new Set([1, 2, 3, 4]));
    const drop = draw(() => sample(steps, random) as number);
    expect(drop.every((v) => contains(steps, v))).toBe(true);
    const opts = draw(() => sample(abc, random));
    for (const o of ["a", "b", "c"]) expect(opts.filter((v) => v === o).length / n).toBeCloseTo(1 / 3, 1);
  });
});
