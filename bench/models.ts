/**
 * The two models every speed bench here uses (and bench/vs-pytorch.py mirrors in PyTorch):
 *   mlp: dense 784-256 relu, dense 128 relu, dense 10 softmax
 *   cnn: conv3x3x32 relu + BN + maxpool2, conv3x3x64 relu + BN + maxpool2, dense 128 relu, dense 10 softmax
 * Inputs 28x28 (MNIST-sized), batch 64, Adam 1e-3, categorical cross-entropy on integer labels.
 */
import { readFileSync, writeFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { resolveLoss } from "../packages/core/src/index.js";

export type ModelKind = "mlp" | "cnn";
export const BATCH = 64;
export const CLASSES = 10;
export const INPUT_SHAPE: Record<ModelKind, number[]> = { mlp: [784], cnn: [28, 28, 1] };

export function buildModel(kind: ModelKind): tfl.LayersModel {
  const m = tfl.sequential();
  if (kind === "mlp") {
    m.add(tfl.layers.dense({ inputShape: [784], units: 256, activation: "relu" }));
    m.add(tfl.layers.dense({ units: 128, activation: "relu" }));
    m.add(tfl.layers.dense({ units: CLASSES, activation: "softmax" }));
    return m;
  }
  m.add(tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: "relu" }));
  m.add(tfl.layers.batchNormalization({ momentum: 0.9 }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tfl.layers.conv2d({ filters: 64, kernelSize: 3, activation: "relu" }));
  m.add(tfl.layers.batchNormalization({ momentum: 0.9 }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tfl.layers.flatten());
  m.add(tfl.layers.dense({ units: 128, activation: "relu" }));
  m.add(tfl.layers.dense({ units: CLASSES, activation: "softmax" }));
  return m;
}

/** Fixed random inputs in [0, 1) and integer labels [n, 1] (float32, as sparse losses take them). */
export function randomData(kind: ModelKind, samples: number): { xs: tf.Tensor; ys: tf.Tensor } {
  const xs = tf.randomUniform([samples, ...INPUT_SHAPE[kind]], 0, 1, "float32", 1);
  const ys = tf.tidy(() => tf.floor(tf.randomUniform([samples, 1], 0, CLASSES, "float32", 2)));
  return { xs, ys };
}

/**
 * One training step as fitloop's loop runs it (computeGradients of the loss of
 * `model.apply(x, {training: true})`, applyGradients, one `await loss.data()`), on fixed random data
 * with Adam 1e-3. `step()` returns the loss.
 */
export function trainingRig(kind: ModelKind, samples: number): { step(): Promise<number>; dispose(): void } {
  const model = buildModel(kind);
  const { xs, ys } = randomData(kind, samples);
  const optimizer: tf.Optimizer = tf.train.adam(1e-3);
  const loss = resolveLoss("sparseCategoricalCrossentropy");
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return {
    async step() {
      const { value, grads } = optimizer.computeGradients(() => tf.mean(loss(ys, model.apply(xs, { training: true }) as tf.Tensor)) as tf.Scalar, vars);
      optimizer.applyGradients(grads);
      tf.dispose(grads);
      const v = (await value.data())[0]!;
      value.dispose();
      return v;
    },
    dispose() {
      model.dispose();
      optimizer.dispose();
      tf.dispose([xs, ys]);
    },
  };
}

export const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Prints `rows` under `header` as an aligned text table (columns padded, a rule under the header). */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: readonly string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  console.log(fmt(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(fmt(r));
}

export const intEnv = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
};

/**
 * `useBackend('wasm')`'s `threads` option from the THREADS env variable: unset = the default (all
 * cores, through @fitloop/wasm/node); `false` or `1` = single-threaded (before threads); a number.
 */
export const threadsEnv = (): { threads?: boolean | number } => {
  const v = process.env["THREADS"];
  if (v === undefined || v === "") return {};
  if (v === "false") return { threads: false };
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`THREADS must be false or a positive integer, got ${v}`);
  return { threads: n };
};

/** XNNPACK threads of the initialised wasm backend. */
export const wasmThreadCount = async (): Promise<number> => (await import("@tensorflow/tfjs-backend-wasm")).getThreadsCount();

/** A `VmXXX:  n kB` field of /proc/self/status in KiB (Linux); undefined elsewhere. */
export function procStatusKib(field: "VmHWM" | "VmRSS"): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resets this process's peak resident set (VmHWM) to its current RSS by writing 5 to
 * /proc/self/clear_refs (Linux); false where that is not possible (VmHWM is then the process's lifetime peak).
 */
export function resetPeakRss(): boolean {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** CPU time of the whole machine and of some processes (Linux /proc, seconds; USER_HZ = 100). */
export interface CpuSnapshot {
  at: number;
  /** Busy time of all CPUs: user + nice + system + irq + softirq. */
  busy: number;
  /** Time the hypervisor ran something else on our virtual CPUs. */
  steal: number;
  /** utime + stime of the given processes (all their threads). */
  own: number;
}

export function cpuSnapshot(pids: readonly number[]): CpuSnapshot | undefined {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
    let own = 0;
    for (const pid of pids) {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from the 3rd on
      own += Number(fields[11]) + Number(fields[12]); // utime, stime (14th, 15th)
    }
    return { at: performance.now(), busy: (user + nice + system + irq + softirq) / 100, steal: steal / 100, own: own / 100 };
  } catch {
    return undefined;
  }
}

/** Cores used on average between two snapshots by processes other than the watched ones, and stolen. */
export function otherLoad(a: CpuSnapshot | undefined, b: CpuSnapshot | undefined): { others: number; steal: number } | undefined {
  if (!a || !b || b.at <= a.at) return undefined;
  const wall = (b.at - a.at) / 1000;
  return { others: Math.max(0, (b.busy - a.busy - (b.own - a.own)) / wall), steal: (b.steal - a.steal) / wall };
}

export const loadText = (l: { others: number; steal: number } | undefined): string => (l ? `other processes ${l.others.toFixed(2)} cores, steal ${l.steal.toFixed(2)}` : "load unknown");

/**
 * Waits until the machine's CPUs are idle (under `maxCores` busy over a 50 ms window, from /proc/stat)
 * or `timeoutMs` passed; returns the time waited (ms). Between the arms of an interleaved bench: a
 * BLAS's or OpenMP's threads keep spinning after their work (OpenBLAS for up to ~0.1 s), which
 * would take a core from whichever arm runs next.
 */
export async function waitForIdleCpu(maxCores = 0.3, timeoutMs = 2000): Promise<number> {
  const start = performance.now();
  for (;;) {
    const a = cpuSnapshot([]);
    await new Promise((res) => setTimeout(res, 50));
    const b = cpuSnapshot([]);
    const waited = performance.now() - start;
    if (!a || !b) return waited;
    if ((b.busy - a.busy) / ((b.at - a.at) / 1000) < maxCores || waited >= timeoutMs) return waited;
  }
}
