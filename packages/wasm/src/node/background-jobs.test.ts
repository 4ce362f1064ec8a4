import { describe, expect, it } from "vitest";
import { runInBackground, type KernelCall } from "../kernels/kernel-threads.js";
import { createKernelThreadPool } from "./kernel-threads.js";

// Background jobs (`post` / `join`) on a pool over a fresh shared memory, with relu-grad.wat's
// `reluGrad(dy, x, dx, n)` as the task: with x > 0 it copies dy to dx, so a chain of tasks
// copying buffer i to buffer i + 1 shows whether they ran in order.

const MB = 1 << 20;
const freshMemory = (pages = 64) => new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
const ONES = 0; // 64 KiB of ones (x > 0)
const W = 4096; // floats per buffer
const buf = (i: number) => 65536 + 4 * W * i; // byte offset of buffer i
const copy = (from: number, to: number, n = W): KernelCall => ({ module: "relu-grad", fn: "reluGrad", args: [buf(from), ONES, buf(to), n] });

async function pool(memory: WebAssembly.Memory, options: { timeoutMs?: number; testWorkerPrefix?: string } = {}) {
  const r = await createKernelThreadPool(memory, { threads: 2, ...options });
  if (!r.pool) throw new Error(`no pool: ${r.reason}`);
  new Float32Array(memory.buffer).fill(1, ONES / 4, ONES / 4 + W);
  return r.pool;
}

/** Waits (yielding to the event loop) until `done()`, at most `ms`. */
async function until(done: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
}

describe("background jobs on the kernel threads (post, join)", () => {
  it("an idle worker runs a serial chain in order while the caller does something else", async () => {
    const memory = freshMemory();
    const p = await pool(memory);
    const f32 = new Float32Array(memory.buffer);
    try {
      for (let round = 1; round <= 200; round++) {
        f32.fill(round, buf(0) / 4, buf(0) / 4 + W);
        const job = p.post(Array.from({ length: 12 }, (_, i) => copy(i, i + 1)), { serial: true });
        if (round % 2) await until(() => job.done()); // odd rounds: the worker alone; even: join at once (the caller helps)
        job.join();
        job.join(); // idempotent
        for (let i = 1; i <= 12; i++) if (f32[buf(i) / 4 + W - 1] !== round) throw new Error(`round ${round}: buffer ${i} holds ${f32[buf(i) / 4 + W - 1]}`);
      }
      const s = p.stats();
      expect(s.backgroundTasks).toBe(200 * 12);
      expect(s.backgroundWorkerTasks, "the worker ran the tasks of the rounds the caller waited").toBeGreaterThanOrEqual(100 * 12);
    } finally {
      p.shutdown();
    }
  });

  it("jobs posted with run() go first and are unaffected by a background job in flight", async () => {
    const memory = freshMemory(256); // 16 MiB
    const p = await pool(memory);
    const f32 = new Float32Array(memory.buffer);
    const big = 8 * MB; // a second region for the foreground jobs
    const fgCopy = (i: number, n: number): KernelCall => ({ module: "relu-grad", fn: "reluGrad", args: [big, ONES, big + MB + 4 * W * i, n] });
    try {
      for (let round = 1; round <= 300; round++) {
        f32.fill(round, buf(0) / 4, buf(0) / 4 + W);
        f32.fill(-round, big / 4, big / 4 + W);
        const job = p.post(Array.from({ length: 30 }, (_, i) => copy(i, i + 1)), { serial: true });
        p.run(Array.from({ length: 1 + (round % 6) }, (_, i) => fgCopy(i, W)));
        for (let i = 0; i <= round % 6; i++) if (f32[(big + MB + 4 * W * i) / 4 + W - 1] !== -round) throw new Error(`round ${round}: foreground task ${i} did not run`);
        job.join();
        if (f32[buf(30) / 4 + W - 1] !== round) throw new Error(`round ${round}: the background chain ended with ${f32[buf(30) / 4 + W - 1]}`);
      }
    } finally {
      p.shutdown();
    }
  });

  it("independent tasks (not serial) may run at once on the worker and the caller", async () => {
    const memory = freshMemory();
    const p = await pool(memory);
    const f32 = new Float32Array(memory.buffer);
    try {
      f32.fill(7, buf(0) / 4, buf(0) / 4 + W);
      const job = p.post(Array.from({ length: 40 }, (_, i) => ({ module: "relu-grad", fn: "reluGrad", args: [buf(0), ONES, buf(1 + i), W] })));
      job.join();
      for (let i = 1; i <= 40; i++) expect(f32[buf(i) / 4 + 5], `task ${i - 1}`).toBe(7);
    } finally {
      p.shutdown();
    }
  });

  it("after: a second phase starts once the first has finished, its tasks in parallel", async () => {
    const memory = freshMemory();
    const p = await pool(memory);
    const f32 = new Float32Array(memory.buffer);
    try {
      for (let round = 1; round <= 300; round++) {
        f32.fill(round, buf(0) / 4, buf(0) / 4 + W);
        // phase 1: buffer 0 to buffers 1-6; phase 2 (after the six): buffer i to buffer 6 + i
        const tasks = [...Array.from({ length: 6 }, (_, i) => copy(0, 1 + i)), ...Array.from({ length: 6 }, (_, i) => copy(1 + i, 7 + i))];
        const job = p.post(tasks, { after: tasks.map((_, i) => (i < 6 ? 0 : 6)) });
        if (round % 3 === 0) await until(() => job.done());
        job.join();
        for (let i = 1; i <= 12; i++) if (f32[buf(i) / 4 + W - 1] !== round) throw new Error(`round ${round}: buffer ${i} holds ${f32[buf(i) / 4 + W - 1]}`);
      }
      expect(p.stats().backgroundWorkerTasks).toBeGreaterThan(0);
    } finally {
      p.shutdown();
    }
  });

  it("one background job at a time; bad tasks are refused before anything runs", async () => {
    const p = await pool(freshMemory());
    try {
      const job = p.post([copy(0, 1)]);
      expect(() => p.post([copy(1, 2)])).toThrow(/still running: join\(\) it/);
      job.join();
      expect(() => p.post([{ module: "relu-grad", fn: "nope", args: [] }])).toThrow(/no export relu-grad.nope/);
      expect(() => p.post(Array.from({ length: 65 }, () => copy(0, 1)))).toThrow(/more than 64 background tasks/);
      expect(() => p.post([copy(0, 1), copy(1, 2)], { after: [0, 2] })).toThrow(/after\[1\] must be an integer in \[0, 1\], got 2/);
      expect(() => p.post([copy(0, 1)], { after: [-1] })).toThrow(/after\[0\]/);
      p.post([copy(1, 2)]).join(); // the refusals left nothing pending
    } finally {
      p.shutdown();
    }
  });

  it("rethrows a task's error at join (on the caller or the worker) and stays usable", async () => {
    const memory = freshMemory();
    const p = await pool(memory);
    const trap: KernelCall = { module: "relu-grad", fn: "reluGrad", args: [-64, -64, -64, 16] };
    const f32 = new Float32Array(memory.buffer);
    try {
      // joined at once: the caller may run the trap itself
      expect(() => p.post([copy(0, 1), trap, copy(1, 2)], { serial: true }).join()).toThrow(/out of bounds/);
      // left to the worker: its error comes back with the worker's message
      const job = p.post([trap]);
      await until(() => job.done());
      expect(job.done()).toBe(true);
      expect(() => job.join()).toThrow(/^fitloop kernel thread \(background task\): RuntimeError: .*out of bounds/);
      f32.fill(3, buf(0) / 4, buf(0) / 4 + W);
      p.post([copy(0, 1)]).join();
      expect(f32[buf(1) / 4]).toBe(3);
    } finally {
      p.shutdown();
    }
  });

  it("times out with a clear error when a worker never finishes a background task", async () => {
    // the worker blocks forever in its first background task (BG_DONE is control slot 17)
    const prefix = "{ const add = Atomics.add; Atomics.add = (a, i, v) => (i === 17 ? Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0) : add(a, i, v)); }\n";
    const p = await pool(freshMemory(), { timeoutMs: 300, testWorkerPrefix: prefix });
    const job = p.post(Array.from({ length: 4 }, (_, i) => copy(i, i + 1)), { serial: true });
    await new Promise((r) => setTimeout(r, 50)); // the worker claims task 0 meanwhile (and never finishes it)
    const t0 = performance.now();
    expect(() => job.join()).toThrow(/did not finish a background task within 300 ms/);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(p.ready()).toBe(false);
    expect(() => p.post([copy(0, 1)])).toThrow(/not usable/);
  });

  it("a join after the pool broke still waits for a task a worker started, and says when it may still run", async () => {
    // the worker's calls take 2 s; the pool is shut down (its workers terminated) while one runs
    const prefix = "{ const apply = Function.prototype.apply; Function.prototype.apply = function (t, a) { const until = Date.now() + 2000; while (Date.now() < until); return apply.call(this, t, a); }; }\n";
    const p = await pool(freshMemory(), { timeoutMs: 300, testWorkerPrefix: prefix });
    const job = p.post([copy(0, 1), copy(1, 2)]);
    await new Promise((r) => setTimeout(r, 50)); // the worker claims task 0 and is inside it
    p.shutdown();
    const t0 = performance.now();
    expect(() => job.join()).toThrow(/did not finish a background task within 300 ms/);
    expect(performance.now() - t0, "it waited for the started task").toBeGreaterThanOrEqual(250);
    expect(job.running(), "the task may still write: its memory must not be freed").toBe(true);
  });

  it("a pool shut down cleanly while a job waits: the join runs its tasks on the caller", async () => {
    // this worker never claims a background task (its compare-exchange on the claim word, control slot 16, fails)
    const prefix = "{ const cas = Atomics.compareExchange; Atomics.compareExchange = (a, i, e, r) => (i === 16 ? e + 1 : cas(a, i, e, r)); }\n";
    const memory = freshMemory();
    const p = await pool(memory, { testWorkerPrefix: prefix });
    const f32 = new Float32Array(memory.buffer);
    f32.fill(9, buf(0) / 4, buf(0) / 4 + W);
    const job = p.post(Array.from({ length: 6 }, (_, i) => copy(i, i + 1)), { serial: true });
    p.shutdown(); // e.g. ensureKernelThreads starting a pool of another size
    job.join();
    for (let i = 1; i <= 6; i++) expect(f32[buf(i) / 4], `buffer ${i}`).toBe(9);
    expect(job.running()).toBe(false);
    expect(p.stats().backgroundWorkerTasks).toBe(0);
  });

  it("without a pool, runInBackground runs the calls in order on the caller at join()", () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const ran: string[] = [];
    const job = runInBackground(memory, [copy(0, 1), copy(1, 2)], (c) => ran.push(`${c.fn}:${c.args[0]}`), { serial: true });
    expect(ran).toEqual([]);
    expect(job.done()).toBe(false);
    job.join();
    job.join();
    expect(ran).toEqual([`reluGrad:${buf(0)}`, `reluGrad:${buf(1)}`]);
    expect(job.done()).toBe(true);
    expect(job.running()).toBe(false);
  });
});
