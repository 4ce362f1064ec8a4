import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { CancelEpoch, seeded, silentLogger, Trainer, type Callback } from "@fitloop/core";
import { DataLoader, gaussianNoise, streamData, twoSpirals, type Sample } from "./index.js";

/**
 * Review of issue 10: core now wraps every data source in its own async generator (named
 * SOURCE_FAILED errors) and checks batches as they come. A prefetching loader or stream that the
 * loop leaves early (a stop request mid-epoch, CancelEpoch, a hook that throws, in training and in
 * validation) must still get `return()`, so the batches it prepared are disposed: no tensor left.
 */
const data = twoSpirals({ samples: 96, seed: 3 });
const model = () =>
  seeded(1, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [2], units: 8, activation: "relu" }));
    m.add(tfl.layers.dense({ units: 2, activation: "softmax" }));
    return m;
  });
// transforms: no peekCoversBatches, so the per-batch device checks run too
const loader = (prefetch: number) => new DataLoader(data, { batchSize: 8, seed: 2, prefetch, transforms: [gaussianNoise({ std: 0.01 })] });
const stream = (prefetch: number) =>
  streamData(
    {
      size: data.size,
      *open(_epoch: number, start: number): Iterable<Sample> {
        for (let i = start; i < data.size; i++) yield { x: data.x.subarray(2 * i, 2 * i + 2), y: data.y[i]! };
      },
    },
    { batchSize: 8, sampleShape: [2], numClasses: 2, prefetch },
  );

const exits: [string, "train" | "validation", Callback][] = [
  ["a stop request mid-epoch", "train", { name: "Stop", afterBatch: (ctx) => (ctx.state.batchIndex === 2 ? ctx.requestStop("enough") : undefined) }],
  ["CancelEpoch in afterBatch", "train", { name: "Cut", afterBatch: (ctx) => { if (ctx.state.batchIndex === 2) throw new CancelEpoch("cut"); } }],
  ["a hook that throws in afterBatch", "train", { name: "Boom", afterBatch: (ctx) => { if (ctx.state.batchIndex === 2) throw new Error("boom"); } }],
  ["CancelEpoch in afterValBatch", "validation", { name: "CutVal", afterValBatch: () => { throw new CancelEpoch("cut"); } }],
  ["a throw in afterValBatch", "validation", { name: "BoomVal", afterValBatch: () => { throw new Error("boom"); } }],
];

describe("a source left early is returned: its prefetched batches are disposed", () => {
  for (const [kind, make] of [["DataLoader", loader], ["streamData", stream]] as const) {
    for (const depth of [1, 3]) {
      for (const [what, role, plugin] of exits) {
        it(`${kind} (prefetch ${depth}), ${what} (${role}): no tensor left behind`, async () => {
          const m = model();
          const t = new Trainer({ model: m, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [plugin] });
          const opts = role === "train" ? { epochs: 2, train: make(depth) } : { epochs: 2, train: make(depth), validation: make(depth) };
          await t.fit(opts).catch(() => undefined); // the optimizer's own tensors exist before counting
          const before = tf.memory().numTensors;
          await t.fit(opts).catch(() => undefined);
          // a prefetch timer may still be due: let it run, then count
          await new Promise((r) => setTimeout(r, 20));
          expect(tf.memory().numTensors).toBe(before);
          m.dispose();
        });
      }
    }
  }
});
