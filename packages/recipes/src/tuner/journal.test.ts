import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger, type Logger } from "@fitloop/core";
import { JournalReplay, MemoryJournal, Study, TunerError, choice, logUniform, localIsoTimestamp, parseLocalIsoTimestamp, parsePyJson, pyFloatRepr, stringifyPy, tune, type JournalRecord, type JournalStorage } from "./index.js";
import { FileJournal } from "./node.js";

const dir = mkdtempSync(join(tmpdir(), "fitloop-journal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const fresh = () => join(dir, `j${files++}.log`);
const rec = (i: number): JournalRecord => ({ op_code: 3, worker_id: "w", study_id: 0, system_attr: { i } });
const warnings = (): Logger & { lines: string[] } => {
  const lines: string[] = [];
  return { ...silentLogger, lines, warn: (m: string) => void lines.push(m) };
};

describe("Python's JSON", () => {
  it("reads bare NaN/Infinity/-Infinity outside strings only, and writes them back the same way", () => {
    const line = '{"a": NaN, "b": [Infinity, -Infinity, 1e-05, -0.5], "s": "NaN and -Infinity stay text", "k\\"ey": {"__proto__": 1}}';
    const parsed = parsePyJson(line);
    const v = parsed as { a: number; b: number[]; s: string; 'k"ey': object };
    expect(v.a).toBeNaN();
    expect(v.b).toEqual([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-5, -0.5]);
    expect(v.s).toBe("NaN and -Infinity stay text");
    expect(Object.keys(v['k"ey'])).toEqual(["__proto__"]);
    expect(stringifyPy(parsed)).toBe(line);
    expect(() => parsePyJson('{"a": NaN,}')).toThrow(SyntaxError);
    expect(() => parsePyJson('{"a": nan}')).toThrow(SyntaxError);
  });

  it("floats as Python's repr, strings as ensure_ascii, Python's separators", () => {
    const cases: [number, string][] = [[0.1, "0.1"], [1e-5, "1e-05"], [1.5e-7, "1.5e-07"], [0.0001, "0.0001"], [1e16, "1e+16"], [123, "123.0"], [1e22, "1e+22"], [-0, "-0.0"], [2 ** 60 + 0.5, "1.152921504606847e+18"]];
    for (const [x, s] of cases) expect(pyFloatRepr(x)).toBe(s);
    expect(stringifyPy({ a: [1, 2.5, null, true], b: "ü\u0007\n\"\\" })).toBe('{"a": [1, 2.5, null, true], "b": "\\u00fc\\u0007\\n\\"\\\\"}');
  });

  it("timestamps: naive local time with microseconds, no zone", () => {
    const t = localIsoTimestamp(Date.UTC(2024, 4, 1, 12, 0, 0, 123) + 0.456);
    expect(t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.123456$/);
    expect(parseLocalIsoTimestamp(t)).toBeCloseTo(Date.UTC(2024, 4, 1, 12, 0, 0, 123) + 0.456, 3);
  });
});

describe("replay, Optuna's rules", () => {
  it("ids by log order; the first RUNNING claims a WAITING trial; records for a finished trial are ignored; a duplicate study name is ignored", () => {
    const r = new JournalReplay();
    const at = "2024-01-01T00:00:00.000001";
    r.apply([
      { op_code: 0, worker_id: "a", study_name: "s", directions: [1] },
      { op_code: 0, worker_id: "b", study_name: "s", directions: [2] },
      { op_code: 4, worker_id: "a", study_id: 0, datetime_start: null, state: 4, system_attrs: { fixed_params: { x: 1 } } },
      { op_code: 6, worker_id: "w1", trial_id: 0, state: 0, values: null, datetime_start: at },
      { op_code: 6, worker_id: "w2", trial_id: 0, state: 0, values: null, datetime_start: "2030-01-01T00:00:00.000000" },
      { op_code: 6, worker_id: "w1", trial_id: 0, state: 1, values: [0.5], datetime_complete: at },
      { op_code: 6, worker_id: "w2", trial_id: 0, state: 3, values: null, datetime_complete: at },
      { op_code: 8, worker_id: "w2", trial_id: 0, user_attr: { late: true } },
      { op_code: 4, worker_id: "b", study_id: 7, datetime_start: null },
    ]);
    expect([...r.studies.values()].map((s) => [s.id, s.name, s.directions])).toEqual([[0, "s", ["minimize"]]]);
    expect(r.ownedBy("w1")).toBe(0);
    expect(r.ownedBy("w2")).toBeUndefined();
    expect(r.finisherOf(0)).toBe("w1");
    expect(r.trials).toHaveLength(1); // the trial for a missing study is ignored
    expect(r.trials[0]).toMatchObject({ number: 0, state: "COMPLETE", value: 0.5, datetimeStart: at, userAttrs: {} });
    expect(r.logNumberRead).toBe(9);
  });
});

describe.each([
  ["memory", () => new MemoryJournal()],
  ["file", () => new FileJournal(fresh(), { logger: silentLogger })],
] as const)("%s journal", (_kind, make: () => JournalStorage) => {
  it("round trip: a study written through one handle reads the same through another, from any log number", async () => {
    const storage = make();
    const r = await tune({ study: { storage, name: "s" }, space: { lr: logUniform(1e-4, 1), opt: choice(["adam", "sgd"]) }, trials: 4, objective: async ({ lr }, t) => (await t.report(Number.NaN, 0), await t.setUserAttr("inf", Number.POSITIVE_INFINITY), lr) });
    const again = await Study.open({ storage, name: "s" });
    expect(again.trials).toEqual(r.study.trials);
    expect(again.trials[0]!.intermediateValues[0]).toBeNaN();
    expect(again.trials[0]!.userAttrs["inf"]).toBe(Number.POSITIVE_INFINITY);
    const all = await storage.readFrom(0);
    expect(await storage.readFrom(5)).toEqual(all.slice(5));
    expect(await storage.readFrom(all.length)).toEqual([]);
  });

  it("two handles in one process creating one study at once get one study", async () => {
    const storage = make();
    const [a, b] = await Promise.all([Study.open({ storage, name: "x" }), Study.open({ storage, name: "x" })]);
    expect(a.id).toBe(b.id);
    expect((await storage.readFrom(0)).filter((r) => r.op_code === 0)).toHaveLength(1);
  });
});

describe("file journal", () => {
  it("a torn last line is skipped by readers and cut by the next append; a whole record without its newline gets one", async () => {
    const path = fresh();
    const log = warnings();
    const j = new FileJournal(path, { logger: log });
    await j.append([rec(0), rec(1)]);
    appendFileSync(path, '{"op_code": 3, "worker_id": "w", "stu');
    expect((await j.readFrom(0)).length).toBe(2);
    expect((await new FileJournal(path).readFrom(0)).length).toBe(2);
    await j.append([rec(2)]);
    expect(log.lines.join()).toMatch(/cut a torn last line \(37 bytes/);
    expect(readFileSync(path, "utf8").split("\n").filter(Boolean).map((l) => (parsePyJson(l) as { system_attr: { i: number } }).system_attr.i)).toEqual([0, 1, 2]);
    appendFileSync(path, stringifyPy(rec(3))); // complete, only the newline missing
    expect((await j.readFrom(0)).length).toBe(3); // maybe still being written: not yet
    await j.append([rec(4)]);
    expect((await j.readFrom(0)).map((r) => (r["system_attr"] as { i: number }).i)).toEqual([0, 1, 2, 3, 4]);
  });

  it("a bad line before the last one is JOURNAL_CORRUPT, naming the line; a bad last line is skipped, as Optuna does", async () => {
    const path = fresh();
    writeFileSync(path, `${stringifyPy(rec(0))}\nnot json\n`);
    expect(await new FileJournal(path).readFrom(0)).toHaveLength(1);
    appendFileSync(path, `${stringifyPy(rec(2))}\n`);
    const err = await new FileJournal(path).readFrom(0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TunerError);
    expect((err as TunerError).code).toBe("JOURNAL_CORRUPT");
    expect((err as Error).message).toMatch(/line 2 of .* is not JSON/);
    writeFileSync(path, '{"op_code": 10, "worker_id": "w"}\n{"op_code": 3, "worker_id": "w"}\n');
    await expect(new FileJournal(path).readFrom(0)).rejects.toThrow(/op_code 10; Optuna's journal has 0-9/);
  });

  it("the lock is the symlink <file>.lock: held, others wait; stale (no journal write for staleLockMs) it is broken with a warning; a lock taken away is LOCK_LOST", async () => {
    const path = fresh();
    const log = warnings();
    const j = new FileJournal(path, { staleLockMs: 300, logger: log });
    symlinkSync(path, `${path}.lock`); // a holder that died
    const t0 = Date.now();
    await j.append([rec(0)]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(log.lines.join()).toMatch(/broke the lock .*\.lock/);
    expect(existsSync(`${path}.lock`)).toBe(false);

    let inside = false;
    const held = j.locked(async (w) => {
      inside = true;
      await new Promise((resolve) => setTimeout(resolve, 100));
      await w.append([rec(1)]);
      inside = false;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    await j.append([rec(2)]); // waits for the holder
    expect(inside).toBe(false);
    await held;
    expect((await j.readFrom(0)).map((r) => (r["system_attr"] as { i: number }).i)).toEqual([0, 1, 2]);

    const lost = j.locked(async () => unlinkSync(`${path}.lock`));
    await expect(lost).rejects.toMatchObject({ code: "LOCK_LOST" });
  });
});
