import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { Trainer, silentLogger, type Callback } from "@fitloop/core";
import { EMA, SWA } from "./index.js";
import { noisyRegression } from "./helpers.fixture.js";

const SEEDS = [11, 12, 13];

/** Final val_loss and the mean over the last 3 epochs, for a run of 10 epochs of SGD at 0.05 (batch 16: noisy steps). */
async function valLoss(seed: number, callbacks: Callback[]): Promise<{ last: number; last3: number }> {
  const p = noisyRegression(seed);
  const model = p.model();
  const r = await new Trainer({ model, optimizer: tf.train.sgd(0.05), loss: "meanSquaredError", seed, callbacks, logger: silentLogger }).fit({ epochs: 10, train: p.train, validation: p.validation });
  model.dispose();
  p.dispose();
  const v = r.state.history.map((h) => h.logs["val_loss"]!);
  return { last: v.at(-1)!, last3: (v[7]! + v[8]! + v[9]!) / 3 };
}

describe("on a noisy regression, averaging lowers the validation loss (noise-free targets: the distance to the true function)", () => {
  it("EMA (decay 0.99) and SWA (from half the run, every 4 steps) against the same run without them, on 3 seeds", async () => {
    const rows: { seed: number; none: { last: number; last3: number }; ema: { last: number; last3: number }; swa: { last: number; last3: number } }[] = [];
    for (const seed of SEEDS) {
      rows.push({ seed, none: await valLoss(seed, []), ema: await valLoss(seed, [new EMA({ decay: 0.99 })]), swa: await valLoss(seed, [new SWA({ start: 0.5, every: { steps: 4 } })]) });
    }
    for (const r of rows) {
      expect(r.ema.last, `seed ${r.seed}`).toBeLessThan(0.85 * r.none.last);
      expect(r.swa.last, `seed ${r.seed}`).toBeLessThan(0.95 * r.none.last);
      expect(r.ema.last3, `seed ${r.seed}`).toBeLessThan(0.75 * r.none.last3); // the raw model's loss jumps from epoch to epoch
      expect(r.swa.last3, `seed ${r.seed}`).toBeLessThan(0.85 * r.none.last3);
    }
    const mean = (k: "none" | "ema" | "swa") => rows.reduce((s, r) => s + r[k].last, 0) / rows.length;
    expect(mean("ema")).toBeLessThan(0.8 * mean("none"));
    expect(mean("swa")).toBeLessThan(0.9 * mean("none"));
  });
});
