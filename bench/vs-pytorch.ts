/**
 * fitloop on the wasm backend versus PyTorch on the CPU, same machine, same run: the MLP and the
 * small CNN of bench/models.ts, batch 64, Adam 1e-3, cross-entropy, the same number of steps.
 *
 *   fitloop  `new Trainer({model, optimizer: adam, loss: 'sparseCategoricalCrossentropy'}).fit(...)`
 *            on `useBackend('wasm')` (fitloop's wasm kernels on, the default), one epoch of STEPS
 *            batches per round (setup included, as a user runs it)
 *   PyTorch  bench/vs-pytorch.py under Debian's /usr/bin/python3 (python3-torch + libopenblas0-pthread,
 *            which this bench does not install), in both sane thread settings on 2 cores, each a
 *            long-lived child (rounds interleave without paying torch's import each time):
 *              torch2_blas1  torch.set_num_threads(2), OPENBLAS_NUM_THREADS=1 (GEMMs on one core;
 *                            oneDNN convolutions and elementwise ops on 2)
 *              torch1_blas2  torch.set_num_threads(1), OPENBLAS_NUM_THREADS=2 (GEMMs on 2 cores, the
 *                            rest on one)
 *            (2 + 2 oversubscribes the 2 cores.) Per model the faster setting (median samples/s) is
 *            the peer; every ratio is against it.
 *   memory   peak resident set of each process during that model's phase (setup, warm-up, rounds):
 *            VmHWM of /proc/self/status after resetting it with /proc/self/clear_refs at the start of
 *            the phase (Linux; the child does the same for PyTorch). fitloop's figure is this whole
 *            process (Node, tfjs, the wasm heap, which never shrinks, so the CNN phase starts with what
 *            the MLP phase touched); PyTorch's is its child process.
 *
 * Before every timed arm the bench waits for idle CPUs (< 0.3 cores busy over 50 ms, at most 2 s):
 * OpenBLAS's threads spin for up to ~0.1 s after a product, which took a core from the next arm
 * (fitloop rounds after the torch1_blas2 arm ran ~30 % slower before this wait).
 * Warm-up rounds per arm: WARMUP (default 3), or more until each arm has trained WARMUP_STEPS steps
 * (MLP 3000, CNN 120): V8 keeps optimising fitloop's JS that long. In 500-step windows from the start
 * an MLP step took 1.58, 1.18, 1.20, 1.11, 1.09, 1.06, 1.07, then 1.03-1.04 ms on average (medians
 * 1.15 then 1.01-1.06): background TurboFan compiles take a core from the step's two threads (53
 * compiles in steps 800-1800, 2 in steps 5000-6000; journal round 12). A CNN step settles within
 * ~200 steps (in 40-step windows 21.0, 17.6, 16.0, then ~15.9 ms, round 11). What the warm-up cost
 * each arm is printed too ("warm-up" table and JSON fields), so the first seconds of a run are not
 * hidden. Then ROUNDS interleaved rounds of the three arms (fitloop and the two
 * PyTorch settings; the order rotates every round); medians, and paired ratios (fitloop / peer in
 * the same round). Prints a table and, last, {"bench":"vs-pytorch","mlp_ratio":R1,"cnn_ratio":R2,
 * "peer_mlp":..,"peer_cnn":..,"fitloop_peak_mib":{..},"pytorch_peak_mib":{..},...} (ratios: fitloop
 * samples/s / peer samples/s; pytorch_peak_mib: the peer's; warmup_samples_per_s and warmup_ratio:
 * the same over each arm's warm-up rounds, against the same peer). Without torch it says so and exits 0
 * with no JSON line. The machine may be shared with other jobs: read the min..max columns, and the
 * load line (CPU time of other processes per round, from /proc/stat minus this bench's processes).
 *
 *   pnpm run bench:vs-pytorch    # env: ROUNDS (5), WARMUP (3), WARMUP_STEPS_MLP (3000), WARMUP_STEPS_CNN (120),
 *                                # MLP_STEPS (60), CNN_STEPS (12), PYTHON (/usr/bin/python3),
 *                                # WASM_KERNELS (all; `added` = before fitloop replaced stock kernels),
 *                                # THREADS (unset: all cores; `false` = single-threaded, before threads),
 *                                # WASM_SIMD (`false` = JS loops instead of fitloop's SIMD kernels)
 */
import "reflect-metadata";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { Trainer, tensorData, useBackend } from "../packages/core/src/index.js";
import { applyKernelChoice } from "./kernel-choice.js";
import { simdKernelsEnabled } from "../packages/wasm/src/index.js";
import { BATCH, buildModel, cpuSnapshot, intEnv, loadText, median, otherLoad, procStatusKib, randomData, resetPeakRss, threadsEnv, waitForIdleCpu, wasmThreadCount, type ModelKind } from "./models.js";
import { startPythonChild } from "./python-child.js";

const ROUNDS = intEnv("ROUNDS", 5);
const WARMUP = intEnv("WARMUP", 3);
const STEPS: Record<ModelKind, number> = { mlp: intEnv("MLP_STEPS", 60), cnn: intEnv("CNN_STEPS", 12) };
const WARMUP_STEPS: Record<ModelKind, number> = { mlp: intEnv("WARMUP_STEPS_MLP", 3000), cnn: intEnv("WARMUP_STEPS_CNN", 120) };
const warmupRounds = (kind: ModelKind): number => Math.max(WARMUP, Math.ceil(WARMUP_STEPS[kind] / STEPS[kind]));
const PYTHON = process.env["PYTHON"] ?? "/usr/bin/python3";
const KINDS: ModelKind[] = ["mlp", "cnn"];
/** A round during which other processes used this many cores or more counts as contended. */
const CONTENDED_CORES = 0.25;

/** The two sane PyTorch thread settings on 2 cores. */
const SETTINGS = [
  { key: "torch2_blas1", label: "torch.set_num_threads(2) + OPENBLAS_NUM_THREADS=1", env: { THREADS: "2", OPENBLAS_NUM_THREADS: "1" } },
  { key: "torch1_blas2", label: "torch.set_num_threads(1) + OPENBLAS_NUM_THREADS=2", env: { THREADS: "1", OPENBLAS_NUM_THREADS: "2" } },
] as const;
type SettingKey = (typeof SETTINGS)[number]["key"];

interface Memory {
  /** Peak RSS since the last reset (KiB). */
  hwmKib: number | undefined;
  rssKib: number | undefined;
  /** Whether the peak was reset at the start of the phase (else it is the process's lifetime peak). */
  reset: boolean;
}

interface Torch {
  key: SettingKey;
  label: string;
  pid: number;
  info: { torch: string; threads: number; blasThreads: number | null };
  run(kind: ModelKind, steps: number): Promise<number>;
  /** Resets the child's peak RSS; returns whether it could and the RSS now (KiB). */
  resetMemory(): Promise<{ reset: boolean; rssKib: number | undefined }>;
  /** Peak RSS since the reset (KiB), current RSS. */
  memory(): Promise<{ hwmKib: number | undefined; rssKib: number | undefined }>;
  close(): void;
}

const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);

/** Starts one PyTorch child; `{missing}` (with the reason) when python or torch is missing. */
async function startTorch(setting: (typeof SETTINGS)[number]): Promise<Torch | { missing: string }> {
  const py = await startPythonChild(PYTHON, fileURLToPath(new URL("./vs-pytorch.py", import.meta.url)), { ...setting.env });
  if ("missing" in py) return py;
  const { child, first, next } = py;
  return {
    key: setting.key,
    label: setting.label,
    pid: child.pid ?? 0,
    info: { torch: String(first["torch"]), threads: Number(first["threads"]), blasThreads: num(first["blas_threads"]) ?? null },
    async run(kind, steps) {
      child.stdin.write(`${kind} ${steps}\n`);
      const r = await next();
      return Number(r["samples_per_s"]);
    },
    async resetMemory() {
      child.stdin.write("mem reset\n");
      const r = await next();
      return { reset: r["reset"] === true, rssKib: num(r["rss_kib"]) };
    },
    async memory() {
      child.stdin.write("mem\n");
      const r = await next();
      return { hwmKib: num(r["hwm_kib"]), rssKib: num(r["rss_kib"]) };
    },
    close() {
      child.stdin.end("quit\n");
    },
  };
}

interface FitloopArm {
  run(): Promise<number>;
  dispose(): void;
}

function fitloopArm(kind: ModelKind): FitloopArm {
  const steps = STEPS[kind];
  const { xs, ys } = randomData(kind, steps * BATCH);
  const model = buildModel(kind);
  const optimizer = tf.train.adam(1e-3);
  // one data source for the phase, as a user passes one to fit (tensorData keeps a host copy of the data)
  const train = tensorData(xs, ys, { batchSize: BATCH, shuffle: false });
  return {
    async run() {
      const t0 = performance.now();
      const r = await new Trainer({ model, optimizer, loss: "sparseCategoricalCrossentropy" }).fit({ epochs: 1, train });
      if (r.outcome.status !== "completed") throw new Error(`fitloop ${kind}: ${r.outcome.status}`);
      return (steps * BATCH) / ((performance.now() - t0) / 1000);
    },
    dispose() {
      model.dispose();
      optimizer.dispose();
      tf.dispose([xs, ys]);
    },
  };
}

async function main(): Promise<void> {
  const torches: Torch[] = [];
  for (const setting of SETTINGS) {
    const t = await startTorch(setting);
    if ("missing" in t) {
      for (const o of torches) o.close();
      console.log(`PyTorch is not available (${t.missing.split("\n")[0]}); install Debian's python3-torch and libopenblas0-pthread to run this bench. Skipped.`);
      return;
    }
    torches.push(t);
  }
  const backend = await useBackend("wasm", threadsEnv());
  const threads = await wasmThreadCount();
  const replaced = applyKernelChoice();
  const simd = simdKernelsEnabled() && replaced.some((k) => ["BatchNorm", "MaxPoolGrad", "ReluGrad"].includes(k)) ? ", WebAssembly SIMD kernels on" : "";
  const kernels = replaced.length ? `fitloop wasm kernels on (replaced: ${replaced.join(", ")}${simd})` : "only the kernels tfjs-wasm lacks (WASM_KERNELS=added)";
  console.log(`fitloop: tfjs ${tf.version_core} ${backend} backend (${threads} thread${threads > 1 ? "s" : ""}), ${kernels}`);
  for (const t of torches) console.log(`PyTorch ${t.info.torch} ${t.key}: ${t.label} (torch reports ${t.info.threads} thread${t.info.threads > 1 ? "s" : ""}, OpenBLAS ${t.info.blasThreads ?? "?"})`);
  console.log(`batch ${BATCH}, Adam 1e-3; per round MLP ${STEPS.mlp} steps, CNN ${STEPS.cnn} steps; ${ROUNDS} interleaved rounds (fitloop and both PyTorch settings, order rotating) after ${warmupRounds("mlp")} (MLP) and ${warmupRounds("cnn")} (CNN) warm-up rounds each; the machine may be shared with other jobs`);
  const started = performance.now();
  const pids = [process.pid, ...torches.map((t) => t.pid)];
  const runStart = cpuSnapshot(pids);
  const roundLoads: number[] = [];
  const contended: Record<ModelKind, number> = { mlp: 0, cnn: 0 };
  let settled = 0;
  type Rates = { fitloop: number[] } & Record<SettingKey, number[]>;
  const rates = Object.fromEntries(KINDS.map((k) => [k, { fitloop: [], torch2_blas1: [], torch1_blas2: [] }])) as unknown as Record<ModelKind, Rates>;
  const mem = {} as Record<ModelKind, { fitloop: Memory } & Record<SettingKey, Memory>>;
  const warmupSeconds = Object.fromEntries(KINDS.map((k) => [k, { fitloop: 0, torch2_blas1: 0, torch1_blas2: 0 }])) as Record<ModelKind, Record<"fitloop" | SettingKey, number>>;
  /** Samples/s of an arm over its whole warm-up (every warm-up round trains STEPS[kind] batches). */
  const warmupRate = (k: ModelKind, arm: "fitloop" | SettingKey): number => (warmupRounds(k) * STEPS[k] * BATCH) / warmupSeconds[k][arm];
  let runEnd: ReturnType<typeof cpuSnapshot>;
  try {
    for (const kind of KINDS) {
      // peak RSS of this phase: reset at its start, read at its end (each process its own)
      const fitloopReset = resetPeakRss();
      const fitloopStart = procStatusKib("VmRSS");
      const torchStart = await Promise.all(torches.map((t) => t.resetMemory()));
      const arm = fitloopArm(kind);
      const arms: { name: "fitloop" | SettingKey; run(): Promise<number> }[] = [
        { name: "fitloop", run: () => arm.run() },
        ...torches.map((t) => ({ name: t.key, run: () => t.run(kind, STEPS[kind]) })),
      ];
      // warm-up, every arm alike (V8 keeps optimising fitloop's JS for the first ~3000 MLP steps;
      // PyTorch's C++ needs little); each arm's time is kept: the warm-up table shows what it cost
      // (as in the measured rounds: the order rotates and each arm starts on idle cores, so no arm
      // always follows a BLAS whose threads still spin)
      for (let w = 0; w < warmupRounds(kind); w++) {
        for (const a of arms.map((_, i) => arms[(i + w) % arms.length]!)) {
          settled += await waitForIdleCpu();
          const rate = await a.run();
          warmupSeconds[kind][a.name] += (STEPS[kind] * BATCH) / rate;
        }
      }

      for (let round = 0; round < ROUNDS; round++) {
        const order = arms.map((_, i) => arms[(i + round) % arms.length]!);
        const got: Partial<Record<string, number>> = {};
        const before = cpuSnapshot(pids);
        for (const a of order) {
          // the previous arm's threads may still spin (OpenBLAS's for up to ~0.1 s): start on idle cores
          settled += await waitForIdleCpu();
          got[a.name] = await a.run();
        }
        const load = otherLoad(before, cpuSnapshot(pids));
        if (load) roundLoads.push(load.others);
        if (load && load.others >= CONTENDED_CORES) contended[kind]++;
        for (const a of arms) rates[kind][a.name].push(got[a.name]!);
        const line = arms.map((a) => `${a.name} ${got[a.name]!.toFixed(0)}`).join(", ");
        process.stderr.write(`${kind} round ${round + 1}/${ROUNDS} (${order.map((a) => a.name).join(" -> ")}): ${line} samples/s; ${loadText(load)}\n`);
      }
      arm.dispose();
      const torchEnd = await Promise.all(torches.map((t) => t.memory()));
      mem[kind] = {
        fitloop: { hwmKib: procStatusKib("VmHWM"), rssKib: fitloopStart, reset: fitloopReset },
        ...(Object.fromEntries(torches.map((t, i) => [t.key, { hwmKib: torchEnd[i]!.hwmKib, rssKib: torchStart[i]!.rssKib, reset: torchStart[i]!.reset }])) as Record<SettingKey, Memory>),
      };
    }
    runEnd = cpuSnapshot(pids); // while the children still run (their CPU time leaves /proc with them)
  } finally {
    for (const t of torches) t.close();
  }
  const runLoad = otherLoad(runStart, runEnd);
  const peer = (k: ModelKind): SettingKey => (median(rates[k].torch2_blas1) >= median(rates[k].torch1_blas2) ? "torch2_blas1" : "torch1_blas2");
  const ratio = (k: ModelKind, s: SettingKey = peer(k)) => median(rates[k].fitloop) / median(rates[k][s]);
  const paired = (k: ModelKind, s: SettingKey = peer(k)) => median(rates[k].fitloop.map((f, i) => f / rates[k][s][i]!));
  const range = (v: number[]) => `${Math.min(...v).toFixed(0)}..${Math.max(...v).toFixed(0)}`;
  console.log("\n| model | fitloop wasm samples/s | PyTorch samples/s | ratio (of medians) | paired ratio | fitloop min..max | PyTorch min..max |");
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const k of KINDS) {
    const r = rates[k];
    const p = peer(k);
    console.log(`| ${k} | ${median(r.fitloop).toFixed(0)} | ${median(r[p]).toFixed(0)} (${p}) | ${ratio(k).toFixed(3)} | ${paired(k).toFixed(3)} | ${range(r.fitloop)} | ${range(r[p])} |`);
  }
  console.log("\nPyTorch by thread setting (median samples/s, min..max; the faster per model is the peer above), and fitloop against each:");
  console.log("| model | torch2_blas1 | torch1_blas2 | peer | fitloop / torch2_blas1 | fitloop / torch1_blas2 |");
  console.log("|---|---:|---:|---|---:|---:|");
  for (const k of KINDS) {
    const r = rates[k];
    const cell = (s: SettingKey) => `${median(r[s]).toFixed(0)} (${range(r[s])})`;
    console.log(`| ${k} | ${cell("torch2_blas1")} | ${cell("torch1_blas2")} | ${peer(k)} | ${ratio(k, "torch2_blas1").toFixed(3)} (paired ${paired(k, "torch2_blas1").toFixed(3)}) | ${ratio(k, "torch1_blas2").toFixed(3)} (paired ${paired(k, "torch1_blas2").toFixed(3)}) |`);
  }
  console.log(`\nWarm-up: samples/s over each arm's warm-up rounds (the first steps of a run, as a short run sees them), fitloop against the same peer:`);
  console.log("| model | warm-up steps per arm | fitloop | torch2_blas1 | torch1_blas2 | fitloop / peer |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const k of KINDS) {
    const w = (a: "fitloop" | SettingKey) => warmupRate(k, a).toFixed(0);
    console.log(`| ${k} | ${warmupRounds(k) * STEPS[k]} | ${w("fitloop")} | ${w("torch2_blas1")} | ${w("torch1_blas2")} | ${(warmupRate(k, "fitloop") / warmupRate(k, peer(k))).toFixed(3)} |`);
  }
  const mib = (kib: number | undefined) => (kib === undefined ? undefined : Math.round(kib / 1024));
  const memCell = (m: Memory) => `${mib(m.hwmKib) ?? "?"} (${mib(m.rssKib) ?? "?"} at the start${m.reset ? "" : "; peak not reset: process lifetime"})`;
  console.log("\nPeak resident memory during each model's phase, MiB (VmHWM after a reset at the phase's start; RSS at that start in parentheses):");
  console.log("| model | fitloop (this process) | PyTorch torch2_blas1 | PyTorch torch1_blas2 |");
  console.log("|---|---:|---:|---:|");
  for (const k of KINDS) console.log(`| ${k} | ${memCell(mem[k].fitloop)} | ${memCell(mem[k].torch2_blas1)} | ${memCell(mem[k].torch1_blas2)} |`);
  const loads = roundLoads.length ? `; per round ${Math.min(...roundLoads).toFixed(2)}..${Math.max(...roundLoads).toFixed(2)} cores` : "";
  console.log(`\nmedians of ${ROUNDS} interleaved rounds, ${((performance.now() - started) / 1000).toFixed(0)} s (of which ${(settled / 1000).toFixed(1)} s waiting before each arm for idle CPUs: a BLAS's threads spin on after their work); targets (issue 18): MLP >= 0.8x, CNN >= 1.0x, fitloop's peak memory no higher than PyTorch's`);
  console.log(`machine load during the run (from /proc, besides this bench and its PyTorch children): ${loadText(runLoad)}${loads} of 2 cores`);
  if (contended.mlp + contended.cnn > 0) {
    console.log(
      `WARNING: contended rounds (other processes >= ${CONTENDED_CORES} cores): MLP ${contended.mlp}/${ROUNDS}, CNN ${contended.cnn}/${ROUNDS}. With a core taken, PyTorch's OpenMP setting (torch2_blas1) collapses (seen: 4,900 -> 190 CNN samples/s) and fitloop's 2 threads slow down: those ratios and the peer choice are not meaningful; re-run on a quiet machine.`,
    );
  }
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  const perKind = <T>(f: (k: ModelKind) => T) => Object.fromEntries(KINDS.map((k) => [k, f(k)])) as Record<ModelKind, T>;
  console.log(
    JSON.stringify({
      bench: "vs-pytorch",
      mlp_ratio: r3(ratio("mlp")),
      cnn_ratio: r3(ratio("cnn")),
      peer_mlp: peer("mlp"),
      peer_cnn: peer("cnn"),
      mlp_paired_ratio: r3(paired("mlp")),
      cnn_paired_ratio: r3(paired("cnn")),
      fitloop_samples_per_s: perKind((k) => Math.round(median(rates[k].fitloop))),
      pytorch_samples_per_s: perKind((k) => ({ torch2_blas1: Math.round(median(rates[k].torch2_blas1)), torch1_blas2: Math.round(median(rates[k].torch1_blas2)) })),
      fitloop_peak_mib: perKind((k) => mib(mem[k].fitloop.hwmKib) ?? null),
      pytorch_peak_mib: perKind((k) => mib(mem[k][peer(k)].hwmKib) ?? null),
      pytorch_peak_mib_by_setting: perKind((k) => ({ torch2_blas1: mib(mem[k].torch2_blas1.hwmKib) ?? null, torch1_blas2: mib(mem[k].torch1_blas2.hwmKib) ?? null })),
      warmup_samples_per_s: perKind((k) => ({ fitloop: Math.round(warmupRate(k, "fitloop")), torch2_blas1: Math.round(warmupRate(k, "torch2_blas1")), torch1_blas2: Math.round(warmupRate(k, "torch1_blas2")) })),
      warmup_ratio: perKind((k) => r3(warmupRate(k, "fitloop") / warmupRate(k, peer(k)))),
      other_load_cores: runLoad ? Math.round(runLoad.others * 100) / 100 : null,
      contended_rounds: contended,
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
