import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { loadCheckpoint } from "./index.js";
import { FileStore } from "./node/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "fitloop-signal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a real SIGINT in the middle of a cpu-backend run", () => {
  it("is handled during the run (not after fit): a checkpoint at the next safe point, the run stops, the process exits by itself", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "--conditions=@fitloop/source", join(here, "testing", "signal-child.fixture.ts"), dir], { cwd: join(here, ".."), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let signalledAt: number | undefined;
    child.stderr.on("data", (d) => (stderr += String(d)));
    child.stdout.on("data", (d) => {
      stdout += String(d);
      const last = [...stdout.matchAll(/^batch (\d+)$/gm)].at(-1);
      if (signalledAt === undefined && last && Number(last[1]) >= 50) {
        signalledAt = Number(last[1]);
        child.kill("SIGINT");
      }
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => (child.kill("SIGKILL"), reject(new Error(`no exit in time: ${stderr}`))), 60_000);
      child.on("exit", (c) => (clearTimeout(timer), resolve(c)));
    });
    expect(code, stderr).toBe(0);
    const outcome = /^outcome (\w+) after (\d+) batches$/m.exec(stdout);
    expect(outcome, stdout.slice(-500)).not.toBeNull();
    expect(outcome![1]).toBe("stopped");
    const stoppedAfter = Number(outcome![2]);
    // handled within a few batches of the signal, not at the end of the 16,000
    expect(stoppedAfter - signalledAt!).toBeLessThan(500);
    expect(stderr).toMatch(/SIGINT: saving a checkpoint at the next safe point/);
    const latest = await loadCheckpoint(new FileStore(dir));
    expect(latest.manifest.step).toBe(stoppedAfter);
  }, 90_000);
});
