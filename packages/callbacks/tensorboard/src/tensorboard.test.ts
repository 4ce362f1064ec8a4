import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { globalNorm, ORDER, silentLogger, Trainer, type Callback, type Clock, type Logger } from "@fitloop/core";
import { epochSnapshots, tinyFixture } from "@fitloop/core/testing";
import { readEventFile, TensorBoard, type TensorBoardOptions } from "./index.js";
import { decodeDir, scalarsOf, type IndependentEvent } from "./testing/independent.fixture.js";

const work = mkdtempSync(join(tmpdir(), "fitloop-tensorboard-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(work, `run-${dirs++}`);

type Fixture = ReturnType<typeof tinyFixture>;
const trainer = (fx: Fixture, callbacks: Callback[], logger: Logger = silentLogger) =>
  new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], seed: 3, callbacks, logger });

/** Every file of a run directory, decoded independently (every CRC checked); all events in file order. */
function read(dir: string): { files: string[]; events: IndependentEvent[]; crcs: number } {
  const decoded = decodeDir(dir);
  for (const f of decoded) expect(f.crcs, f.file).toBe(2 * f.events.length);
  return { files: decoded.map((f) => f.file), events: decoded.flatMap((f) => f.events), crcs: decoded.reduce((n, f) => n + f.crcs, 0) };
}
const steps = (series: [number, number][] | undefined) => (series ?? []).map(([s]) => s);
const values = (series: [number, number][] | undefined) => (series ?? []).map(([, v]) => v);
const f32 = (xs: number[]) => xs.map((x) => Math.fround(x));

describe("a real short training run, decoded independently (protobufjs, @node-rs/crc32)", () => {
  it("train/ and validation/ with Keras' tags and steps; every CRC of every record checks; values are the run's", async () => {
    const fx = tinyFixture({ samples: 32 });
    const logDir = freshDir();
    const batches: { step: number; loss: number; acc: number; norm: number }[] = [];
    // what the optimizer applies on due steps, from the gradients themselves (runs after TensorBoard's afterGradients)
    const probe: Callback = {
      name: "Probe",
      order: ORDER.LAST,
      beforeStep: (ctx) => {
        if ((ctx.state.step + 1) % 2 === 0) batches.push({ step: ctx.state.step + 1, loss: ctx.logs["loss"]!, acc: ctx.logs["acc"]!, norm: tf.tidy(() => globalNorm(ctx.grads!).dataSync()[0]!) });
      },
    };
    const tb = new TensorBoard({ logDir, every: { steps: 2 }, histograms: { everyEpochs: 2 } });
    const { state } = await trainer(fx, [tb, probe]).fit({ epochs: 3, train: fx.data(8), validation: fx.data(16) });
    expect(state.step).toBe(12);

    expect(readdirSync(logDir).sort()).toEqual(["train", "validation"]);
    const train = read(join(logDir, "train"));
    const val = read(join(logDir, "validation"));
    expect(train.files).toHaveLength(1);
    expect(val.files).toEqual(train.files);
    expect(train.files[0]).toMatch(/^events\.out\.tfevents\.\d{10}\.[\w.-]+\.\d+\.\d{4}$/);
    expect(tb.files!.train).toBe(join(logDir, "train", train.files[0]!));
    for (const r of [train, val]) {
      expect(r.events[0]).toMatchObject({ what: "fileVersion", fileVersion: "brain.Event:2" });
      r.events.slice(1).forEach((e) => expect(e.what).toBe("summary"));
      const times = r.events.map((e) => e.wallTime);
      expect(times).toEqual([...times].sort((a, b) => a - b));
      expect(Math.abs(times[0]! - Date.now() / 1000)).toBeLessThan(60);
    }
    expect(train.crcs + val.crcs).toBeGreaterThan(20);

    const ts = scalarsOf(train.events);
    const vs = scalarsOf(val.events);
    // epoch scalars: every key of the epoch logs, step = epoch index; val_* in validation/ without the prefix
    const hist = (k: string) => state.history.map((r) => r.logs[k]!);
    for (const k of ["loss", "acc", "lr", "grad_norm"]) {
      expect(steps(ts.get(`epoch_${k}`)), k).toEqual([0, 1, 2]);
      expect(values(ts.get(`epoch_${k}`)), k).toEqual(f32(hist(k)));
    }
    expect(values(ts.get("epoch_lr"))).toEqual(f32([0.1, 0.1, 0.1]));
    expect([...vs.keys()].sort()).toEqual(["epoch_acc", "epoch_loss"]);
    expect(values(vs.get("epoch_loss"))).toEqual(f32(hist("val_loss")));
    expect(values(vs.get("epoch_acc"))).toEqual(f32(hist("val_acc")));
    expect([...ts.keys()].filter((k) => k.includes("val"))).toEqual([]);
    // batch scalars every 2 optimizer steps, step = steps taken (1-based, as Keras' iterations)
    expect([...ts.keys()].filter((k) => k.startsWith("batch_")).sort()).toEqual(["batch_acc", "batch_grad_norm", "batch_loss", "batch_lr"]);
    expect(steps(ts.get("batch_loss"))).toEqual([2, 4, 6, 8, 10, 12]);
    expect(batches.map((b) => b.step)).toEqual([2, 4, 6, 8, 10, 12]);
    expect(values(ts.get("batch_loss"))).toEqual(f32(batches.map((b) => b.loss)));
    expect(values(ts.get("batch_acc"))).toEqual(f32(batches.map((b) => b.acc)));
    values(ts.get("batch_grad_norm")).forEach((v, i) => expect(v).toBeCloseTo(batches[i]!.norm, 5));
    expect(values(ts.get("batch_lr"))).toEqual(f32(Array(6).fill(0.1)));

    // weight histograms at epochs 0 and 2 (Keras: epoch % histogram_freq == 0); the last are the final weights
    const weights = fx.model.weights;
    const histos = train.events.flatMap((e) => (e.summary?.value ?? []).filter((v) => v.value === "histo").map((v) => ({ step: e.step, tag: v.tag, h: v.histo! })));
    expect(histos.map((h) => `${h.step} ${h.tag}`)).toEqual([0, 2].flatMap((s) => weights.map((w) => `${s} ${w.name}/histogram`)));
    weights.forEach((w, i) => {
      const data = Array.from(w.read().dataSync());
      const h = histos[weights.length + i]!.h;
      expect(h).toMatchObject({ num: data.length, min: Math.min(...data), max: Math.max(...data) });
      expect(h.sum).toBeCloseTo(data.reduce((a, b) => a + b, 0), 10);
      expect(h.bucket.reduce((a, b) => a + b, 0)).toBe(data.length);
      expect(h.bucket.length).toBeLessThanOrEqual(30);
    });

    // the package's own reader agrees with the independent one
    const ours = readEventFile(readFileSync(tb.files!.train));
    expect(ours.map((e) => [e.step, e.summary?.map((v) => v.tag)])).toEqual(train.events.map((e) => [e.step, e.summary?.value.map((v) => v.tag)]));
    fx.dispose();
  });

  it('every: "epoch" (the default) writes epoch scalars only and adds nothing to the logs; a plugin\'s own grad_norm is written as it logged it; skipped steps write nothing', async () => {
    const fx = tinyFixture({ samples: 32 });
    const quiet = freshDir();
    const r1 = await trainer(fx, [new TensorBoard({ logDir: quiet })]).fit({ epochs: 2, train: fx.data(8) });
    const ts = scalarsOf(read(join(quiet, "train")).events);
    expect([...ts.keys()].sort()).toEqual(["epoch_acc", "epoch_loss", "epoch_lr"]);
    expect(existsSync(join(quiet, "validation"))).toBe(false); // no validation data: no validation run
    expect(r1.state.history[0]!.logs["grad_norm"]).toBeUndefined();

    const logDir = freshDir();
    const own: Callback = { name: "OwnNorm", afterGradients: (ctx) => ctx.log("grad_norm", 42) };
    const skipThird: Callback = { name: "Skip", beforeStep: (ctx) => void (ctx.state.globalBatch === 2 && ctx.skipStep("test")) };
    const r2 = await trainer(fx, [own, skipThird, new TensorBoard({ logDir, every: { steps: 1 } })]).fit({ epochs: 2, train: fx.data(8) });
    expect(r2.state.step).toBe(7);
    const s = scalarsOf(read(join(logDir, "train")).events);
    expect(steps(s.get("batch_loss"))).toEqual([1, 2, 3, 4, 5, 6, 7]); // 8 batches, one update skipped: no step twice
    expect(values(s.get("batch_grad_norm"))).toEqual(Array(7).fill(42));
    fx.dispose();
  });
});

describe("buffered writes", () => {
  /** Waits (a little) for a background write to land. */
  const eventually = async (check: () => boolean, ms: number) => {
    for (const end = Date.now() + ms; !check() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
    return check();
  };

  it("nothing reaches the disk mid-epoch until flushSeconds have passed on the clock; then one write with the buffered steps", async () => {
    for (const [msPerBatch, expectFile] of [[0, false], [4000, true]] as const) {
      const fx = tinyFixture({ samples: 64 });
      const logDir = freshDir();
      let now = 0;
      const clock: Clock = { now: () => now };
      const seen: { exists: boolean; steps: number[] } = { exists: false, steps: [] };
      const tick: Callback = { name: "Tick", afterBatch: () => void (now += msPerBatch) };
      const look: Callback = {
        name: "Look",
        batchCheckpoint: async (ctx) => {
          if (ctx.state.step !== 5) return;
          const file = (tb.files as { train: string }).train;
          // a write takes a few ms; the negative control waits long enough to see one that should not come
          seen.exists = await eventually(() => existsSync(file), expectFile ? 5000 : 300);
          if (seen.exists) seen.steps = steps(scalarsOf(read(join(logDir, "train")).events).get("batch_loss"));
        },
      };
      const tb = new TensorBoard({ logDir, every: { steps: 1 }, flushSeconds: 10, clock });
      await trainer(fx, [tick, look, tb]).fit({ epochs: 1, train: fx.data(8) });
      expect(seen.exists, `${msPerBatch} ms per batch`).toBe(expectFile);
      // 4 s per batch: due after the third batch (12 s), so steps 1-3 landed (the next is due at 6)
      if (expectFile) expect(seen.steps).toEqual([1, 2, 3]);
      expect(steps(scalarsOf(read(join(logDir, "train")).events).get("batch_loss"))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      fx.dispose();
    }
  });
});

describe("resume", () => {
  it("a run stopped mid-epoch, snapshotted and resumed: every epoch step appears once in train/ and validation/, with the uninterrupted run's value", async () => {
    const opts = (logDir: string): TensorBoardOptions => ({ logDir, every: { steps: 3 } });
    const fit = (fx: Fixture, callbacks: Callback[], extra: { resumeFrom?: Awaited<ReturnType<Trainer["snapshot"]>> } = {}) => {
      const t = trainer(fx, callbacks);
      return { t, done: t.fit({ epochs: 4, train: fx.data(8), validation: fx.data(16), ...extra }) };
    };
    // the uninterrupted run
    const straightDir = freshDir();
    const fx0 = tinyFixture({ samples: 32 });
    await fit(fx0, [new TensorBoard(opts(straightDir))]).done;
    fx0.dispose();
    // stopped in epoch 2 after its second batch (it still validates and runs afterEpoch on that part)
    const logDir = freshDir();
    const fx1 = tinyFixture({ samples: 32 });
    const stop: Callback = { name: "Stop", afterBatch: (ctx) => void (ctx.state.epoch === 2 && ctx.state.batchIndex === 1 && ctx.requestStop("test")) };
    const first = fit(fx1, [stop, new TensorBoard(opts(logDir))]);
    const r1 = await first.done;
    expect(r1.outcome.status).toBe("stopped");
    expect(r1.state.history.map((h) => h.epoch)).toEqual([0, 1, 2]); // the partial epoch has a record
    const snapshot = await first.t.snapshot();
    fx1.dispose();
    const fx2 = tinyFixture({ samples: 32 });
    const r2 = await fit(fx2, [new TensorBoard(opts(logDir))], { resumeFrom: snapshot }).done;
    expect(r2.state.step).toBe(16);
    fx2.dispose();

    for (const sub of ["train", "validation"]) {
      const files = decodeDir(join(logDir, sub));
      expect(files, sub).toHaveLength(2);
      const all = scalarsOf(files.flatMap((f) => f.events));
      const straight = scalarsOf(read(join(straightDir, sub)).events);
      const epochTags = [...straight.keys()].filter((k) => k.startsWith("epoch_"));
      expect(epochTags.length, sub).toBeGreaterThanOrEqual(2);
      expect([...all.keys()].filter((k) => k.startsWith("epoch_")).sort()).toEqual([...epochTags].sort());
      for (const tag of epochTags) {
        expect(steps(all.get(tag)), `${sub} ${tag}`).toEqual([0, 1, 2, 3]); // each epoch once, in order
        expect(values(all.get(tag)), `${sub} ${tag}`).toEqual(values(straight.get(tag))); // resumed exactly: the same float32 values
      }
      // the stopped run's own file ends before epoch 2's scalars; batch steps continue without repeats
      expect(steps(scalarsOf(files[0]!.events).get(epochTags[0]!))).toEqual([0, 1]);
      if (sub === "train") expect(steps(all.get("batch_loss"))).toEqual([3, 6, 9, 12, 15]);
    }
  });


  it("a run that fails: a whole epoch that reached its safe point is written (another plugin's epochCheckpoint failed first), one whose afterEpoch failed is not", async () => {
    for (const [event, written] of [["epochCheckpoint", [0, 1]], ["afterEpoch", [0]]] as const) {
      const fx = tinyFixture({ samples: 32 });
      const logDir = freshDir();
      // ordered before TensorBoard in epochCheckpoint (before* order), after it in afterEpoch (reversed): it fails first in both
      const boom: Callback = { name: "Boom", order: ORDER.CHECKPOINT, [event]: (ctx: { state: { epoch: number } }) => { if (ctx.state.epoch === 1) throw new Error("boom"); } };
      const r = await trainer(fx, [boom, new TensorBoard({ logDir })]).fit({ epochs: 3, train: fx.data(8) }).then(() => undefined, (e: Error) => e);
      expect(r?.message, event).toMatch(new RegExp(`plugin "Boom" threw in ${event}: boom`));
      expect(steps(scalarsOf(read(join(logDir, "train")).events).get("epoch_loss")), event).toEqual(written);
      fx.dispose();
    }
  });

  it("fit({ resumeFrom }) writes a new file beside the first in both dirs; steps and epochs continue; nothing is written twice", async () => {
    const fx = tinyFixture({ samples: 32 });
    const logDir = freshDir();
    const snaps = epochSnapshots();
    const opts: TensorBoardOptions = { logDir, every: { steps: 2 } };
    await trainer(fx, [snaps, new TensorBoard(opts)]).fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) });
    const infos: string[] = [];
    const logger: Logger = { ...silentLogger, info: (m) => void infos.push(m) };
    const fx2 = tinyFixture({ samples: 32 });
    const tb = new TensorBoard(opts);
    const { state } = await trainer(fx2, [tb], logger).fit({ epochs: 4, train: fx2.data(8), validation: fx2.data(16), resumeFrom: snaps.at.get(1)! });
    expect(state.step).toBe(16);
    expect(infos.join("\n")).toMatch(/resumed at step 8, epoch 2: a new file/);
    for (const sub of ["train", "validation"]) {
      const files = decodeDir(join(logDir, sub));
      expect(files).toHaveLength(2);
      expect(files[1]!.file).toBe(tb.files![sub as "train" | "validation"].split("/").at(-1)); // the resumed run's file sorts last
      for (const f of files) expect(f.events[0]).toMatchObject({ fileVersion: "brain.Event:2" });
      const [first, second] = files.map((f) => scalarsOf(f.events));
      expect(steps(first!.get("epoch_loss"))).toEqual([0, 1]);
      expect(steps(second!.get("epoch_loss"))).toEqual([2, 3]);
      if (sub === "train") {
        expect(steps(first!.get("batch_loss"))).toEqual([2, 4, 6, 8]);
        expect(steps(second!.get("batch_loss"))).toEqual([10, 12, 14, 16]);
      }
    }
    fx.dispose();
    fx2.dispose();
  });
});
