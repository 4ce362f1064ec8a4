import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { requestedThreads } from "./index.js";
import { workerExecArgv } from "./worker-argv.js";
import { useTestBackend } from "../testing.fixture.js";

const FIXTURE = fileURLToPath(new URL("./wasm-threads.fixture.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

interface ChildResult {
  threads: number;
  /** Whether fitloop's kernel thread pool was running after training. */
  kernelThreads: boolean;
  idleWorkers: number;
  runningWorkers: number;
  warnings: string[];
  weights: Float32Array;
  matmul: Float32Array;
}

/** Runs the fixture in a fresh Node process (`nodeFlags` before the script); rejects if it fails or does not exit on its own within 60 s. */
function child(args: string[], nodeFlags: string[] = []): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...nodeFlags, "--import", "tsx", "--conditions=@fitloop/source", FIXTURE, ...args], { cwd: ROOT, timeout: 60_000, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`fixture ${args.join(" ")} failed (${err.killed ? "did not exit within 60 s" : `exit ${String(err.code)}`}): ${stderr.slice(-2000)}`));
      const line = stdout.trim().split("\n").pop()!;
      const r = JSON.parse(line) as { threads: number; kernelThreads: boolean; idleWorkers: number; runningWorkers: number; warnings: string[]; weights: string; matmul: string };
      const f32 = (b64: string) => {
        const b = Buffer.from(b64, "base64");
        return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      };
      resolve({ threads: r.threads, kernelThreads: r.kernelThreads, idleWorkers: r.idleWorkers, runningWorkers: r.runningWorkers, warnings: r.warnings, weights: f32(r.weights), matmul: f32(r.matmul) });
    });
  });
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let scale = 1e-6;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  }
  return worst / scale;
}

describe("tfjs-wasm threads in Node (@fitloop/wasm/node)", () => {
  it("trains with 2 threads to the single-threaded result, and the process exits on its own", async () => {
    const [threaded, single] = await Promise.all([child(["2"]), child(["false"])]);
    expect(threaded.threads).toBe(2);
    expect(threaded.warnings).toEqual([]);
    // of Emscripten's 8 pre-created workers, XNNPACK's pool runs on one; the 7 idle ones were terminated
    expect(threaded.runningWorkers).toBe(1);
    expect(threaded.idleWorkers).toBe(0);
    expect(single.threads).toBe(1);
    expect(single.warnings).toEqual([]);
    // XNNPACK splits output tiles between threads, each output keeps its summation order: in
    // practice bit-identical; float tolerance is the contract
    expect(maxRelDiff(threaded.weights, single.weights)).toBeLessThanOrEqual(1e-5);
    expect(maxRelDiff(threaded.matmul, single.matmul)).toBeLessThanOrEqual(1e-6);
  });

  it("falls back to single-threaded with a logged reason when the wasm backend was initialised before", async () => {
    const r = await child(["2", "pre-init"]);
    expect(r.threads).toBe(1);
    expect(r.warnings.join("\n")).toMatch(/single-threaded: the wasm backend was initialised before fitloop could enable threads/);
  });

  it("starts its workers with no Node flags: a V8 or per-process flag on the command line (which a worker's execArgv refuses) leaves the threads working", async () => {
    expect(workerExecArgv()).toEqual([]);
    // these made new Worker() throw ERR_WORKER_INVALID_EXEC_ARGV when passed on: the backend did not initialise
    const flags = ["--max-old-space-size=4096", "--stack-size=2000", "--expose-gc"];
    const [flagged, single] = await Promise.all([child(["2"], flags), child(["false"])]);
    expect(flagged.warnings).toEqual([]);
    expect(flagged.threads).toBe(2);
    expect(flagged.kernelThreads, "fitloop's kernel threads started").toBe(true);
    expect(maxRelDiff(flagged.weights, single.weights)).toBeLessThanOrEqual(1e-5);
  });

  it("clamps the requested count to tfjs-wasm's pool of 8, and rejects a count below 1", async () => {
    expect(requestedThreads(false)).toBe(1);
    expect(requestedThreads(3)).toBe(3);
    expect(requestedThreads(64)).toBe(8);
    expect(requestedThreads(true)).toBeGreaterThanOrEqual(1);
    expect(() => requestedThreads(0)).toThrow(RangeError);
    await expect(useTestBackend("wasm", { threads: 0 })).rejects.toThrow(/threads must be a positive integer/);
  });
});
