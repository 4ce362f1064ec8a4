import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { useBackend } from "@fitloop/core";
import { WeightDecay } from "./index.js";
import { lrList, maxRelError, optimizerFor, torch, torchSteps, trainDense, type TorchCase } from "./harness.fixture.js";

/**
 * Against weights recorded from PyTorch 1.13 (scripts/torch-reference.py): a Dense 4->3 on fixed
 * inputs, MSE, 6 steps; only the kernel decays (torch: the bias in a weight_decay=0 group). Errors
 * are relative to the largest weight of each tensor (see maxRelError).
 *
 * tfjs's Adam and torch's put epsilon in the same place (after both bias corrections:
 * lr * m_hat / (sqrt(v_hat) + eps)), so with eps set to torch's 1e-8 on both (tfjs's default is
 * 1e-7) the formulas are the same. One difference is left: tfjs keeps beta2^t as a float32 product,
 * so 1 - 0.999^t is ~2e-5 off and every Adam step ~1e-5 too short (bias included, which does not
 * decay). The main cases use beta2 = 0.99 (~1e-6), and torch's default 0.999 gets a wider tolerance.
 * SGD with momentum has no such term and matches to ~1e-7.
 */
const TOLERANCE: Record<string, number> = { adamw: 1e-5, "adamw-scheduled": 1e-5, "adamw-beta2-0.999": 3e-5, "sgdw-momentum": 1e-6 };

const constant = (xs: readonly number[]) => xs.every((x) => x === xs[0]);
const decayFor = (c: TorchCase) => new WeightDecay({ weightDecay: constant(c.weightDecay) ? c.weightDecay[0]! : (step) => c.weightDecay[step]!, log: false });
const run = (c: TorchCase, withDecay = true) => trainDense(optimizerFor(c), [lrList(c.lr), ...(withDecay ? [decayFor(c)] : [])]);

const measured: Record<string, number> = {};

describe.each(["cpu", "wasm"] as const)("matches PyTorch on %s", (backend) => {
  it("the fixture is what the tests think it is", async () => {
    await useBackend(backend);
    expect(tf.getBackend()).toBe(backend);
    expect(torch.source).toMatch(/^PyTorch 1\.13/);
    expect(torch.cases.map((c) => c.id)).toEqual(Object.keys(TOLERANCE));
    for (const c of torch.cases) expect(c.kernel).toHaveLength(6);
  });

  it.each(torch.cases.map((c) => [c.id, c] as const))("%s: every weight after every step to float tolerance; without the plugin it is far off", async (id, c) => {
    const tolerance = TOLERANCE[id]!;
    const ours = await run(c);
    const ref = torchSteps(c);
    const err = maxRelError(ours.steps, ref);
    measured[`${backend} ${id}`] = err;
    expect(err, `${id} on ${backend}`).toBeLessThan(tolerance);
    // the decay is large enough here to matter: leaving it out misses by orders of magnitude more
    const plain = await run(c, false);
    expect(maxRelError(plain.steps, ref)).toBeGreaterThan(100 * tolerance);
  });
});

afterAll(() => {
  if (process.env["WD_REPORT"]) console.log("max relative error vs torch:", measured);
});
