import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { useBackend, type Callback, type RunSnapshot } from "@fitloop/core";
import { expectNoLeaks } from "@fitloop/core/testing";
import { dropLast, maxDiff, run } from "./harness.fixture.js";

beforeAll(async () => {
  await useBackend("wasm");
});

describe("on the wasm backend (fitloop's kernels)", () => {
  for (const opt of ["sgd", "adam"] as const) {
    it(`${opt}: 4 x 16 equals 64 after every step; a partial group steps as the big batch of the rest, or is dropped`, async () => {
      expect(tf.getBackend()).toBe("wasm");
      const big = await run({ samples: 256, batch: 64, optimizer: opt });
      const acc = await run({ samples: 256, batch: 16, optimizer: opt, accumulate: { steps: 4 } });
      const d = maxDiff(acc.steps, big.steps);
      console.log(`${opt} wasm: max |w(4x16) - w(64)| over 8 steps = ${d.toExponential(2)}`);
      expect(acc.steps).toHaveLength(8);
      expect(d).toBeLessThan(1e-6);
      // 104 samples: the second group is 16 + 16 + 8
      const bigRest = await run({ samples: 104, batch: 64, optimizer: opt });
      const step = await run({ samples: 104, batch: 16, optimizer: opt, accumulate: { steps: 4 } });
      expect(maxDiff(step.steps, bigRest.steps)).toBeLessThan(1e-6);
      const bigDrop = await run({ samples: 112, batch: 64, optimizer: opt, data: dropLast(64) });
      const drop = await run({ samples: 112, batch: 16, optimizer: opt, accumulate: { steps: 4, partial: "drop" } });
      expect(drop.result.state.step).toBe(2);
      expect(maxDiff(drop.steps, bigDrop.steps)).toBeLessThan(1e-6);
    });
  }

  it("a snapshot mid-group resumes to the same weights bit for bit, without tensor growth", async () => {
    const spec = { samples: 112, batch: 16, epochs: 3, optimizer: "adam" as const, accumulate: { steps: 4 } };
    const straight = await run(spec);
    const into: { snap?: RunSnapshot } = {};
    const saver: Callback = { name: "Saver", batchCheckpoint: async (ctx) => void (ctx.state.globalBatch === 10 && (into.snap = structuredClone(await ctx.snapshot()))) };
    await run({ ...spec, callbacks: [saver] });
    expect(into.snap!.trainer.plugins["grad-accumulation"]).toMatchObject({ microBatches: 3, samples: 48 });
    const resumed = await run({ ...spec, resumeFrom: into.snap! });
    expect(resumed.final).toEqual(straight.final);
    await expectNoLeaks(() => run({ ...spec, epochs: 1, resumeFrom: structuredClone(into.snap!), record: false }), { warmup: 1, iterations: 2 });
  });
});
