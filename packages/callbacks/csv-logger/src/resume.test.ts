import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Callback, RunSnapshot } from "@fitloop/core";
import { epochSnapshots } from "@fitloop/core/testing";
import { CSVLogger, JSONLLogger, parseCsv, readJsonl } from "./index.js";
import { fixture, read, recording, tempDir, trainer } from "./helpers.fixture.js";

const EPOCHS = 4;
/** Both loggers on `<dir>/<name>.csv|.jsonl`. */
const loggers = (dir: string, name: string, every: "epoch" | { steps: number } = "epoch"): Callback[] => [new CSVLogger({ path: join(dir, `${name}.csv`), every }), new JSONLLogger({ path: join(dir, `${name}.jsonl`), every })];
const withoutTime = (text: string) => readJsonl(text).map(({ time: _time, ...rest }) => rest);

/** A whole run with the loggers on `name`; returns the extra plugins' results. */
async function run(dir: string, name: string, options: { every?: "epoch" | { steps: number }; extra?: Callback[]; resumeFrom?: RunSnapshot } = {}) {
  const fx = fixture();
  const { logger, warnings } = recording();
  const r = await trainer(fx, [...loggers(dir, name, options.every), ...(options.extra ?? [])], logger).fit({ epochs: EPOCHS, train: fx.data(8), validation: fx.data(40), ...(options.resumeFrom ? { resumeFrom: options.resumeFrom } : {}) });
  fx.dispose();
  return { r, warnings };
}

/** Takes a snapshot at the batchCheckpoint of optimizer step `step` (mid-epoch). */
const snapshotAtStep = (step: number): Callback & { snap?: RunSnapshot } => {
  const p: Callback & { snap?: RunSnapshot } = { name: `SnapAt${step}`, batchCheckpoint: async (ctx) => void (ctx.state.step === step && (p.snap = structuredClone(await ctx.snapshot()))) };
  return p;
};

describe("append on resume", () => {
  it("per epoch: a run that went on past its last checkpoint (as a crashed one does) and is resumed from it leaves the files an uninterrupted run writes: the rows past the resume point are replaced, none duplicated", async () => {
    const dir = tempDir();
    await run(dir, "straight");
    const snaps = epochSnapshots();
    await run(dir, "resumed", { extra: [snaps] }); // rows for epochs 0-3
    const before = read(join(dir, "resumed.jsonl")).split("\n");
    const { warnings } = await run(dir, "resumed", { resumeFrom: snaps.at.get(1)! }); // cursor at epoch 2
    expect(read(join(dir, "resumed.csv"))).toBe(read(join(dir, "straight.csv")));
    expect(parseCsv(read(join(dir, "resumed.csv"))).rows.map((r) => r["epoch"])).toEqual([0, 1, 2, 3]);
    expect(withoutTime(read(join(dir, "resumed.jsonl")))).toEqual(withoutTime(read(join(dir, "straight.jsonl"))));
    expect(read(join(dir, "resumed.jsonl")).split("\n").slice(0, 2)).toEqual(before.slice(0, 2)); // the rows kept are the first run's lines, times included
    expect(warnings).toEqual([]);
  });

  it("every N steps, stopped mid-epoch: the run stops at step 11 with a snapshot at step 7; resumed from it, rows after step 7 are replaced and the files equal an uninterrupted run's", async () => {
    const dir = tempDir();
    const every = { steps: 2 };
    await run(dir, "straight", { every });
    const snap = snapshotAtStep(7);
    const stop: Callback = { name: "Stop", afterBatch: (ctx) => void (ctx.state.step === 11 && ctx.requestStop("interrupted")) };
    const { r } = await run(dir, "resumed", { every, extra: [snap, stop] });
    expect(r.outcome.status).toBe("stopped");
    expect(parseCsv(read(join(dir, "resumed.csv"))).rows.map((x) => x["step"])).toEqual([2, 4, 6, 8, 10]);
    await run(dir, "resumed", { every, resumeFrom: snap.snap! });
    expect(parseCsv(read(join(dir, "resumed.csv"))).rows.map((x) => x["step"])).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
    expect(read(join(dir, "resumed.csv"))).toBe(read(join(dir, "straight.csv")));
    expect(withoutTime(read(join(dir, "resumed.jsonl")))).toEqual(withoutTime(read(join(dir, "straight.jsonl"))));
  });

  it("epoch rows a killed run never wrote are restored from the checkpoint's history (JSONL: time and step null); lost step rows are warned about once", async () => {
    const dir = tempDir();
    await run(dir, "straight");
    const snaps = epochSnapshots();
    const snap = snapshotAtStep(7);
    await run(dir, "resumed", { extra: [snaps] });
    await run(dir, "steps", { every: { steps: 2 }, extra: [snap] });
    // as if the kill came before the rows of epochs 1 and 2 (and steps 6-20) reached the files
    const cut = (file: string, lines: number) => writeFileSync(join(dir, file), read(join(dir, file)).split("\n").slice(0, lines).join("\n") + "\n");
    cut("resumed.csv", 2);
    cut("resumed.jsonl", 1);
    cut("steps.csv", 3);
    await run(dir, "resumed", { resumeFrom: snaps.at.get(2)! }); // cursor at epoch 3
    expect(read(join(dir, "resumed.csv"))).toBe(read(join(dir, "straight.csv")));
    const rows = readJsonl(read(join(dir, "resumed.jsonl")));
    expect(rows.map((x) => [x.time === null, x.step])).toEqual([
      [false, 5],
      [true, null],
      [true, null],
      [false, 20],
    ]);
    expect(rows.map((x) => x.logs)).toEqual(readJsonl(read(join(dir, "straight.jsonl"))).map((x) => x.logs));
    const { warnings } = await run(dir, "steps", { every: { steps: 2 }, resumeFrom: snap.snap! });
    expect(warnings).toEqual([expect.stringMatching(/^CSVLogger\(.*steps\.csv\): .*steps\.csv has no rows for step 6: the interrupted run ended before writing them \(step rows are buffered, see flushSeconds\); the resumed run goes on from step 7$/)]);
    expect(parseCsv(read(join(dir, "steps.csv"))).rows.map((x) => x["step"])).toEqual([2, 4, 8, 10, 12, 14, 16, 18, 20]);
  });

  it("appending to an earlier fit's rows: the header is not rewritten unless it must widen; resuming the second fit leaves the first fit's rows alone (the logger's state says where its rows start; without it, the last place the epoch goes down)", async () => {
    const dir = tempDir();
    const path = join(dir, "m.csv");
    const fx = fixture();
    await trainer(fx, [new CSVLogger({ path, append: true })]).fit({ epochs: 3, train: fx.data(8) }); // no validation: no val_* columns
    const first = read(path);
    const snaps = epochSnapshots();
    await trainer(fx, [new CSVLogger({ path, append: true }), snaps]).fit({ epochs: 3, train: fx.data(8), validation: fx.data(40) });
    const both = read(path);
    const t = parseCsv(both);
    expect(t.columns).toEqual(["epoch", "acc", "loss", "lr", "val_acc", "val_loss"]); // widened, not a second header
    expect(t.rows.map((r) => [r["epoch"], "val_loss" in r])).toEqual([
      [0, false],
      [1, false],
      [2, false],
      [0, true],
      [1, true],
      [2, true],
    ]);
    expect(both.split("\n").slice(1, 4)).toEqual(first.split("\n").slice(1, 4).map((l) => `${l},NA,NA`));
    for (const resumeFrom of [snaps.at.get(0)!, { ...snaps.at.get(0)!, trainer: { ...snaps.at.get(0)!.trainer, plugins: {} } }]) {
      const again = fixture();
      await trainer(again, [new CSVLogger({ path })]).fit({ epochs: 3, train: again.data(8), validation: again.data(40), resumeFrom });
      expect(read(path)).toBe(both); // the second fit's rows 1-2 replaced by the same values; the first fit's kept
      again.dispose();
    }
    fx.dispose();
  });

  it("append: false on resume overwrites (the resumed epochs only); an incomplete last line (a write cut short) is dropped, said once", async () => {
    const dir = tempDir();
    const path = join(dir, "m.csv");
    const snaps = epochSnapshots();
    const fx = fixture();
    await trainer(fx, [new CSVLogger({ path }), snaps]).fit({ epochs: 3, train: fx.data(8) });
    const full = read(path);
    await trainer(fx, [new CSVLogger({ path, append: false })]).fit({ epochs: 3, train: fx.data(8), resumeFrom: snaps.at.get(1)! });
    expect(parseCsv(read(path)).rows.map((r) => r["epoch"])).toEqual([2]);
    writeFileSync(path, full);
    appendFileSync(path, "3,0.5,0.1"); // no line break: cut short
    const { logger, warnings } = recording();
    await trainer(fx, [new CSVLogger({ path, append: true })], logger).fit({ epochs: 1, train: fx.data(8) });
    expect(parseCsv(read(path)).rows.map((r) => r["epoch"])).toEqual([0, 1, 2, 0]);
    expect(warnings).toEqual([expect.stringMatching(/dropped an incomplete last line of .*m\.csv \(a write cut short\)$/)]);
    writeFileSync(path, "epoch,ac"); // cut short in the header
    await trainer(fx, [new CSVLogger({ path, append: true })]).fit({ epochs: 1, train: fx.data(8) });
    expect(parseCsv(read(path)).columns).toEqual(["epoch", "acc", "loss", "lr"]);
    fx.dispose();
  });
});
