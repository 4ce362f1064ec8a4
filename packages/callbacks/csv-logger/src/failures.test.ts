import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER, OptionsError, StateError, silentLogger, type Callback, type StateDict } from "@fitloop/core";
import { expectNoLeaks, expectRefused, expectRejected, failingPlugins, roundTripState, stateWithPlugins, weightsOf } from "@fitloop/core/testing";
import { CSVLogger, JSONLLogger, parseCsv, readJsonl } from "./index.js";
import { eventually, fixture, openFilesUnder, read, recording, tempDir, trainer } from "./helpers.fixture.js";

/** Does `what` to the file system in epoch 1's afterEpoch (after epoch 0's row is written). */
const sabotage = (what: () => void): Callback => ({ name: "Sabotage", afterEpoch: (ctx) => void (ctx.state.epoch === 1 && what()) });

describe("a write error is reported once and training goes on", () => {
  it("the directory removed mid-run, or the file replaced by a directory: the run completes, one warning, writeError set; the rows before it were written", async () => {
    const dir = tempDir();
    const sub = join(dir, "logs");
    const cases: [string, Callback, RegExp][] = [
      [join(sub, "a.csv"), sabotage(() => rmSync(sub, { recursive: true })), /ENOENT/],
      [join(dir, "b.jsonl"), sabotage(() => (rmSync(join(dir, "b.jsonl")), mkdirSync(join(dir, "b.jsonl")))), /EISDIR/],
    ];
    for (const [path, what, code] of cases) {
      const fx = fixture();
      const { logger, warnings } = recording();
      const sink = path.endsWith(".csv") ? new CSVLogger({ path }) : new JSONLLogger({ path });
      let rowsSeen = -1;
      // epoch 0's row is written in the background (the training path does not wait for it)
      const peek: Callback = { name: "Peek", beforeEpoch: async (ctx) => void (ctx.state.epoch === 1 && (await eventually(() => readJsonl(read(path)).length > 0, 5000), (rowsSeen = readJsonl(read(path)).length))) };
      const r = await trainer(fx, [sink, what, ...(path.endsWith(".jsonl") ? [peek] : [])], logger).fit({ epochs: 4, train: fx.data(8) });
      expect(r.outcome.status).toBe("completed");
      expect(r.state.history).toHaveLength(4);
      expect(warnings).toEqual([expect.stringMatching(new RegExp(`^${sink.name.replace(/[()./]/g, "\\$&")}: cannot write .* \\(.*${code.source}.*\\); no more rows are written in this run, training goes on$`))]);
      expect(String(sink.writeError)).toMatch(code);
      if (path.endsWith(".jsonl")) expect(rowsSeen).toBe(1); // epoch 0's row was on disk before the sabotage
      fx.dispose();
    }
  });

  it("a file that is not this logger's format is left as it is when appending: one warning, nothing written, training goes on", async () => {
    const dir = tempDir();
    const path = join(dir, "notes.csv");
    const foreign = "name,score\nalice,3\n";
    writeFileSync(path, foreign);
    const { logger, warnings } = recording();
    const fx = fixture();
    const r = await trainer(fx, [new CSVLogger({ path, append: true })], logger).fit({ epochs: 2, train: fx.data(8) });
    expect(r.outcome.status).toBe("completed");
    expect(read(path)).toBe(foreign);
    expect(warnings).toEqual([expect.stringMatching(/notes\.csv is not a file this logger can append to \(line 1: the first column is "name", not "epoch"\); it is left as it is and nothing is written in this run: move it away, or pass append: false to overwrite it$/)]);
    fx.dispose();
  });
});

describe("options", () => {
  it("one OptionsError naming every bad option, before any work", () => {
    const dir = tempDir();
    const e = expectRefused(
      () => new CSVLogger({ path: dir, separator: '"', append: "yes" as never, every: { steps: 0 }, keys: ["loss", "loss"], flushSeconds: -1, typo: 1 } as never),
      OptionsError,
      "INVALID_OPTIONS",
      [/path: ".*" is a directory: give a file in it, e\.g\. ".*metrics\.csv"/, /separator: cannot be a quote or a line break/, /append: must be true, false or "auto"/, /every\.steps: must be an integer >= 1/, /keys: names a log twice/, /flushSeconds: must be >= 0/, /unknown option "typo"/],
    );
    expect(e.issues).toHaveLength(7);
    const refused: [() => unknown, RegExp][] = [
      [() => new CSVLogger({ path: "" }), /path: must be a file path, e\.g\. logs\/metrics\.csv \(got an empty string\)/],
      [() => new CSVLogger({} as never), /path: must be a file path/],
      [() => new JSONLLogger({ path: "logs/" }), /path: "logs\/" is a directory/],
      [() => new CSVLogger({ path: "a\0b" }), /path: must not contain a NUL character/],
      [() => new CSVLogger({ path: "m.csv", separator: ",," }), /separator: must be one character/],
      [() => new CSVLogger({ path: "m.csv", every: { steps: 2 }, keys: ["step"] }), /keys: "step" is a column of its own/],
      [() => new JSONLLogger({ path: "m.jsonl", keys: ["time"] }), /keys: "time" is a field of every line/],
      [() => new JSONLLogger({ path: "m.jsonl", keys: [] }), /keys: must name at least one log/],
      [() => new JSONLLogger({ path: "m.jsonl", every: "batch" as never }), /every: must be "epoch"/],
      [() => new JSONLLogger({ path: "m.jsonl", separator: ";" } as never), /unknown option "separator"/],
    ];
    for (const [fn, culprit] of refused) expectRefused(fn, OptionsError, "INVALID_OPTIONS", culprit);
  });

  it("a path that became a directory, or a file two loggers write, fails the run before its first step (weights unchanged)", async () => {
    const dir = tempDir();
    const path = join(dir, "m.csv");
    const fx = fixture();
    const late = new CSVLogger({ path });
    mkdirSync(path);
    const t = trainer(fx, [late]); // made outside: a new optimizer allocates tensors
    await expectRejected(() => t.fit({ epochs: 1, train: fx.data(8) }), OptionsError, "INVALID_OPTIONS", /path: ".*m\.csv" is a directory/, { model: fx.model });
    const other = join(dir, "n.csv");
    const t2 = trainer(fx, [new CSVLogger({ path: other }), new CSVLogger({ path: other, name: "Second", stateKey: "second" })]);
    await expectRejected(() => t2.fit({ epochs: 1, train: fx.data(8) }), OptionsError, "INVALID_OPTIONS", /is being written by CSVLogger\(.*n\.csv\) now: give each logger its own file/, { model: fx.model });
    await trainer(fx, [new CSVLogger({ path: other })]).fit({ epochs: 1, train: fx.data(8) }); // released after the failed run
    fx.dispose();
  });
});

describe("state", () => {
  it("the state (where this run's rows start) survives a checkpoint's round trip; bad state is a StateError before any step", async () => {
    const dir = tempDir();
    const sink = new CSVLogger({ path: join(dir, "m.csv") });
    sink.loadStateDict(roundTripState({ rowsBefore: 4 }));
    expect(sink.stateDict()).toEqual({ rowsBefore: 0 }); // what this run has; the loaded value is used when the run resumes
    for (const bad of [{ rowsBefore: -1 }, { rowsBefore: 1.5 }, {}, { rowsBefore: 1, x: 1 }] as StateDict[]) expect(() => sink.loadStateDict(bad)).toThrow(StateError);
    const fx = fixture();
    const before = weightsOf(fx.model);
    const t = trainer(fx, [sink]);
    t.loadStateDict(stateWithPlugins({ [sink.stateKey]: { rowsBefore: "many" } }));
    await expect(t.fit({ epochs: 1, train: fx.data(8) })).rejects.toThrow(/CSVLogger\(.*m\.csv\): the saved state is invalid: rowsBefore/);
    expect(weightsOf(fx.model)).toEqual(before);
    fx.dispose();
  });
});

describe("no tensor leaks, no open files", () => {
  it("on success, with a throw in every hook of another plugin, on CancelFit: no tensor leaks, every file closed when fit() returns, and what was written is a readable file", async () => {
    const dir = tempDir();
    const fx = fixture();
    const opt = tf.train.adam(0.05);
    const run = (extra: Callback[]) =>
      trainer(fx, [new CSVLogger({ path: join(dir, "m.csv"), every: { steps: 2 } }), new JSONLLogger({ path: join(dir, "m.jsonl") }), ...extra], silentLogger, opt).fit({ epochs: 2, train: fx.data(8), validation: fx.data(40) });
    await expectNoLeaks(() => run([]), { warmup: 1, iterations: 2 });
    const failures = failingPlugins({ when: (ctx) => ctx.event === "beforeFit" || ctx.event === "afterFit" || ctx.state.globalBatch >= 3 });
    // before the loggers in before* hooks (so a beforeFit failure comes before theirs), and after them
    for (const { where, plugin } of [...failures, ...failures.map((f) => ({ where: `${f.where} (last)`, plugin: { ...f.plugin, name: `${f.plugin.name}-last`, order: ORDER.LAST } }))]) {
      await expectNoLeaks(() => run([plugin]).catch(() => undefined), { warmup: 1, iterations: 1 });
      expect(openFilesUnder(dir), where).toEqual([]);
      expect(() => parseCsv(read(join(dir, "m.csv"))), where).not.toThrow();
      expect(() => readJsonl(read(join(dir, "m.jsonl"))), where).not.toThrow();
      if (where.startsWith("cancel")) expect(parseCsv(read(join(dir, "m.csv"))).rows.map((r) => r["step"]), where).toEqual([2]); // step 4's batch was cancelled in afterBatch, before its safe point: rows up to step 2
    }
    expect(readdirSync(dir).sort()).toEqual(["m.csv", "m.jsonl"]);
    opt.dispose();
    fx.dispose();
  });
});
