/**
 * What a checkpoint costs: saving and loading the whole run of a ~10 MB model (weights plus Adam's
 * two slot sets: ~30 MB of tensors) through @fitloop/checkpoint's FileStore (encode, sha256 manifest,
 * a temporary directory with every file fsynced, rename, pointers; on load: manifest check, sha256 of
 * every file, decode), against the same number of bytes written (and read) with one plain
 * `fs.writeFile` (`fs.readFile`) and no fsync. Interleaved rounds, medians; the ratios are what to
 * compare (the disk's speed varies).
 *
 *   pnpm run bench:checkpoint     # env: ROUNDS (9)
 */
import "reflect-metadata";
import "@tensorflow/tfjs-backend-cpu";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Trainer, seeded, silentLogger, tensorData } from "../packages/core/src/index.js";
import { encodeRun, versions } from "../packages/callbacks/checkpoint/src/format.js";
import { readCheckpoint } from "../packages/callbacks/checkpoint/src/load.js";
import { FileStore } from "../packages/callbacks/checkpoint/src/node/index.js";
import { intEnv, median, printTable } from "./models.js";

const ROUNDS = intEnv("ROUNDS", 9);

async function main(): Promise<void> {
  await tf.setBackend("cpu");
  // 1600 x 1600 + 1600: 2.56 M weights = 10.2 MB
  const model = seeded(1, () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ inputShape: [1600], units: 1600 }));
    return m;
  });
  const { xs, ys } = seeded(2, () => ({ xs: tf.randomNormal([2, 1600]), ys: tf.randomNormal([2, 1600]) }));
  const trainer = new Trainer({ model, optimizer: tf.train.adam(1e-3), loss: "meanSquaredError", seed: 1, logger: silentLogger });
  await trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 2 }) }); // Adam's slots exist
  const dir = mkdtempSync(join(tmpdir(), "fitloop-bench-ckpt-"));
  const store = new FileStore(join(dir, "store"));
  const save = { checkpoint: [] as number[], plain: [] as number[] };
  const load = { checkpoint: [] as number[], plain: [] as number[] };
  let bytes = 0;
  try {
    for (let round = -1; round < ROUNDS; round++) {
      // checkpoint: from the trainer's snapshot to files on disk (what Checkpoint.save does)
      let t = performance.now();
      const snapshot = await trainer.snapshot();
      const files = await encodeRun(snapshot, model, { versions: versions() });
      await store.write(`r${round + 1}`, files);
      await store.writePointers({ latest: `r${round + 1}` });
      const saveMs = performance.now() - t;
      bytes = (await Promise.all(files.values())).reduce((a, f) => a + f.length, 0);
      // plain: the same bytes, one writeFile
      const blob = new Uint8Array(bytes);
      t = performance.now();
      await writeFile(join(dir, `plain${round + 1}.bin`), blob);
      const plainSave = performance.now() - t;
      t = performance.now();
      const loaded = await readCheckpoint(store, `r${round + 1}`);
      const loadMs = performance.now() - t;
      if (!loaded.snapshot) throw new Error("no snapshot");
      t = performance.now();
      await readFile(join(dir, `plain${round + 1}.bin`));
      const plainLoad = performance.now() - t;
      if (round >= 0) {
        save.checkpoint.push(saveMs);
        save.plain.push(plainSave);
        load.checkpoint.push(loadMs);
        load.plain.push(plainLoad);
      }
      process.stderr.write(`round ${round + 1}: save ${saveMs.toFixed(1)} vs ${plainSave.toFixed(1)} ms, load ${loadMs.toFixed(1)} vs ${plainLoad.toFixed(1)} ms\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const saveRatio = median(save.checkpoint.map((c, i) => c / save.plain[i]!));
  const loadRatio = median(load.checkpoint.map((c, i) => c / load.plain[i]!));
  const rows = [
    ["save", median(save.checkpoint).toFixed(1), median(save.plain).toFixed(1), saveRatio.toFixed(3)],
    ["load", median(load.checkpoint).toFixed(1), median(load.plain).toFixed(1), loadRatio.toFixed(3)],
  ];
  const header = ["", "checkpoint ms (median)", "plain fs ms (median)", "ratio (median of paired)"];
  printTable(header, rows);
  console.log("");
  console.log(`${(bytes / 1e6).toFixed(1)} MB per checkpoint (a ${(model.countParams() * 4 / 1e6).toFixed(1)} MB model, Adam slots, state, manifest); ${ROUNDS} rounds; checkpoint save includes reading the run from the device, encoding, sha256, fsyncs, rename and pointers; plain is one writeFile/readFile of as many bytes, no fsync`);
  console.log(JSON.stringify({ bench: "checkpoint", save_ratio: Math.round(saveRatio * 1000) / 1000, load_ratio: Math.round(loadRatio * 1000) / 1000, mb: Math.round(bytes / 1e5) / 10 }));
}

await main();
process.exit(0);
