import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER, OptionsError, Trainer, createRootContainer, silentLogger, type Callback, type Logger } from "@fitloop/core";
import { expectNoLeaks, failingPlugins, scriptedLog, tinyFixture, type TinyFixture } from "@fitloop/core/testing";
import { CHECKPOINT_STORE, Checkpoint, CheckpointIntegrityError, InjectedCheckpoint, MemoryStore, NoCheckpointError, loadCheckpoint, loadModel, resumeFrom, saveWeights, type CheckpointStore } from "./index.js";
import { FileStore } from "./node/index.js";

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "fitloop-ckpt-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const fixture = () => tinyFixture({ samples: 40, withBatchNormAndDropout: true }); // 5 batches of 8
const weightsOf = (fx: TinyFixture) => fx.model.getWeights().map((w) => Array.from(w.dataSync()));
const trainer = (fx: TinyFixture, callbacks: Callback[], logger: Logger = silentLogger) =>
  new Trainer({ model: fx.model, optimizer: tf.train.adam(0.05), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], seed: 5, callbacks, logger });

describe("Checkpoint", () => {
  it("saves every epoch into a directory a new trainer resumes from exactly (weights, history), keeping the last 3", async () => {
    const full = fixture();
    const rFull = await trainer(full, []).fit({ epochs: 6, train: full.data(8), validation: full.data(40) });

    const dir = tempDir();
    const a = fixture();
    const stop: Callback = { name: "Stop", afterEpoch: (ctx) => void (ctx.state.epoch === 3 && ctx.requestStop("interrupted")) };
    await trainer(a, [new Checkpoint({ store: new FileStore(dir) }), stop]).fit({ epochs: 6, train: a.data(8), validation: a.data(40) });
    expect(readdirSync(dir).sort()).toEqual(["epoch=1-step=10", "epoch=2-step=15", "epoch=3-step=20", "pointers.json"]);
    expect(JSON.parse(readFileSync(join(dir, "pointers.json"), "utf8"))).toEqual({ latest: "epoch=3-step=20" });
    expect(readdirSync(join(dir, "epoch=3-step=20")).sort()).toEqual(["manifest.json", "model.json", "optimizer.json", "optimizer.safetensors", "state.safetensors", "trainer_state.json", "weights.safetensors"]);

    const b = fixture();
    b.model.setWeights(b.model.getWeights().map((w) => tf.zerosLike(w)));
    const rB = await trainer(b, []).fit({ epochs: 6, train: b.data(8), validation: b.data(40), resumeFrom: await resumeFrom(new FileStore(dir)) });
    expect(weightsOf(b)).toEqual(weightsOf(full));
    expect(rB.state.history).toEqual(rFull.state.history);
    for (const fx of [full, a, b]) fx.dispose();
  });

  it("every N steps (mid-epoch) resumes exactly too; the name template takes position and metrics", async () => {
    const full = fixture();
    await trainer(full, []).fit({ epochs: 3, train: full.data(8) });
    const store = new MemoryStore();
    const a = fixture();
    const stop: Callback = { name: "Stop", afterBatch: (ctx) => void (ctx.state.globalBatch === 6 && ctx.requestStop("interrupted")) };
    await trainer(a, [new Checkpoint({ store, every: { steps: 3 }, filename: "s{step:04d}-e{epoch}-loss={loss:.3f}", saveLast: false }), stop]).fit({ epochs: 3, train: a.data(8) });
    const names = (await store.list()).sort();
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^s0003-e0-loss=\d\.\d{3}$/);
    expect(names[1]).toMatch(/^s0006-e1-loss=\d\.\d{3}$/);
    const b = fixture();
    await trainer(b, []).fit({ epochs: 3, train: b.data(8), resumeFrom: await resumeFrom(store) });
    expect(weightsOf(b)).toEqual(weightsOf(full));
    for (const fx of [full, a, b]) fx.dispose();
  });

  it("every T minutes, by the run's clock", async () => {
    const store = new MemoryStore();
    const fx = fixture();
    let now = 0;
    const clock = { now: () => now };
    const tick: Callback = { name: "Tick", afterStep: () => void (now += 25_000) }; // 25 s per step
    await trainer(fx, [new Checkpoint({ store, every: { minutes: 1 }, saveLast: false, filename: "s{step}", keepLast: null, clock }), tick]).fit({ epochs: 2, train: fx.data(8) });
    expect((await store.list()).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))).toEqual(["s3", "s6", "s9"]); // 75 s, 150 s, 225 s
    fx.dispose();
  });

  it("keeps the best K by a monitored metric beside the last K, and points `best` at the best", async () => {
    const store = new MemoryStore();
    const fx = fixture();
    const scores = [0.9, 0.5, 0.7, 0.4, 0.8, 0.85, 0.95];
    await trainer(fx, [new Checkpoint({ store, monitor: "score", mode: "min", keepLast: 2, keepBest: 2, filename: "e{epoch}" }), scriptedLog(scores)]).fit({ epochs: 7, train: fx.data(8) });
    expect((await store.list()).sort()).toEqual(["e1", "e3", "e5", "e6"]); // best two (0.4, 0.5) and last two
    expect(await store.readPointers()).toEqual({ latest: "e6", best: "e3" });
    expect((await loadCheckpoint(store, "best")).name).toBe("e3");
    fx.dispose();
  });

  it("the same name twice never replaces a good checkpoint: the new one gets -v1", async () => {
    const store = new MemoryStore();
    const fx = fixture();
    await trainer(fx, [new Checkpoint({ store, filename: "fixed", keepLast: null })]).fit({ epochs: 3, train: fx.data(8) });
    expect((await store.list()).sort()).toEqual(["fixed", "fixed-v1", "fixed-v2"]);
    fx.dispose();
  });

  it("a weights-only export rebuilds the model (topology and weights), and cannot resume", async () => {
    const store = new MemoryStore();
    const fx = fixture();
    await trainer(fx, [new Checkpoint({ store, weightsOnly: true })]).fit({ epochs: 1, train: fx.data(8) });
    const rebuilt = await loadModel(store);
    const x = tf.randomNormal([3, 4], 0, 1, "float32", 9);
    expect(Array.from((rebuilt.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((fx.model.predict(x) as tf.Tensor).dataSync()));
    await expect(resumeFrom(store)).rejects.toThrow(/no loadable run checkpoint in memory/); // "latest" skips weights-only exports
    await expect(resumeFrom(store, (await store.list())[0]!)).rejects.toThrow(/weights-only export: it cannot resume a run/);
    await saveWeights(store, "exported", fx.model);
    expect((await loadCheckpoint(store, "exported")).snapshot).toBeUndefined();
    tf.dispose([x]);
    rebuilt.dispose();
    fx.dispose();
  });

  it("a flipped byte or a truncated file is detected: the latest good checkpoint is used, with a warning naming the bad one", async () => {
    const dir = tempDir();
    const fx = fixture();
    await trainer(fx, [new Checkpoint({ store: new FileStore(dir), filename: "e{epoch}" })]).fit({ epochs: 3, train: fx.data(8) });
    const warnings: string[] = [];
    const logger = { warn: (m: string) => void warnings.push(m) };
    const weights = join(dir, "e2", "weights.safetensors");
    const bytes = readFileSync(weights);
    bytes[bytes.length - 3]! ^= 0x10;
    writeFileSync(weights, bytes);
    expect((await loadCheckpoint(new FileStore(dir), "latest", { logger })).name).toBe("e1");
    expect(warnings[0]).toMatch(/skipped "e2": checkpoint "e2": weights.safetensors does not match its sha256 in the manifest \(corrupted\); using "e1" instead/);
    const state = join(dir, "e1", "trainer_state.json");
    writeFileSync(state, readFileSync(state).subarray(0, 20));
    expect((await loadCheckpoint(new FileStore(dir), "latest", { logger })).name).toBe("e0");
    expect(warnings[1]).toMatch(/trainer_state.json has 20 bytes, the manifest says \d+ \(truncated or replaced\)/);
    await expect(loadCheckpoint(new FileStore(dir), "e2")).rejects.toThrow(CheckpointIntegrityError); // a named one is not replaced
    rmSync(join(dir, "e0"), { recursive: true });
    await expect(loadCheckpoint(new FileStore(dir))).rejects.toThrow(NoCheckpointError);
    fx.dispose();
  });

  it("forged manifests and pointers cannot lead outside the checkpoint: unknown files, path pointers", async () => {
    const dir = tempDir();
    const fx = fixture();
    await trainer(fx, [new Checkpoint({ store: new FileStore(dir), filename: "e{epoch}" })]).fit({ epochs: 1, train: fx.data(8) });
    const manifestPath = join(dir, "e0", "manifest.json");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    manifest.files["../../etc/passwd"] = { size: 1, sha256: "0".repeat(64) };
    writeFileSync(manifestPath, JSON.stringify(manifest));
    await expect(loadCheckpoint(new FileStore(dir), "e0")).rejects.toThrow(/the manifest lists files fitloop does not write: "..\/..\/etc\/passwd"/);
    writeFileSync(join(dir, "pointers.json"), JSON.stringify({ latest: "../outside", best: "x/y" }));
    expect(await new FileStore(dir).readPointers()).toEqual({}); // ignored: the loaders scan the checkpoints instead
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, files: { ...manifest.files, "model.json": null } }));
    await expect(loadCheckpoint(new FileStore(dir), "e0")).rejects.toThrow(/manifest.json is not a fitloop.checkpoint\/1 manifest/);
    await expect(new FileStore(dir).read("../e0", "manifest.json")).rejects.toThrow(/is not a checkpoint name/);
    await expect(new FileStore(dir).read("e0", "../../x")).rejects.toThrow(/no checkpoint file is named/);
    fx.dispose();
  });

  it("a store that fails mid-write fails the run and leaves the earlier checkpoints loadable", async () => {
    const dir = tempDir();
    const inner = new FileStore(dir);
    let writes = 0;
    const flaky: CheckpointStore = Object.assign(Object.create(inner) as FileStore, {
      write: async (name: string, files: ReadonlyMap<string, Uint8Array>) => {
        if (++writes === 2) throw new Error("disk full");
        return inner.write(name, files);
      },
    });
    const fx = fixture();
    await expect(trainer(fx, [new Checkpoint({ store: flaky, filename: "e{epoch}" })]).fit({ epochs: 3, train: fx.data(8) })).rejects.toThrow(/disk full/);
    expect((await loadCheckpoint(inner)).name).toBe("e0");
    expect(readdirSync(dir).filter((n) => n.startsWith(".tmp"))).toEqual([]);
    fx.dispose();
  });

  it("saveOnSignal: SIGINT saves at the next safe point and stops the run gracefully", async () => {
    const store = new MemoryStore();
    const fx = fixture();
    const signal: Callback = { name: "Signal", afterStep: (ctx) => void (ctx.state.globalBatch === 2 && process.emit("SIGINT")) };
    const listeners = process.listenerCount("SIGINT");
    const r = await trainer(fx, [new Checkpoint({ store, saveOnSignal: true, every: { epochs: 100 }, saveLast: false, filename: "s{step}" }), signal]).fit({ epochs: 5, train: fx.data(8) });
    expect(r.outcome.status).toBe("stopped");
    expect(r.outcome.reason).toMatch(/SIGINT: saved a checkpoint and stopped/);
    expect(await store.list()).toEqual(["s3"]);
    expect(process.listenerCount("SIGINT")).toBe(listeners); // handlers removed after the run
    fx.dispose();
  });

  it("by injection: the store is a service on the root container", async () => {
    const root = createRootContainer({ logger: silentLogger });
    const store = new MemoryStore();
    root.register(CHECKPOINT_STORE, { useValue: store });
    const fx = fixture();
    await new Trainer({ model: fx.model, optimizer: tf.train.adam(0.05), loss: "sparseCategoricalCrossentropy", container: root, callbacks: [InjectedCheckpoint] }).fit({ epochs: 2, train: fx.data(8) });
    expect(await store.list()).toHaveLength(2);
    fx.dispose();
  });

  it("options: one OptionsError naming every problem", () => {
    try {
      new Checkpoint({ store: {} as never, every: { steps: 0 }, keepLast: -1, mode: "max", filename: "", typo: 1 } as never);
      expect.fail("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(OptionsError);
      const m = (e as Error).message;
      for (const p of [/store: must be a checkpoint store/, /every.steps: must be an integer >= 1/, /keepLast: must be an integer >= 0/, /unknown option "typo"/]) expect(m).toMatch(p);
    }
    expect(() => new Checkpoint({ store: new MemoryStore(), mode: "max" })).toThrow(/mode: applies with a monitor only/);
    expect(() => new Checkpoint({ store: new MemoryStore(), monitor: "score" })).toThrow(/"auto" cannot tell whether "score"/);
  });

  it("a template key that is not in the logs is an error naming the keys that are", async () => {
    const fx = fixture();
    await expect(trainer(fx, [new Checkpoint({ store: new MemoryStore(), filename: "{val_loss:.3f}" })]).fit({ epochs: 1, train: fx.data(8) })).rejects.toThrow(/\{val_loss\} is not available here \(epoch, step, batch, loss, acc, lr\)/);
    fx.dispose();
  });

  it("no tensor leaks: saving, loading and resuming, and when another plugin fails anywhere", async () => {
    const store = new MemoryStore();
    const fx = fixture();
    const opt = tf.train.adam(0.05);
    const run = (extra: Callback[] = [], resume = false) =>
      (async () => new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", seed: 1, callbacks: [new Checkpoint({ store, every: { steps: 2 }, keepLast: 2 }), ...extra], logger: silentLogger }).fit({ epochs: 2, train: fx.data(8), ...(resume ? { resumeFrom: await resumeFrom(store) } : {}) }))();
    await expectNoLeaks(() => run());
    await expectNoLeaks(() => run([], true));
    for (const { plugin } of failingPlugins({ when: (ctx) => ctx.state.globalBatch >= 2 || ctx.event === "beforeFit" })) await expectNoLeaks(() => run([{ ...plugin, order: ORDER.LAST }]).catch(() => undefined), { warmup: 1, iterations: 2 });
    opt.dispose();
    fx.dispose();
  });
});
