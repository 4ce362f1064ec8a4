/**
 * The kernel threads' protocol: the layout of the control block (a SharedArrayBuffer) that the
 * caller (`kernel-threads.ts`) and every worker share, and the worker's program, which runs the
 * jobs and background jobs written there.
 */
import { MAX_POOL_TASKS } from "../kernels/kernel-threads.js";

// One control block shared by the caller and all workers (Int32 slots), then per-task function ids,
// per-task args (f64), the first error message (bytes).
export const SEQ = 0; // job number, bumped (and notified) to wake the workers; -1 = quit
// (job & 0xffff) << 16 | tasks << 8 | next unclaimed task, claimed by compareExchange. The job and
// its task count live in this one word: a worker still looping over the previous job can never
// claim an index of the next one (with separate NTASKS/CLAIM stores it could, between the two).
export const CLAIM = 1;
export const COMPLETED = 2; // tasks finished in the current job
export const NTASKS = 3;
export const STATUS = 4; // 1 once a task threw in this job (first message kept)
export const MSG_LEN = 5;
export const WORKER_TASKS = 6; // tasks the workers ran since start (a diagnostic: do the workers get a core?)
export const IDLE_SPIN = 7; // microseconds an idle worker polls for the next job before Atomics.wait (0: none)
export const READY = 8; // READY + i: worker i's start-up state (1 ready, -1 failed)
export const MAX_WORKERS = 8;
// The background job (`post`): (job & 0xffff) << 16 | tasks << 8 | next unclaimed task, as CLAIM;
// tasks finished; 1 once a task threw (first message kept); tasks the workers ran (a diagnostic)
export const BG_CLAIM = READY + MAX_WORKERS;
export const BG_DONE = BG_CLAIM + 1;
export const BG_STATUS = BG_CLAIM + 2;
export const BG_MSG_LEN = BG_CLAIM + 3;
export const BG_WORKER_TASKS = BG_CLAIM + 4;
export const CTRL_INTS = BG_CLAIM + 8;
export const MAX_TASKS = MAX_POOL_TASKS; // the control block holds this many tasks
export const MAX_ARGS = 24; // convImages takes 21
export const FNS_BYTE = 4 * CTRL_INTS;
export const ARGS_BYTE = FNS_BYTE + 4 * MAX_TASKS + 8 * 2; // 8-aligned, with NARGS per task below
export const NARGS_BYTE = ARGS_BYTE + 8 * MAX_TASKS * MAX_ARGS;
export const MSG_BYTE = NARGS_BYTE + 4 * MAX_TASKS;
export const MSG_MAX = 1024;
// the background job's tasks, as the job's above
export const BG_FNS_BYTE = MSG_BYTE + MSG_MAX;
export const BG_ARGS_BYTE = BG_FNS_BYTE + 4 * MAX_TASKS;
export const BG_NARGS_BYTE = BG_ARGS_BYTE + 8 * MAX_TASKS * MAX_ARGS;
export const BG_AFTER_BYTE = BG_NARGS_BYTE + 4 * MAX_TASKS; // task i may start once this many tasks have finished
export const BG_MSG_BYTE = BG_AFTER_BYTE + 4 * MAX_TASKS;
export const BLOCK_BYTES = BG_MSG_BYTE + MSG_MAX;

/**
 * The worker: plain CommonJS evaluated from a string (no file resolution that differs between tsx,
 * vitest and dist). Both it and the caller claim tasks of the current job, so a worker that is not
 * scheduled in time costs nothing: the caller runs the remaining tasks itself.
 */
export const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { memory, modules, names, block, index } = workerData;
const ctrl = new Int32Array(block, 0, ${CTRL_INTS});
const fnOf = new Int32Array(block, ${FNS_BYTE}, ${MAX_TASKS});
const args = new Float64Array(block, ${ARGS_BYTE}, ${MAX_TASKS * MAX_ARGS});
const nargs = new Int32Array(block, ${NARGS_BYTE}, ${MAX_TASKS});
const msg = new Uint8Array(block, ${MSG_BYTE}, ${MSG_MAX});
const bgFnOf = new Int32Array(block, ${BG_FNS_BYTE}, ${MAX_TASKS});
const bgArgs = new Float64Array(block, ${BG_ARGS_BYTE}, ${MAX_TASKS * MAX_ARGS});
const bgNargs = new Int32Array(block, ${BG_NARGS_BYTE}, ${MAX_TASKS});
const bgAfter = new Int32Array(block, ${BG_AFTER_BYTE}, ${MAX_TASKS});
const bgMsg = new Uint8Array(block, ${BG_MSG_BYTE}, ${MSG_MAX});
const report = (e, status, len, into) => {
  if (Atomics.compareExchange(ctrl, status, 0, 1) !== 0) return;
  const bytes = new TextEncoder().encode(String((e && e.stack) || e)).subarray(0, ${MSG_MAX});
  into.set(bytes);
  Atomics.store(ctrl, len, bytes.length);
};
const fail = (e) => report(e, ${STATUS}, ${MSG_LEN}, msg);
let fns = [];
try {
  const inst = {};
  for (const name of Object.keys(modules)) inst[name] = new WebAssembly.Instance(modules[name], { env: { memory }, math: { exp: Math.exp, log: Math.log } }).exports;
  fns = names.map((n) => { const [m, f] = n.split("."); return inst[m][f]; });
  Atomics.store(ctrl, ${READY} + index, 1);
} catch (e) {
  fail(e);
  Atomics.store(ctrl, ${READY} + index, -1);
}
Atomics.notify(ctrl, ${READY} + index);
// the next task of the background job this thread may run now, or -1 (none left, or the next one
// waits for tasks before it to finish)
const bgNext = () => {
  const w = Atomics.load(ctrl, ${BG_CLAIM});
  const i = w & 255;
  if (i >= ((w >>> 8) & 255) || Atomics.load(ctrl, ${BG_DONE}) < bgAfter[i]) return -1;
  return Atomics.compareExchange(ctrl, ${BG_CLAIM}, w, w + 1) === w ? i : -1;
};
const bgWaiting = () => {
  const w = Atomics.load(ctrl, ${BG_CLAIM});
  return (w & 255) < ((w >>> 8) & 255) && Atomics.load(ctrl, ${BG_DONE}) >= bgAfter[w & 255];
};
let seen = Atomics.load(ctrl, ${SEQ});
while (Atomics.load(ctrl, ${READY} + index) === 1) {
  const seq = Atomics.load(ctrl, ${SEQ});
  if (seq < 0) break;
  if (seq !== seen) {
    seen = seq;
    const tag = (seq & 0xffff) << 16;
    for (;;) {
      const w = Atomics.load(ctrl, ${CLAIM});
      const i = w & 255;
      if ((w & 0xffff0000) !== tag || i >= ((w >>> 8) & 255)) break;
      if (Atomics.compareExchange(ctrl, ${CLAIM}, w, w + 1) !== w) continue;
      try {
        const n = nargs[i];
        fns[fnOf[i]].apply(null, Array.from(args.subarray(i * ${MAX_ARGS}, i * ${MAX_ARGS} + n)));
      } catch (e) {
        fail(e);
      }
      Atomics.add(ctrl, ${WORKER_TASKS}, 1);
      if (Atomics.add(ctrl, ${COMPLETED}, 1) + 1 === ((w >>> 8) & 255)) Atomics.notify(ctrl, ${COMPLETED});
    }
    continue;
  }
  // no job: one task of the background job, if any, then look for a job again (jobs come first)
  const b = bgNext();
  if (b >= 0) {
    try {
      fns[bgFnOf[b]].apply(null, Array.from(bgArgs.subarray(b * ${MAX_ARGS}, b * ${MAX_ARGS} + bgNargs[b])));
    } catch (e) {
      report(e, ${BG_STATUS}, ${BG_MSG_LEN}, bgMsg);
    }
    Atomics.add(ctrl, ${BG_WORKER_TASKS}, 1);
    const done = Atomics.add(ctrl, ${BG_DONE}, 1) + 1;
    Atomics.notify(ctrl, ${BG_DONE});
    // the next task may start now: wake the other workers (they wait for a job)
    const w = Atomics.load(ctrl, ${BG_CLAIM});
    if ((w & 255) < ((w >>> 8) & 255) && bgAfter[w & 255] === done) Atomics.notify(ctrl, ${SEQ});
    continue;
  }
  const spinUs = Atomics.load(ctrl, ${IDLE_SPIN});
  if (spinUs > 0) {
    const until = performance.now() + spinUs / 1000;
    for (let k = 1; Atomics.load(ctrl, ${SEQ}) === seen && !bgWaiting(); k++) if ((k & 255) === 0 && performance.now() > until) break;
  }
  if (bgWaiting()) continue;
  // background tasks left that wait for others: a wake-up when they may start can come just before
  // this wait (it does not change SEQ), so wait briefly; otherwise until the next job
  const left = Atomics.load(ctrl, ${BG_CLAIM});
  if ((left & 255) < ((left >>> 8) & 255)) Atomics.wait(ctrl, ${SEQ}, seen, 0.05);
  else Atomics.wait(ctrl, ${SEQ}, seen);
}
`;
