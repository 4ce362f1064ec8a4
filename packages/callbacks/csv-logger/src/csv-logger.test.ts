import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Callback } from "@fitloop/core";
import { CSVLogger, JSONLLogger, parseCsv, readJsonl } from "./index.js";
import { eventually, fixture, read, recording, tempDir, trainer } from "./helpers.fixture.js";

/** What a history record is as a CSV row: epoch beside the logs. */
const asRows = (history: readonly { epoch: number; logs: Record<string, number> }[]) => history.map((h) => ({ epoch: h.epoch, ...h.logs }));

describe("CSVLogger, one row per epoch", () => {
  it("header: epoch and the first epoch's keys sorted; rows: the history's values exactly; the next fit overwrites", async () => {
    const dir = tempDir();
    const path = join(dir, "metrics.csv");
    const fx = fixture();
    const logger = new CSVLogger({ path });
    const r = await trainer(fx, [logger]).fit({ epochs: 3, train: fx.data(8), validation: fx.data(40) });
    const text = read(path);
    expect(text.split("\n")[0]).toBe("epoch,acc,loss,lr,val_acc,val_loss");
    expect(text.split("\n")).toHaveLength(5); // header, 3 rows, the final line break
    expect(parseCsv(text).rows).toEqual(asRows(r.state.history));
    expect(logger.header).toEqual(["epoch", "acc", "loss", "lr", "val_acc", "val_loss"]);

    const again = await trainer(fx, [logger]).fit({ epochs: 1, train: fx.data(8) }); // append "auto", not resumed: overwrite
    expect(parseCsv(read(path))).toEqual({ columns: ["epoch", "acc", "loss", "lr"], rows: asRows(again.state.history) });
    expect(readdirSync(dir)).toEqual(["metrics.csv"]);
    fx.dispose();
  });

  it("a key that appears later widens the header (file rewritten atomically, earlier rows NA); one that disappears is NA; non-finite values are written out", async () => {
    const dir = tempDir();
    const path = join(dir, "m.csv");
    const fx = fixture();
    const late: Callback = {
      name: "Late",
      afterTrain: (ctx) => {
        const e = ctx.state.epoch;
        if (e >= 1) ctx.log("late", [0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][e]!);
        if (e === 0 || e === 3) ctx.log("early", e);
      },
    };
    const r = await trainer(fx, [new CSVLogger({ path }), late]).fit({ epochs: 4, train: fx.data(8) });
    const lines = read(path).trimEnd().split("\n");
    expect(lines[0]).toBe("epoch,acc,early,loss,lr,late");
    expect(lines.map((l) => l.split(",")).map((c) => [c[0], c[2], c[5]])).toEqual([
      ["epoch", "early", "late"],
      ["0", "0", "NA"],
      ["1", "NA", "NaN"],
      ["2", "NA", "Infinity"],
      ["3", "3", "-Infinity"],
    ]);
    expect(parseCsv(read(path)).rows).toEqual(asRows(r.state.history)); // missing values are left out, as in the history
    expect(readdirSync(dir)).toEqual(["m.csv"]); // no temporary file left
    fx.dispose();
  });

  it("keys: only those, in that order; a listed key that is never logged is NA, said once; a log named epoch is left out, said once", async () => {
    const dir = tempDir();
    const fx = fixture();
    const { logger, warnings } = recording();
    const sneaky: Callback = { name: "Sneaky", afterTrain: (ctx) => ctx.log("epoch", 99) };
    const r = await trainer(fx, [new CSVLogger({ path: join(dir, "k.csv"), keys: ["val_loss", "loss", "nope"] }), new CSVLogger({ path: join(dir, "all.csv") }), sneaky], logger).fit({ epochs: 2, train: fx.data(8), validation: fx.data(40) });
    const k = read(join(dir, "k.csv")).trimEnd().split("\n");
    expect(k[0]).toBe("epoch,val_loss,loss,nope");
    expect(k.slice(1).every((l) => l.endsWith(",NA"))).toBe(true);
    expect(parseCsv(read(join(dir, "k.csv"))).rows.map((row) => row["loss"])).toEqual(r.state.history.map((h) => h.logs["loss"]));
    expect(parseCsv(read(join(dir, "all.csv"))).rows.map((row) => row["epoch"])).toEqual([0, 1]); // the column, not the log
    expect(warnings.sort()).toEqual([
      expect.stringMatching(/^CSVLogger\(.*all\.csv\): a log named "epoch" is not written: the file has its own "epoch" column$/),
      expect.stringMatching(/^CSVLogger\(.*k\.csv\): "nope" is not in the logs \(acc, epoch, loss, lr, val_acc, val_loss\); written as missing$/),
    ]);
    fx.dispose();
  });

  it("a run stopped mid-epoch still gets that epoch's row (its history record, written at the end of the fit)", async () => {
    const dir = tempDir();
    const fx = fixture();
    const stop: Callback = { name: "Stop", afterBatch: (ctx) => void (ctx.state.globalBatch === 7 && ctx.requestStop("test")) };
    const r = await trainer(fx, [new CSVLogger({ path: join(dir, "m.csv") }), stop]).fit({ epochs: 4, train: fx.data(8) });
    expect(r.outcome.status).toBe("stopped");
    expect(r.state.history).toHaveLength(2);
    expect(parseCsv(read(join(dir, "m.csv"))).rows).toEqual(asRows(r.state.history));
    fx.dispose();
  });
});

describe("every N steps", () => {
  it("CSV and JSONL: epoch, step and the batch's logs at every Nth optimizer step (a skipped step is not written twice); a batch key that appears later widens the header", async () => {
    const dir = tempDir();
    const fx = fixture();
    const seen: Record<string, number>[] = [];
    const probe: Callback = { name: "Probe", batchCheckpoint: (ctx) => void seen.push({ epoch: ctx.state.epoch, step: ctx.state.step, ...ctx.logs }) };
    const skip: Callback = { name: "Skip", beforeStep: (ctx) => void (ctx.state.globalBatch === 3 && ctx.skipStep("test")) };
    const spike: Callback = { name: "Spike", beforeStep: (ctx) => void (ctx.state.globalBatch >= 8 && ctx.log("spike", ctx.state.globalBatch === 9 ? Number.NaN : 1)) };
    const buffered = new CSVLogger({ path: join(dir, "steps.csv"), every: { steps: 3 } });
    const eager = new CSVLogger({ path: join(dir, "eager.csv"), every: { steps: 3 }, flushSeconds: 0 });
    const jsonl = new JSONLLogger({ path: join(dir, "steps.jsonl"), every: { steps: 3 } });
    let midEpoch: number[][] = [];
    const stepsIn = (f: string) => parseCsv(read(join(dir, f))).rows.map((x) => x["step"]!);
    // the writes run in the background: give them the time to land (the step path does not wait for them)
    const peek: Callback = { name: "Peek", afterBatch: async (ctx) => void (ctx.state.globalBatch === 7 && (await eventually(() => stepsIn("eager.csv").length === 2, 5000), (midEpoch = ["steps.csv", "eager.csv"].map(stepsIn)))) };
    const r = await trainer(fx, [buffered, eager, jsonl, probe, skip, spike, peek]).fit({ epochs: 3, train: fx.data(8) });
    expect(midEpoch).toEqual([[3], [3, 6]]); // at step 7: buffered until the epoch's end, or handed to the write at once with flushSeconds: 0
    expect(r.state.step).toBe(14); // 15 batches, one skipped
    const first = new Map<number, Record<string, number>>();
    for (const s of seen) if (s["step"]! % 3 === 0 && s["step"]! > 0 && !first.has(s["step"]!)) first.set(s["step"]!, s);
    const expected = [...first.values()];
    expect(expected.map((s) => s["step"])).toEqual([3, 6, 9, 12]);
    const csv = read(join(dir, "steps.csv"));
    expect(csv.split("\n")[0]).toBe("epoch,step,acc,loss,spike");
    expect(parseCsv(csv).rows).toEqual(expected);
    expect(read(join(dir, "eager.csv"))).toBe(csv); // flushed at every row: the same file
    const lines = readJsonl(read(join(dir, "steps.jsonl")));
    expect(lines.map(({ epoch, step, logs }) => ({ epoch, step, ...logs }))).toEqual(expected);
    const times = lines.map((l) => Date.parse(l.time!));
    expect(times.every((t, i) => Number.isFinite(t) && (i === 0 || t >= times[i - 1]!))).toBe(true);
    expect(lines[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    fx.dispose();
  });
});

describe("JSONLLogger", () => {
  it("one object per epoch: time, epoch, step and the logs; non-finite values come back from readJsonl", async () => {
    const dir = tempDir();
    const path = join(dir, "m.jsonl");
    const fx = fixture();
    const odd: Callback = { name: "Odd", afterTrain: (ctx) => ctx.log("odd", [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][ctx.state.epoch]!) };
    const start = Date.now();
    const r = await trainer(fx, [new JSONLLogger({ path }), odd]).fit({ epochs: 3, train: fx.data(8), validation: fx.data(40) });
    const rows = readJsonl(read(path));
    expect(rows.map((x) => ({ epoch: x.epoch, logs: x.logs }))).toEqual(r.state.history);
    expect(rows.map((x) => x.step)).toEqual([5, 10, 15]);
    for (const x of rows) expect(Date.parse(x.time!)).toBeGreaterThanOrEqual(start - 1000);
    expect(read(path).split("\n")[1]).toMatch(/^\{"time":"[^"]+","epoch":1,"step":10,"acc":[\d.]+,"loss":[\d.]+,"lr":0\.05,"odd":"Infinity","val_acc":[\d.]+,"val_loss":[\d.e-]+\}$/);
    fx.dispose();
  });
});
