import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { ORDER, silentLogger, Trainer, useBackend, type Callback } from "@fitloop/core";
import { mlp } from "./harness.fixture.js";
import { GradAccumulation } from "./index.js";

/**
 * The float32 arithmetic of the group, bit for bit: the sums kept in units of a power-of-two first
 * micro-batch (no pass for it, weight 1 for the next ones) and the fused `axpyTensors` passes give
 * exactly what the weighted sums `sum += fround(n * g)` and the mean `fround(sum * fround(1 / samples))`
 * give, also with an uneven last micro-batch, and the saved state holds those weighted sums.
 */

const f = Math.fround;

interface Seen {
  /** Each micro-batch's gradients and size, in order. */
  micro: { n: number; grads: Float32Array[] }[];
  /** The plugin's saved sums after each micro-batch that did not close its group (null when it did). */
  states: (Float32Array[] | null)[];
  /** The gradients each applied update used. */
  applied: Float32Array[][];
}

async function observe(samples: number, batch: number): Promise<Seen> {
  const fx = mlp(samples);
  const plugin = new GradAccumulation({ steps: 4 });
  const seen: Seen = { micro: [], states: [], applied: [] };
  const read = (m: Readonly<tf.NamedTensorMap>) => Object.values(m).map((t) => t.dataSync().slice() as Float32Array);
  const before: Callback = { name: "Before", order: ORDER.GRADIENT - 60, afterGradients: (ctx) => void seen.micro.push({ n: ctx.batchSize, grads: read(ctx.grads!) }) };
  const after: Callback = {
    name: "After",
    order: ORDER.LAST,
    beforeStep: (ctx) => void (ctx.skipRequested || seen.applied.push(read(ctx.grads!))),
    afterBatch: () => {
      const s = plugin.stateDict() as { microBatches: number; sums: { values: Float32Array }[] };
      seen.states.push(s.microBatches > 0 ? s.sums.map((x) => x.values) : null);
    },
  };
  const trainer = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", seed: 3, logger: silentLogger, callbacks: [plugin, before, after] });
  try {
    await trainer.fit({ epochs: 1, train: fx.data(batch) });
  } finally {
    fx.dispose();
  }
  return seen;
}

/** The weighted-sum arithmetic, step by step in float32 (what the plugin computed before its sums were kept in units). */
function expected(seen: Seen): { states: (Float32Array[] | null)[]; applied: Float32Array[][] } {
  const states: (Float32Array[] | null)[] = [];
  const applied: Float32Array[][] = [];
  let sums: Float32Array[] | undefined;
  let samples = 0;
  seen.micro.forEach(({ n, grads }, i) => {
    const weighted = grads.map((g) => g.map((v) => f(n * v)));
    sums = sums ? sums.map((s, j) => s.map((v, k) => f(v + weighted[j]![k]!))) : weighted;
    samples += n;
    const closes = seen.states[i] === null;
    states.push(closes ? null : sums);
    if (closes) {
      applied.push(sums.map((s) => s.map((v) => f(v * f(1 / samples)))));
      sums = undefined;
      samples = 0;
    }
  });
  return { states, applied };
}

describe("the group's arithmetic is the weighted sums', bit for bit", () => {
  afterAll(async () => {
    await tf.setBackend("cpu");
  });

  // 100 samples: micro-batches 16 x 6 + 4 (groups 64 and 36: a last term of weight 1/4 in units of 16);
  // 12 x 8 + 4: not a power of two, the weighted sums themselves; 4 x 25: groups of 16 and a last group of one
  const cases: [string, number][] = [];
  for (const backend of ["cpu", "wasm"]) for (const batch of [16, 12, 4]) cases.push([backend, batch]);

  it.each(cases)("on %s, micro-batches of %d: the saved sums after every micro-batch and every applied mean", async (backend, batch) => {
    if (backend === "wasm") await useBackend("wasm");
    else await tf.setBackend("cpu");
    const seen = await observe(100, batch);
    expect(seen.micro).toHaveLength(Math.ceil(100 / batch));
    expect(seen.applied).toHaveLength(Math.ceil(Math.ceil(100 / batch) / 4));
    const want = expected(seen);
    expect(seen.states).toEqual(want.states);
    expect(seen.applied).toEqual(want.applied);
  });
});
