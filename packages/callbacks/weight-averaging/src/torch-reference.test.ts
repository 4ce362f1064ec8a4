import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { emaUpdate, swaLearningRate, swaUpdate, updateBatchNorm } from "./index.js";
import { expectClose } from "./helpers.fixture.js";

/** Recorded from PyTorch 1.13's `torch.optim.swa_utils` by scripts/torch-reference.py (inputs included). */
interface Fixture {
  source: string;
  averaging: { shapes: number[][]; weights: number[][][]; swa: number[][][]; ema: number[][][]; emaDecay: number };
  batchNorm: {
    linear1: { weight: number[]; bias: number[]; out: number; in: number };
    bn: { gamma: number[]; beta: number[]; eps: number };
    linear2: { weight: number[]; bias: number[]; out: number; in: number };
    batches: number[][];
    batchSize: number;
    runningMean: number[];
    runningVar: number[];
    momentumAfter: number;
  };
  swalr: { startLr: number; swaLr: number; annealEpochs: number; strategy: "cos" | "linear"; lr: number[] }[];
}
const fixture = JSON.parse(readFileSync(new URL("./torch-reference.fixture.json", import.meta.url), "utf8")) as Fixture;

/** Runs an update rule over the recorded weight sets as the plugins do (the first update copies). */
function replay(rule: (a: tf.Tensor[], w: tf.Tensor[], n: number) => tf.Tensor[]): number[][][] {
  const { shapes, weights } = fixture.averaging;
  let avg: tf.Tensor[] | undefined;
  const out: number[][][] = [];
  weights.forEach((set, n) => {
    const w = set.map((v, i) => tf.tensor(v, shapes[i]!, "float32"));
    const next = avg ? rule(avg, w, n) : w.map((t) => t.clone());
    tf.dispose([...(avg ?? []), ...w]);
    avg = next;
    out.push(avg.map((t) => Array.from(t.dataSync())));
  });
  tf.dispose(avg!);
  return out;
}

describe(`against PyTorch (${fixture.source})`, () => {
  it("swaUpdate gives AveragedModel's running mean bit for bit (same float32 operations), update after update", () => {
    expect(replay((a, w, n) => swaUpdate(a, w, n))).toEqual(fixture.averaging.swa);
  });

  it("emaUpdate gives AveragedModel with the EMA avg_fn (decay * a + (1 - decay) * w; ours is the lerp form) to float32 rounding", () => {
    const ours = replay((a, w) => emaUpdate(a, w, fixture.averaging.emaDecay));
    ours.forEach((step, s) => expectClose(step, fixture.averaging.ema[s]!, 1e-6, `update ${s}`));
  });

  it("updateBatchNorm gives update_bn's running mean, and its running variance once PyTorch's unbiased batch variances are made biased (x (n - 1) / n)", async () => {
    const f = fixture.batchNorm;
    const kernel = (l: { weight: number[]; out: number; in: number }) => tf.transpose(tf.tensor2d(l.weight, [l.out, l.in])); // PyTorch [out, in], tfjs [in, out]
    const model = tfl.sequential();
    model.add(tfl.layers.dense({ inputShape: [f.linear1.in], units: f.linear1.out, activation: "relu" }));
    model.add(tfl.layers.batchNormalization({ epsilon: f.bn.eps, momentum: 0.9 }));
    model.add(tfl.layers.dense({ units: f.linear2.out }));
    const weights = [kernel(f.linear1), tf.tensor1d(f.linear1.bias), tf.tensor1d(f.bn.gamma), tf.tensor1d(f.bn.beta), kernel(f.linear2), tf.tensor1d(f.linear2.bias), tf.fill([8], 5), tf.fill([8], 7)]; // model.weights: trainable ones first
    model.setWeights(weights);
    tf.dispose(weights);
    const batches = f.batches.map((b) => tf.tensor2d(b, [f.batchSize, f.linear1.in]));
    expect(await updateBatchNorm(model, batches)).toEqual({ layers: 1, batches: 5, samples: 80 });
    const [mean, variance] = model.layers[1]!.nonTrainableWeights.map((w) => Array.from(w.read().dataSync()));
    const n = f.batchSize;
    expectClose([mean!, variance!], [f.runningMean, f.runningVar.map((v) => (v * (n - 1)) / n)], 2e-6, "statistics");
    expect(f.runningMean).not.toEqual(new Array(8).fill(5)); // the stale statistics were replaced
    tf.dispose(batches);
    model.dispose();
  });

  it("swaLearningRate follows SWALR's learning rates epoch by epoch (cos, linear, 0 and 1 anneal epochs, annealing up)", () => {
    for (const c of fixture.swalr) {
      c.lr.forEach((want, j) => {
        const got = swaLearningRate(j, c.startLr, { value: c.swaLr, annealEpochs: c.annealEpochs, strategy: c.strategy });
        if (Math.abs(got - want) > 1e-12 * Math.max(1, want)) expect.fail(`${JSON.stringify(c)} epoch ${j}: ${got}, PyTorch ${want}`);
      });
    }
  });
});
