import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "@fitloop/core";
import { Study, TunerError, studySummary, type TrialRecord } from "./index.js";
import { FileJournal } from "./node.js";

const dir = mkdtempSync(join(tmpdir(), "fitloop-review-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

describe("FileJournal refuses a file that is not a journal, without writing to it", () => {
  for (const [what, content] of [
    ["one line without a final newline", "my precious notes"],
    ["a non-JSON line (the last line, which readers skip)", "my precious notes\n"],
    ["a JSON line that is not a record", '{"hello": "world"}\n'],
    ["records, then a tail that is not the start of a record", '{"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}\nnot a record'],
  ] as const) {
    it(`${what}: JOURNAL_CORRUPT and the file is unchanged`, async () => {
      const path = join(dir, `f${n++}.log`);
      writeFileSync(path, content);
      const err = await Study.open({ storage: new FileJournal(path, { logger: { ...silentLogger, warn: () => expect.fail("warned") } }), name: "another", direction: "minimize" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TunerError);
      expect((err as TunerError).code).toBe("JOURNAL_CORRUPT");
      expect((err as Error).message).toMatch(/is not an Optuna journal.*nothing was written/s);
      expect(readFileSync(path, "utf8")).toBe(content);
    });
  }
});

describe("studySummary", () => {
  it("an enqueued trial whose start is stamped after its completion shows 0.0 s, not -0.0 s", () => {
    const trial: TrialRecord = { number: 0, id: 0, state: "COMPLETE", value: 1, params: {}, distributions: {}, intermediateValues: {}, userAttrs: {}, systemAttrs: {}, datetimeStart: "2024-01-01T10:00:00.020000", datetimeComplete: "2024-01-01T10:00:00.000000" } as unknown as TrialRecord;
    const text = studySummary({ name: "s", direction: "minimize", trials: [trial] });
    expect(text).not.toContain("-0.0 s");
    expect(text).toContain("0.0 s");
  });
});
