import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { loadCheckpoint, readCheckpoint } from "./index.js";
import { FileStore } from "./node/index.js";

const here = dirname(fileURLToPath(import.meta.url));

const dir = mkdtempSync(join(tmpdir(), "fitloop-kill-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts the writer, waits for its `wait`-th save, then for `delayMs`, and SIGKILLs it. */
function killDuringSaves(wait: number, delayMs: number): Promise<{ saves: number; tempsLeft: number }> {
  return new Promise((resolve, reject) => {
    // node itself with tsx as a loader: one process, so SIGKILL kills the writer (the tsx CLI would leave its child running)
    const child = spawn(process.execPath, ["--import", "tsx", "--conditions=@fitloop/source", join(here, "testing", "kill-child.fixture.ts"), dir], { cwd: join(here, ".."), stdio: ["ignore", "pipe", "pipe"] });
    let saves = 0;
    let stderr = "";
    let armed = false;
    const timer = setTimeout(() => reject(new Error(`the writer made no ${wait} saves in time: ${stderr}`)), 60_000);
    child.stderr.on("data", (d) => (stderr += String(d)));
    child.stdout.on("data", (d) => {
      saves += String(d).split("\n").filter((l) => l.includes("saved")).length;
      if (saves >= wait && !armed) {
        armed = true;
        setTimeout(() => child.kill("SIGKILL"), delayMs);
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal !== "SIGKILL") return reject(new Error(`the writer ended by itself (${code}): ${stderr}`));
      resolve({ saves, tempsLeft: readdirSync(dir).filter((n) => n.startsWith(".tmp-")).length });
    });
  });
}

describe("killed while saving", () => {
  it("SIGKILL at 20 random moments of a writer saving every step: every visible checkpoint and the latest always load", async () => {
    const store = new FileStore(dir);
    let midWrite = 0;
    let lastStep = -1;
    for (let i = 0; i < 20; i++) {
      // a random moment among the saves: during a write, between writes, during the pointer update
      const { tempsLeft } = await killDuringSaves(1 + (i % 3), Math.floor(Math.random() * 300)); // a save cycle here is ~270 ms, ~60 of them writing
      if (tempsLeft > 0) midWrite++;
      const names = await store.list();
      expect(names.length, `kill ${i}`).toBeGreaterThan(0);
      for (const name of names) await readCheckpoint(store, name); // complete or absent: never half-written
      const latest = await loadCheckpoint(store);
      expect(latest.snapshot, `kill ${i}`).toBeDefined();
      expect(latest.manifest.step, `kill ${i}: each writer resumes and goes on`).toBeGreaterThanOrEqual(lastStep);
      lastStep = latest.manifest.step;
    }
    // how many kills landed inside a write (a temporary directory left behind, removed by the next writer)
    console.log(`kills that left a temporary directory: ${midWrite} of 20`);
  }, 240_000);
});
