import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, resolveLoss, seeded, silentLogger } from "@fitloop/core";
import { DataLoader, gaussianBlobs, noisyRegression, splitDataset } from "@fitloop/datasets";
import { parseCsv } from "@fitloop/csv-logger";
import { initialize, priorBiasInit } from "../init/index.js";
import { classification, regression } from "./node.js";

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "fitloop-preset-"));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A stream that keeps what is written (the progress lines). */
const sink = () => {
  const chunks: string[] = [];
  const stream = new Writable({ write: (c: Buffer, _e, done) => void (chunks.push(String(c)), done()) });
  return { stream, text: () => chunks.join("") };
};

const mlp = (inputs: number, hidden: number, outputs: number, activation: "softmax" | "linear") =>
  seeded(2, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [inputs], units: hidden, activation: "relu" }));
    m.add(tfl.layers.dense({ units: outputs, activation }));
    initialize(m, { seed: 3 });
    return m;
  });

describe("a preset run on synthetic data", () => {
  it("classification: trains, logs lr/grad_norm/val metrics, stops on a plateau with the best weights restored, writes checkpoints, CSV and report", async () => {
    // Overlapping blobs and few training samples (96): validation loss falls, then rises as the wide model overfits.
    const blobs = gaussianBlobs({ samples: 480, classes: 3, features: 8, spread: 2, box: 3, seed: 1 });
    const { train, validation } = splitDataset(blobs, { fractions: { train: 0.2, validation: 0.8 }, seed: 2 });
    const trainData = new DataLoader(train, { batchSize: 24, seed: 3 });
    const valData = new DataLoader(validation, { batchSize: 384, shuffle: false });
    const model = mlp(8, 128, 3, "softmax");
    priorBiasInit(model, { labels: train.y }); // balanced: the first loss is log 3
    const dir = tempDir();
    const progress = sink();
    const preset = classification({
      epochs: 40,
      data: trainData,
      maxLr: 0.01,
      patience: 3,
      dir,
      report: { formats: ["svg", "html"] },
      progress: { stream: progress.stream, verbose: 2 },
    });
    const trainer = new Trainer({ model, loss: "sparseCategoricalCrossentropy", metrics: ["acc"], logger: silentLogger, ...preset.trainer });
    const { outcome, state } = await trainer.fit({ epochs: 40, train: trainData, validation: valData });
    const logs = state.history.map((h) => h.logs);

    // trains
    expect(logs.at(-1)!["loss"]).toBeLessThan(logs[0]!["loss"]! * 0.6);
    const best = preset.plugins.earlyStopping!.result;
    expect(best.bestValue).toBeLessThan(logs[0]!["val_loss"]! * 0.6);
    expect(best.bestValue).toBeLessThan(Math.log(3) / 3); // far below chance
    // logs: the schedule's lr, clipping's grad_norm, the decay's coefficient, validation metrics
    for (const key of ["lr", "grad_norm", "grad_clipped", "weight_decay", "val_loss", "val_acc"]) expect(logs[0], key).toHaveProperty(key);
    const scheduler = preset.plugins.scheduler!;
    const lastStep = (epoch: number) => (epoch + 1) * trainData.batchesPerEpoch - 1;
    logs.forEach((l, epoch) => expect(l["lr"]).toBeCloseTo(scheduler.lr!(lastStep(epoch)), 8));
    expect(Math.max(...logs.map((l) => l["lr"]!))).toBeLessThanOrEqual(0.01);
    // stops: early stopping on the plateau, before the 40 epochs
    expect(outcome.status).toBe("stopped");
    expect(outcome.stopRequests[0]!.by).toBe("EarlyStopping");
    expect(state.history.length).toBeLessThan(40);
    expect(best.stoppedEpoch).toBe(best.bestEpoch! + 3);
    // best weights restored: the model's validation loss is the best epoch's
    const xs = tf.tensor2d(validation.x, [validation.size, 8]);
    const ys = tf.tensor1d(Float32Array.from(validation.y));
    const restored = tf.tidy(() => tf.mean(resolveLoss("sparseCategoricalCrossentropy")(ys, model.predict(xs) as tf.Tensor)).dataSync()[0]!);
    expect(restored).toBeCloseTo(best.bestValue!, 4);
    tf.dispose([xs, ys]);

    // files: checkpoints (the last 3 and the best), the CSV log (a row per epoch), the report
    const checkpoints = readdirSync(join(dir, "checkpoints")).filter((n) => n.startsWith("epoch="));
    expect(checkpoints.length).toBeGreaterThanOrEqual(3);
    for (const c of checkpoints) expect(existsSync(join(dir, "checkpoints", c, "manifest.json"))).toBe(true);
    const csv = parseCsv(readFileSync(join(dir, "metrics.csv"), "utf8"));
    expect(csv.rows.map((r) => r["epoch"])).toEqual(state.history.map((h) => h.epoch));
    expect(csv.columns).toEqual(expect.arrayContaining(["lr", "grad_norm", "val_loss"]));
    const html = readFileSync(join(dir, "report", "report.html"), "utf8");
    expect(html).toContain("warmup-cosine over");
    expect(readdirSync(join(dir, "report"))).toEqual(expect.arrayContaining(["loss.svg", "lr.svg", "grad-norm.svg"]));
    // progress: one line per epoch, then why it stopped
    expect(progress.text().match(/^Epoch \d+\/40/gm)).toHaveLength(state.history.length);
    expect(progress.text()).toMatch(/^Stopped \(after epoch \d+\/40\): EarlyStopping: val_loss did not improve/m);
    preset.dispose();
    model.dispose();
  });

  it("regression: the same wiring trains a noisy linear target (MSE falls 10x) with the schedule and clipping in the logs", async () => {
    const data = noisyRegression({ samples: 256, features: 4, noise: 0.1, seed: 5 });
    const loader = new DataLoader({ ...data, labelShape: [1] }, { batchSize: 32, seed: 6 }); // targets [n, 1], as the model outputs
    const model = mlp(4, 16, 1, "linear");
    const preset = regression({ epochs: 8, data: loader, maxLr: 0.02, monitor: "loss", progress: false, schedule: "1cycle" });
    const { state } = await new Trainer({ model, loss: "meanSquaredError", logger: silentLogger, ...preset.trainer }).fit({ epochs: 8, train: loader });
    const logs = state.history.map((h) => h.logs);
    expect(logs.at(-1)!["loss"]).toBeLessThan(logs[0]!["loss"]! / 10);
    expect(logs[0]).toHaveProperty("momentum"); // 1cycle cycles Adam's beta1
    expect(Math.max(...logs.map((l) => l["lr"]!))).toBeCloseTo(0.02, 2);
    preset.dispose();
    model.dispose();
  });
});
