import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { systemTool } from "../../../../scripts/system-tools.js";
import { formatCsvRow, formatJsonlRow, formatNumber, LogFileFormatError, parseCsv, parseNumber, readJsonl } from "./index.js";

const tricky = ["plain", "with,comma", 'with "quotes"', "two\nlines", "cr\r\nlf", " padded ", "NA", "ünïcödé ✓", "__proto__", "semi;colon", "tab\there", ""].filter((k) => k !== "");
const values = [0.1 + 0.2, -1.5e-300, 5e-324, Number.MAX_VALUE, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0, 42, 1e21, -7.25];

// Python's own csv and json modules are the independent readers (skipped loudly without python3)
const python3 = systemTool("python3");
const python = python3.path !== undefined;

describe("CSV", () => {
  it("round trip: tricky column names (separator, quotes, line breaks, NA, __proto__) and every kind of number, for three separators", () => {
    for (const sep of [",", "\t", ";"]) {
      const columns = ["epoch", ...tricky];
      const rows = [0, 1, 2].map((epoch) => {
        const row: Record<string, number> = { epoch };
        tricky.forEach((k, i) => {
          // a missing value in every row somewhere (written NA, read back as absent)
          if ((i + epoch) % 5 !== 0) Object.defineProperty(row, k, { value: values[(i + epoch) % values.length]!, enumerable: true, writable: true, configurable: true });
        });
        return row;
      });
      const text = [columns, ...rows.map((r) => columns.map((c) => (Object.hasOwn(r, c) ? r[c] : undefined)))].map((cells) => formatCsvRow(cells, sep) + "\n").join("");
      const back = parseCsv(text, { separator: sep });
      expect(back.columns).toEqual(columns);
      expect(back.rows).toHaveLength(3);
      back.rows.forEach((r, i) => {
        expect(Object.keys(r).sort()).toEqual(Object.keys(rows[i]!).sort());
        for (const k of Object.keys(rows[i]!)) expect(Object.is(r[k], rows[i]![k]), `${JSON.stringify(k)} with ${JSON.stringify(sep)}`).toBe(true);
      });
      expect(Object.getPrototypeOf(back.rows[1])).toBe(Object.prototype); // __proto__ stayed a column
    }
  });

  it("non-finite values are written explicitly, and Keras' spellings (nan, inf, CRLF) are read too", () => {
    expect(formatCsvRow([0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, undefined, -0])).toBe("0,NaN,Infinity,-Infinity,NA,-0");
    const keras = "epoch,loss,val_loss\r\n0,nan,inf\r\n1,-inf,NA\r\n2,0.5,\r\n";
    const t = parseCsv(keras);
    expect(t.rows).toEqual([{ epoch: 0, loss: Number.NaN, val_loss: Number.POSITIVE_INFINITY }, { epoch: 1, loss: Number.NEGATIVE_INFINITY }, { epoch: 2, loss: 0.5 }]);
    for (const v of values) expect(Object.is(parseNumber(formatNumber(v)), v)).toBe(true);
    for (const bad of ["", "1,5", "0x10", "nanx", "Inf inity", "1e", "."]) expect(parseNumber(bad)).toBeUndefined();
  });

  it("what it cannot read is a LogFileFormatError naming the line", () => {
    const cases: [string, RegExp][] = [
      ['epoch,"loss\n0,1\n', /line 1: a quoted cell is not closed/],
      ["epoch,loss\n0,1\n1\n", /line 3: 1 cells, the header has 2 columns/],
      ["epoch,loss\n0,1\n1,abc\n", /line 3: column "loss": "abc" is not a number/],
      ["epoch,loss,loss\n", /line 1: the header names column "loss" twice/],
      ['epoch,"a"b\n', /line 1: text after a closing quote/],
      ['"multi\nline",x\n0,1\n1,zz\n', /line 4: column "x"/], // line numbers count the breaks inside quotes
    ];
    for (const [text, message] of cases) {
      const e = (() => {
        try {
          parseCsv(text);
        } catch (err) {
          return err;
        }
      })();
      expect(e, text).toBeInstanceOf(LogFileFormatError);
      expect((e as Error).message).toMatch(message);
    }
  });

  it.skipIf(!python)(`Python reads it: csv.reader gives the columns back, float() every value (as pandas does)${python3.note}`, async () => {
    const columns = ["epoch", ...tricky];
    const text = [columns, [0, ...tricky.map((_, i) => values[i % values.length])]].map((c) => formatCsvRow(c) + "\n").join("");
    // newline="": line breaks inside quoted cells stay as written
    const script = "import csv,io,sys,json\nr=list(csv.reader(io.StringIO(sys.stdin.buffer.read().decode('utf-8'),newline='')))\nprint(json.dumps([r[0],[repr(float(v)) for v in r[1]]]))";
    const child = promisify(execFile)("python3", ["-c", script]);
    child.child.stdin!.end(text);
    const [header, floats] = JSON.parse((await child).stdout) as [string[], string[]];
    expect(header).toEqual(columns);
    expect(floats.slice(5, 8)).toEqual(["nan", "inf", "-inf"]);
    expect(floats.map(Number).filter(Number.isFinite).length).toBe(floats.length - 3);
  });
});

describe("JSONL", () => {
  it("round trip: non-finite values as strings, restored by readJsonl; keys in a fixed order; __proto__ a key", () => {
    const logs: Record<string, number> = {};
    tricky.forEach((k, i) => Object.defineProperty(logs, k, { value: values[i % values.length]!, enumerable: true, writable: true, configurable: true }));
    const rows = [
      { time: "2025-01-02T03:04:05.678Z", epoch: 0, step: 8, logs },
      { time: null, epoch: 1, step: null, logs: { loss: Number.NaN, acc: Number.POSITIVE_INFINITY, z: Number.NEGATIVE_INFINITY } },
    ];
    const text = rows.map((r) => formatJsonlRow(r) + "\n").join("") + "\n";
    expect(text.split("\n")[1]).toBe('{"time":null,"epoch":1,"step":null,"acc":"Infinity","loss":"NaN","z":"-Infinity"}');
    const back = readJsonl(text);
    expect(back).toHaveLength(2);
    expect(back[0]!.time).toBe(rows[0]!.time);
    for (const [k, v] of Object.entries(logs)) expect(Object.is(back[0]!.logs[k], v), k).toBe(true);
    expect(back[1]).toEqual(rows[1]);
    expect(() => formatJsonlRow({ time: null, epoch: 0, step: 0, logs: { step: 1 } })).toThrow(/a log named "step" would overwrite/);
  });

  it("what it cannot read is a LogFileFormatError naming the line", () => {
    const cases: [string, RegExp][] = [
      ['{"epoch":0}\n{"epoch":1,"loss":"high"}\n', /line 2: "loss" is "high", not a number/],
      ['{"epoch":0}\n\n{"epoch":\n', /line 3: not JSON/],
      ["[1,2]\n", /line 1: not a JSON object/],
      ['{"loss":1}\n', /line 1: "epoch" is undefined/],
      ['{"epoch":0,"time":5}\n', /line 1: "time" is 5/],
    ];
    for (const [text, message] of cases) expect(() => readJsonl(text), text).toThrow(message);
    expect(() => readJsonl("[]")).toThrow(LogFileFormatError);
  });

  it.skipIf(!python)(`Python reads it: json.loads every line, float() the values${python3.note}`, async () => {
    const text = formatJsonlRow({ time: "2025-01-02T03:04:05.678Z", epoch: 0, step: 1, logs: { loss: Number.NaN, up: Number.POSITIVE_INFINITY, down: Number.NEGATIVE_INFINITY, x: 0.1 } }) + "\n";
    const script = "import sys,json\nfor l in sys.stdin:\n  o=json.loads(l)\n  print(json.dumps({k:repr(float(v)) for k,v in o.items() if k!='time'}))";
    const child = promisify(execFile)("python3", ["-c", script]);
    child.child.stdin!.end(text);
    expect(JSON.parse((await child).stdout)).toEqual({ epoch: "0.0", step: "1.0", down: "-inf", loss: "nan", up: "inf", x: "0.1" });
  });
});
