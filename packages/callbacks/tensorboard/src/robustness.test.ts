import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, silentLogger, Trainer, type Callback, type Logger } from "@fitloop/core";
import { countDeviceReads, expectNoLeaks, expectRefused, failingPlugins, tinyFixture } from "@fitloop/core/testing";
import { TensorBoard, type TensorBoardOptions } from "./index.js";
import { decodeDir, scalarsOf } from "./testing/independent.fixture.js";

const work = mkdtempSync(join(tmpdir(), "fitloop-tensorboard-robust-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(work, `run-${dirs++}`);

type Fixture = ReturnType<typeof tinyFixture>;
const recorder = () => {
  const warns: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (m: string) => void warns.push(m) };
  return { warns, logger };
};
const fit = (fx: Fixture, callbacks: Callback[], opts: { logger?: Logger; epochs?: number; optimizer?: tf.Optimizer } = {}) =>
  new Trainer({ model: fx.model, optimizer: opts.optimizer ?? tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], seed: 3, callbacks, logger: opts.logger ?? silentLogger }).fit({
    epochs: opts.epochs ?? 2,
    train: fx.data(8),
    validation: fx.data(16),
  });

/** Every events file under logDir/{train,validation} decodes, every CRC checked; returns how many files. */
function allDecode(logDir: string): number {
  let files = 0;
  for (const sub of ["train", "validation"]) {
    if (!existsSync(join(logDir, sub))) continue;
    for (const f of decodeDir(join(logDir, sub))) {
      expect(f.crcs).toBe(2 * f.events.length);
      files++;
    }
  }
  return files;
}

describe("write failures: one warning, training goes on", () => {
  it("the log directory removed mid-run (after epoch 0 was written): one warning for both files, the run completes", async () => {
    const fx = tinyFixture({ samples: 32 });
    const logDir = freshDir();
    const { warns, logger } = recorder();
    const tb = new TensorBoard({ logDir, every: { steps: 1 } });
    const remove: Callback = {
      name: "Remove",
      beforeEpoch: async (ctx) => {
        if (ctx.state.epoch !== 1) return;
        for (let i = 0; i < 200 && !existsSync(tb.files!.validation); i++) await new Promise((r) => setTimeout(r, 10));
        rmSync(logDir, { recursive: true });
      },
    };
    const { outcome, state } = await fit(fx, [tb, remove], { logger, epochs: 3 });
    expect(outcome.status).toBe("completed");
    expect(state.history).toHaveLength(3);
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatch(/^TensorBoard: could not write .*events\.out\.tfevents.* \(its further records are dropped\): ENOENT.*Training goes on/);
    expect(existsSync(logDir)).toBe(false); // nothing recreated it without its header
    fx.dispose();
  });

  it("an events file replaced mid-run (a directory in its place) and a log directory that is a file: one warning each run", async () => {
    const fx = tinyFixture({ samples: 32 });
    const logDir = freshDir();
    const { warns, logger } = recorder();
    const tb = new TensorBoard({ logDir });
    const replace: Callback = {
      name: "Replace",
      beforeEpoch: async (ctx) => {
        if (ctx.state.epoch !== 1) return;
        for (let i = 0; i < 200 && !existsSync(tb.files!.train); i++) await new Promise((r) => setTimeout(r, 10));
        rmSync(tb.files!.train);
      },
    };
    expect((await fit(fx, [tb, replace], { logger, epochs: 3 })).outcome.status).toBe("completed");
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatch(/could not write .*train.*ENOENT/);
    // validation/ kept working: its file has all three epochs
    expect(scalarsOf(decodeDir(join(logDir, "validation"))[0]!.events).get("epoch_loss")?.map(([s]) => s)).toEqual([0, 1, 2]);

    const notADir = join(work, `file-${dirs++}`);
    writeFileSync(notADir, "not a directory");
    const second = recorder();
    expect((await fit(fx, [new TensorBoard({ logDir: notADir, every: { steps: 1 } })], { logger: second.logger })).outcome.status).toBe("completed");
    expect(second.warns).toHaveLength(1);
    expect(second.warns[0]).toMatch(/could not write .*(EEXIST|ENOTDIR)/);
    fx.dispose();
  });
});

describe("no tensor leaks, files complete on every path", () => {
  it("on success, with a throw in every hook of another plugin, and on CancelFit: no growth, and every file written decodes", async () => {
    const fx = tinyFixture({ samples: 16 });
    const logDir = freshDir();
    const opts: TensorBoardOptions = { logDir, every: { steps: 1 }, histograms: { everyEpochs: 1 } };
    const optimizer = tf.train.sgd(0.1); // one for all runs: each new SGD keeps its learning-rate scalar
    await expectNoLeaks(() => fit(fx, [new TensorBoard(opts)], { optimizer }));
    const failures = failingPlugins();
    expect(failures.map((f) => f.where)).toContain("cancel");
    for (const { where, plugin } of failures) {
      const tb = new TensorBoard(opts);
      await expectNoLeaks(() => fit(fx, [plugin, tb], { optimizer }).catch(() => undefined), { warmup: 1, iterations: 2 });
      if (where === "beforeFit") continue;
      // afterFit waited for the writes: what the run got to is on disk, whole
      if (tb.files && existsSync(tb.files.train)) expect(decodeDir(join(logDir, "train")).some((f) => tb.files!.train.endsWith(f.file))).toBe(true);
    }
    expect(allDecode(logDir)).toBeGreaterThan(40);
    fx.dispose();
  });

  it("adds no device read per step (the gradient norm rides in the step's one read); histograms read each weight once at their epochs", async () => {
    const fx = tinyFixture({ samples: 32 });
    const count = async (callbacks: Callback[]) => {
      const reads = countDeviceReads();
      try {
        await fit(fx, callbacks);
      } finally {
        reads.stop();
      }
      return reads.count;
    };
    await count([]); // the first run on a data source also scans it (the pre-flight): not per step
    const base = await count([]);
    expect(await count([])).toBe(base);
    expect(await count([new TensorBoard({ logDir: freshDir(), every: { steps: 1 } })])).toBe(base);
    expect(await count([new TensorBoard({ logDir: freshDir(), every: { steps: 1 }, histograms: { everyEpochs: 1 } })])).toBe(base + 2 * fx.model.weights.length);
    fx.dispose();
  });
});

describe("adversarial options", () => {
  const refused = (options: unknown, culprit: string | RegExp | (string | RegExp)[]) => expectRefused(() => new TensorBoard(options as TensorBoardOptions), OptionsError, "INVALID_OPTIONS", culprit);

  it("each bad option is an OptionsError naming it; several at once are listed together", () => {
    refused({}, "logDir: must be a directory path");
    refused({ logDir: "" }, "logDir: must not be empty");
    refused({ logDir: 42 }, "logDir");
    refused({ logDir: "runs\0x" }, "NUL byte");
    for (const steps of [0, 1.5, -1, Number.NaN, "2"]) refused({ logDir: "runs", every: { steps } }, /every(\.steps)?: must .*integer (N )?>= 1/);
    refused({ logDir: "runs", every: "batch" }, /every: must be "epoch" .* or \{ steps: N \}/);
    refused({ logDir: "runs", every: { step: 2 } }, "every");
    refused({ logDir: "runs", histograms: { everyEpochs: 0 } }, "histograms.everyEpochs: must be an integer >= 1");
    refused({ logDir: "runs", histograms: {} }, "histograms.everyEpochs");
    refused({ logDir: "runs", histograms: { everyEpochs: 1, buckets: 0 } }, "histograms.buckets");
    refused({ logDir: "runs", histograms: true }, "histograms");
    refused({ logDir: "runs", gradNorm: "yes" }, "gradNorm: must be true or false");
    for (const flushSeconds of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, "10"]) refused({ logDir: "runs", flushSeconds }, "flushSeconds");
    refused({ logDir: "runs", clock: {} }, "clock: must be a clock");
    refused({ logdir: "runs" }, 'unknown option "logdir" (did you mean "logDir"?)');
    refused({ logDir: "", every: "always", flushSeconds: -2, extra: 1 }, ["logDir", "every", "flushSeconds", '"extra"']);
    refused(null, "(options)");
  });

  it("accepted options: defaults as documented; nothing touches the disk before a run writes something", () => {
    const logDir = freshDir();
    const tb = new TensorBoard({ logDir });
    expect(tb.options).toMatchObject({ logDir, every: "epoch", gradNorm: true, flushSeconds: 10 });
    expect(tb.options.histograms).toBeUndefined();
    expect(new TensorBoard({ logDir, histograms: { everyEpochs: 3 } }).options.histograms).toEqual({ everyEpochs: 3, buckets: 30 });
    expect(tb.order).toBe(900);
    expect(existsSync(logDir)).toBe(false);
    expect(readdirSync(work).includes(logDir)).toBe(false);
  });
});
