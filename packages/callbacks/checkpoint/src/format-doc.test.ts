// docs/checkpoint-format.md against a real checkpoint: a short run (cpu backend, stateful plugins,
// BatchNorm, Adam) saved by the Checkpoint plugin into a FileStore in a temporary directory. The
// page's tables must name exactly the files, fields and tensor names that run wrote; each refusal
// in its table is provoked on a copy of the checkpoint and must say what the page says; and its
// Python reader is run on the store and must read what the TypeScript loader reads.
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { SNAPSHOT_FORMAT, Trainer, encodeState, seeded, type Logger } from "@fitloop/core";
import { DataLoader, fitNormalizer, gaussianBlobs, splitDataset } from "@fitloop/datasets";
import { EarlyStopping } from "@fitloop/early-stopping";
import { Scheduler, cosineAnnealingLR } from "@fitloop/lr-schedule";
import { pythonModule } from "../../../../scripts/system-tools.js";
import { CHECKPOINT_FORMAT, Checkpoint, CheckpointIntegrityError, FILES, decodeSafetensors, readCheckpoint, resumeFrom, type LoadedCheckpoint, type Manifest } from "./index.js";
import { FileStore } from "./node/index.js";

const run = promisify(execFile);
const docPath = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..", "docs", "checkpoint-format.md");
const doc = readFileSync(docPath, "utf8");
const work = mkdtempSync(join(tmpdir(), "fitloop-format-doc-"));
const store = join(work, "store");
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The rows (cells, backticks kept) of the first table from the line `marker` on (a heading, or the table's own header). */
function table(marker: string): string[][] {
  const lines = doc.split("\n");
  const at = lines.indexOf(marker);
  if (at < 0) throw new Error(`docs/checkpoint-format.md has no line "${marker}"`);
  let i = at;
  while (i < lines.length && !lines[i]!.startsWith("|")) i++;
  const rows: string[][] = [];
  for (; i < lines.length && lines[i]!.startsWith("|"); i++) rows.push(lines[i]!.slice(1, -1).split(" | ").map((c) => c.trim()));
  return rows.slice(2); // header and separator
}
/** The first column's names, without backticks. */
const firstColumn = (heading: string) => table(heading).map((r) => r[0]!.replace(/`/g, ""));
const json = (path: string) => JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
/** A message template from the page (`<placeholder>` = any text) as an anchored regex. */
const template = (t: string) => new RegExp(`^${t.replace(/`/g, "").replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/<[^>]+>/g, ".+?")}$`);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

let saved: string[] = [];
let latest: string;
let loaded: LoadedCheckpoint;
const ckpt = () => join(store, latest);

beforeAll(async () => {
  // three blobs in 4 dimensions: 90 to train on (6 batches of 16), 30 held out
  const { train, validation } = splitDataset(gaussianBlobs({ samples: 120, classes: 3, features: 4, seed: 1 }), { fractions: { train: 0.75, validation: 0.25 }, seed: 1 });
  const norm = fitNormalizer(train);
  const model = seeded(2, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [4], units: 8, activation: "relu" }));
    m.add(tfl.layers.batchNormalization());
    m.add(tfl.layers.dense({ units: 3, activation: "softmax" }));
    return m;
  });
  const infos: string[] = [];
  const logger: Logger = { debug: () => {}, info: (m: string) => void infos.push(m), warn: () => {}, error: () => {} };
  const callbacks = [norm, new Scheduler({ lr: cosineAnnealingLR({ baseLr: 0.01, tMax: 24 }), plateau: { patience: 2 } }), new EarlyStopping({ patience: 5, restoreBestWeights: true }), new Checkpoint({ store: new FileStore(store), monitor: "val_loss" })];
  const trainer = new Trainer({ model, optimizer: tf.train.adam(0.01), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], seed: 3, logger, callbacks });
  await trainer.fit({ epochs: 4, train: new DataLoader(train, { batchSize: 16, seed: 4, transforms: [norm.transform()] }), validation: new DataLoader(validation, { batchSize: 30, shuffle: false, transforms: [norm.transform()] }) });
  saved = infos.flatMap((m) => /saved "([^"]+)"/.exec(m)?.[1] ?? []);
  latest = (json(join(store, "pointers.json")) as { latest: string }).latest;
  loaded = await readCheckpoint(new FileStore(store), latest);
  model.dispose();
});

describe("docs/checkpoint-format.md against a saved run", () => {
  it("names the format versions the code writes", () => {
    expect(doc).toContain(`\`${CHECKPOINT_FORMAT}\``);
    expect(doc).toContain(`\`${SNAPSHOT_FORMAT}\``);
    expect(loaded.manifest.format).toBe(CHECKPOINT_FORMAT);
  });

  it("store directory: the default names, the pointers, retention of the last 3 and the best, no temporaries left", () => {
    expect(saved).toEqual(["epoch=0-step=6", "epoch=1-step=12", "epoch=2-step=18", "epoch=3-step=24"]); // `epoch={epoch}-step={step}`, 0-based
    const pointers = json(join(store, "pointers.json"));
    const documented = /pointers\.json\s+(\{.*?\})/.exec(doc)![1]!;
    expect(Object.keys(pointers).sort()).toEqual(Object.keys(JSON.parse(documented.replace(/<name>/g, "x")) as object).sort());
    const kept = new Set([...saved.slice(-3), pointers["best"] as string]);
    expect(readdirSync(store).sort()).toEqual([...kept, "pointers.json"].sort()); // nothing else: no .tmp-* left behind
  });

  it("the files table lists exactly the files of a checkpoint, and the manifest covers every other one", () => {
    const present = readdirSync(ckpt()).sort();
    expect(firstColumn("## The files of a checkpoint").sort()).toEqual(present);
    expect(present).toEqual([...FILES, "manifest.json"].sort());
    expect(Object.keys(loaded.manifest.files).sort()).toEqual(present.filter((f) => f !== "manifest.json"));
  });

  it("the field tables list exactly the keys of manifest.json, model.json, optimizer.json, trainer_state.json and its train", () => {
    const manifest = json(join(ckpt(), "manifest.json"));
    expect(firstColumn("### manifest.json")).toEqual(Object.keys(manifest));
    expect(firstColumn("### model.json")).toEqual(Object.keys(json(join(ckpt(), "model.json"))));
    expect(firstColumn("### optimizer.json")).toEqual(Object.keys(json(join(ckpt(), "optimizer.json"))));
    const state = json(join(ckpt(), "trainer_state.json"));
    expect(firstColumn("### trainer_state.json")).toEqual(Object.keys(state));
    expect(firstColumn("`train`:")).toEqual(Object.keys(state["train"] as object));
    // what the tables say of the values
    expect(manifest["kind"]).toBe("run");
    expect(Object.keys(manifest["versions"] as object)).toEqual(["format", "tfjs-core", "tfjs-layers"]);
    expect(manifest["backend"]).toBe("cpu");
    expect(state["snapshotFormat"]).toBe(SNAPSHOT_FORMAT);
    expect(Object.keys(state["plugins"] as object).sort()).toEqual(["early-stopping", "lr-schedule", "normalizer"]);
    expect((state["rng"] as number[]).length).toBe(4);
    // "a save at the end of epoch 0 says 0"; the cursor is then the next epoch's first batch
    const [, epoch] = /^epoch=(\d+)-step=\d+$/.exec(latest)!;
    expect(manifest["epoch"]).toBe(Number(epoch));
    expect((state["train"] as { cursor: unknown }).cursor).toEqual({ epoch: Number(epoch) + 1, batchIndex: 0 });
    expect(Object.keys(manifest["logs"] as object)).toContain("val_loss");
  });

  it("the tag table lists exactly the tags core's state codec writes", () => {
    const { json: encoded } = encodeState({ nan: Number.NaN, array: new Float32Array(2), lookalike: { $float: 1 } }) as { json: Record<string, Record<string, unknown>> };
    const written = Object.values(encoded).map((v) => Object.keys(v)[0]);
    expect(firstColumn("| tag | stands for |").map((t) => /^\{"(\$\w+)":/.exec(t)?.[1])).toEqual(written);
  });

  it("the safetensors table names the tensors as written: weight names (model.json's keys), <family>/<i>, t0.. (1-D, each referenced once)", () => {
    const rows = table("### The safetensors files");
    expect(rows.map((r) => r[0]!.replace(/`/g, ""))).toEqual(FILES.filter((f) => f.endsWith(".safetensors")));
    const read = (f: string) => decodeSafetensors(readFileSync(join(ckpt(), f)));
    const model = json(join(ckpt(), "model.json")) as { weights: { key: string; name: string }[] };
    const weights = read("weights.safetensors");
    expect([...weights.tensors.keys()]).toEqual(model.weights.map((w) => w.key));
    expect(model.weights.every((w) => w.key === w.name)).toBe(true); // plain variable names are kept
    expect(weights.metadata).toEqual({ format: CHECKPOINT_FORMAT });
    expect(rows[0]![2]).toContain(`\`{"format": "${CHECKPOINT_FORMAT}"}\``);
    const optimizer = json(join(ckpt(), "optimizer.json")) as { families: Record<string, number> };
    expect([...read("optimizer.safetensors").tensors.keys()]).toEqual(Object.entries(optimizer.families).flatMap(([f, n]) => Array.from({ length: n }, (_, i) => `${f}/${i}`)));
    const state = read("state.safetensors");
    expect(state.tensors.size).toBeGreaterThan(0); // early stopping's best weights, the normaliser's statistics
    expect([...state.tensors.keys()]).toEqual(Array.from({ length: state.tensors.size }, (_, i) => `t${i}`));
    const stateText = readFileSync(join(ckpt(), "trainer_state.json"), "utf8");
    for (const [name, t] of state.tensors) {
      expect(t.shape.length).toBe(1);
      expect(stateText.split(`"$tensor": "${name}"`).length - 1, name).toBe(1);
    }
  });

  const tamper: Record<string, (dir: string) => void> = {
    truncated: (dir) => writeFileSync(join(dir, "weights.safetensors"), readFileSync(join(dir, "weights.safetensors")).subarray(0, -1)),
    changed: (dir) => {
      const bytes = readFileSync(join(dir, "optimizer.safetensors"));
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff; // a tensor byte: same size, other content
      writeFileSync(join(dir, "optimizer.safetensors"), bytes);
    },
    missing: (dir) => unlinkSync(join(dir, "state.safetensors")),
    "no-manifest": (dir) => unlinkSync(join(dir, "manifest.json")),
    "bad-manifest": (dir) => writeFileSync(join(dir, "manifest.json"), JSON.stringify({ ...json(join(dir, "manifest.json")), format: "fitloop.checkpoint/0" })),
    "unknown-file": (dir) => {
      const manifest = json(join(dir, "manifest.json")) as unknown as Manifest;
      writeFileSync(join(dir, "manifest.json"), JSON.stringify({ ...manifest, files: { ...manifest.files, "../../etc/passwd": { size: 1, sha256: "0".repeat(64) } } }));
    },
    forged: (dir) => {
      // the first kernel is [4, 8]: a header that claims [4, 9] for the same bytes, and a manifest rewritten to match
      const text = readFileSync(join(dir, "weights.safetensors"), "latin1").replace('"shape":[4,8]', '"shape":[4,9]');
      const bytes = Buffer.from(text, "latin1");
      writeFileSync(join(dir, "weights.safetensors"), bytes);
      const manifest = json(join(dir, "manifest.json")) as unknown as Manifest;
      writeFileSync(join(dir, "manifest.json"), JSON.stringify({ ...manifest, files: { ...manifest.files, "weights.safetensors": { size: bytes.length, sha256: sha256(bytes) } } }));
    },
  };

  it("every refusal in the table happens as written on a tampered copy (CheckpointIntegrityError, CHECKPOINT_CORRUPT), and the table has no case the test does not provoke", async () => {
    const rows = table("| case | what is wrong | the message goes on |");
    expect(rows.map((r) => r[0]!.replace(/`/g, ""))).toEqual(Object.keys(tamper));
    for (const [name, , message] of rows) {
      const copy = join(work, `tampered-${name!.replace(/`/g, "")}`);
      cpSync(store, copy, { recursive: true });
      tamper[name!.replace(/`/g, "")]!(join(copy, latest));
      const error = await readCheckpoint(new FileStore(copy), latest).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, name).toBeInstanceOf(CheckpointIntegrityError);
      expect((error as CheckpointIntegrityError).code).toBe("CHECKPOINT_CORRUPT");
      expect((error as CheckpointIntegrityError).checkpoint).toBe(latest);
      expect((error as Error).message, name).toMatch(template(`checkpoint "<name>": ${message}`));
    }
  });

  it('"latest" skips a corrupt checkpoint with the warning the page quotes and loads the newest good one', async () => {
    const copy = join(work, "fallback");
    cpSync(store, copy, { recursive: true });
    tamper["truncated"]!(join(copy, latest));
    const warnings: string[] = [];
    const snapshot = await resumeFrom(new FileStore(copy), "latest", { logger: { warn: (m: string) => void warnings.push(m) } });
    const quoted = /`(fitloop checkpoint: skipped [^`]+)`/.exec(doc)![1]!;
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(template(quoted));
    expect(warnings[0]).toContain(`skipped "${latest}"`);
    const previous = readdirSync(store).filter((n) => n !== latest && n !== "pointers.json").sort((a, b) => Number(/step=(\d+)/.exec(b)![1]) - Number(/step=(\d+)/.exec(a)![1]))[0]!;
    expect(warnings[0]).toContain(`using "${previous}" instead`);
    expect(snapshot.trainer.train.step).toBe(Number(/step=(\d+)/.exec(previous)![1]));
  });

  const numpy = pythonModule("numpy");
  describe.skipIf(!numpy.path)(`the Python reader${numpy.note}`, () => {
    const python = /```python\n([\s\S]*?)```/.exec(doc)![1]!;
    // the page's usage line: python3 read_checkpoint.py <store directory>
    const script = join(work, "read_checkpoint.py");

    it("reads the latest checkpoint: verified files, weights (names, shapes, sums), optimizer, cursor and every plugin's state as the TypeScript loader reads them", async () => {
      writeFileSync(script, python);
      const { stdout } = await run(numpy.path!, [script, store], { timeout: 30_000 });
      const m = loaded.manifest;
      expect(stdout).toContain(`checkpoint ${latest}: step ${m.step}, epoch ${m.epoch}, ${Object.keys(m.files).length} files verified\n`);
      const lines = [...stdout.matchAll(/^weight (\S+) \[([\d, ]*)\] sum (-?[\d.]+)$/gm)];
      expect(lines.map((l) => l[1])).toEqual(loaded.weights.map((w) => w.name));
      lines.forEach((l, i) => {
        const w = loaded.weights[i]!;
        expect(l[2]!.split(", ").map(Number)).toEqual([...w.shape]);
        const sum = Array.from(w.values).reduce((a, b) => a + b, 0);
        expect(Math.abs(Number(l[3]) - sum), w.name).toBeLessThan(1e-5 * (1 + Math.abs(sum)));
      });
      const optimizer = loaded.snapshot!.optimizer;
      const slots = Object.values(optimizer.slots).reduce((n, list) => n + list.length, 0);
      expect(stdout).toContain(`optimizer ${optimizer.kind}, ${optimizer.iterations} steps, ${slots} slots: ${Object.keys(optimizer.slots).join(", ")}\n`);
      const { cursor, history } = loaded.snapshot!.trainer.train;
      expect(stdout).toContain(`cursor {'epoch': ${cursor.epoch}, 'batchIndex': ${cursor.batchIndex}}, ${history.length} epochs in the history\n`);
      const plugins = JSON.parse(/^plugins (.*)$/m.exec(stdout)![1]!) as unknown;
      const plain = JSON.parse(JSON.stringify(loaded.snapshot!.trainer.plugins, (_, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v))) as unknown;
      expect(plugins).toEqual(plain); // typed arrays from state.safetensors, bit for bit
    });

    it("refuses a corrupted file (the check can fail)", async () => {
      const copy = join(work, "python-corrupt");
      cpSync(store, copy, { recursive: true });
      tamper["changed"]!(join(copy, latest));
      writeFileSync(script, python);
      const { code, stderr } = await run(numpy.path!, [script, copy], { timeout: 30_000 }).then(
        (r) => ({ code: 0, stderr: r.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
      expect(code).not.toBe(0);
      expect(stderr).toContain("AssertionError: optimizer.safetensors is corrupt");
    });
  });
});
