import { execFileSync } from "node:child_process";
import { closeSync, constants, openSync, readSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ORDER, type Callback } from "@fitloop/core";
import { CSVLogger, JSONLLogger, parseCsv, readJsonl } from "./index.js";
import { fixture, recording, tempDir, trainer } from "./helpers.fixture.js";

/** Whatever is in a FIFO's buffer now (the fd is non-blocking: EAGAIN once it is empty). */
function drainFifo(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * A hung file system, for real: once the logger has prepared its file, it is replaced by a named
 * pipe that nobody reads, so opening it for writing blocks (in libuv's thread pool) until a reader
 * comes. The reader comes in this plugin's afterFit (which runs before the logger's: after-hooks run
 * in reverse order), or after `fallbackMs` (so a logger that waits for its writes fails the test
 * instead of hanging it).
 */
function stallingFile(path: string, fallbackMs: number): Callback & { stepsWhileStalled: number[]; releasedBy: string | undefined; fd: number | undefined } {
  let timer: NodeJS.Timeout | undefined;
  const self = {
    name: "Stall",
    order: ORDER.LAST, // its beforeFit after the logger's, which prepares the file
    stepsWhileStalled: [] as number[],
    releasedBy: undefined as string | undefined,
    fd: undefined as number | undefined,
    release(by: string) {
      if (self.fd !== undefined) return;
      clearTimeout(timer);
      self.releasedBy = by;
      // read and write end at once (Linux): it never blocks, and the pipe never reports EOF to us
      self.fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    },
    beforeFit: () => {
      rmSync(path);
      execFileSync("mkfifo", [path]);
      timer = setTimeout(() => self.release("the fallback timer"), fallbackMs);
    },
    batchCheckpoint: (ctx: { state: { step: number } }) => void (self.fd === undefined && self.stepsWhileStalled.push(ctx.state.step)),
    afterFit: () => self.release("afterFit"),
  };
  return self;
}

describe.skipIf(process.platform === "win32")("a slow or hung file system does not hold up training (the writes run in the background)", () => {
  for (const kind of ["steps", "epochs"] as const) {
    it(`${kind === "steps" ? "JSONL, a row every step with flushSeconds: 0 (a write due at every batchCheckpoint)" : "CSV, a row per epoch (a write at every epochCheckpoint)"}: every step trains while the file cannot be opened; afterFit waits for the writes, which then land complete`, async () => {
      const dir = tempDir();
      const path = join(dir, kind === "steps" ? "m.jsonl" : "m.csv");
      const fx = fixture();
      const { logger, warnings } = recording();
      const sink = kind === "steps" ? new JSONLLogger({ path, every: { steps: 1 }, flushSeconds: 0 }) : new CSVLogger({ path });
      const stall = stallingFile(path, 8000);
      const t0 = Date.now();
      const r = await trainer(fx, [sink, stall], logger).fit({ epochs: 3, train: fx.data(8) });
      const text = drainFifo(stall.fd!);
      closeSync(stall.fd!);
      expect(r.outcome.status).toBe("completed");
      // all 15 steps ran with the writes stuck; the pipe got a reader only when the run ended
      expect(stall.stepsWhileStalled).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
      expect(stall.releasedBy).toBe("afterFit");
      expect(Date.now() - t0).toBeLessThan(8000);
      // then afterFit waited for them: every row, once, in order, no warning
      expect(warnings).toEqual([]);
      if (kind === "steps") expect(readJsonl(text).map((row) => row.step)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
      else expect(parseCsv(text).rows.map((row) => row["epoch"])).toEqual([0, 1, 2]);
      fx.dispose();
    });
  }
});
