/**
 * fitloop on the wasm backend versus PyTorch on the CPU, same machine, same run: the MLP and the
 * small CNN of bench/models.ts, batch 64, Adam 1e-3, cross-entropy, the same number of steps.
 *
 *   fitloop  `new Trainer({model, optimizer: adam, loss: 'sparseCategoricalCrossentropy'}).fit(...)`
 *            on `useBackend('wasm')` (fitloop's wasm kernels on, the default), one epoch of STEPS
 *            batches per round (setup included, as a user runs it)
 *   PyTorch  bench/vs-pytorch.py under Debian's /usr/bin/python3 (python3-torch + libopenblas0-pthread,
 *            which this bench does not install), torch.set_num_threads(2), OPENBLAS_NUM_THREADS=1;
 *            a long-lived child, so rounds interleave without paying torch's import each time
 *
 * One warm-up round per arm, then ROUNDS interleaved rounds (the starting arm alternates); medians.
 * Prints a table and, last, {"bench":"vs-pytorch","mlp_ratio":R1,"cnn_ratio":R2} (fitloop samples/s
 * / PyTorch samples/s). Without torch it says so and exits 0 with no JSON line.
 *
 *   pnpm run bench:vs-pytorch    # env: ROUNDS (5), MLP_STEPS (60), CNN_STEPS (12), PYTHON (/usr/bin/python3),
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
import { BATCH, buildModel, intEnv, median, randomData, threadsEnv, wasmThreadCount, type ModelKind } from "./models.js";
import { startPythonChild } from "./python-child.js";

const ROUNDS = intEnv("ROUNDS", 5);
const STEPS: Record<ModelKind, number> = { mlp: intEnv("MLP_STEPS", 60), cnn: intEnv("CNN_STEPS", 12) };
const PYTHON = process.env["PYTHON"] ?? "/usr/bin/python3";
const KINDS: ModelKind[] = ["mlp", "cnn"];

interface Torch {
  info: { torch: string; threads: number };
  run(kind: ModelKind, steps: number): Promise<number>;
  close(): void;
}

/** Starts the PyTorch child; undefined (with the reason) when python or torch is missing. */
async function startTorch(): Promise<Torch | { missing: string }> {
  const py = await startPythonChild(PYTHON, fileURLToPath(new URL("./vs-pytorch.py", import.meta.url)), { OPENBLAS_NUM_THREADS: "1", THREADS: "2" });
  if ("missing" in py) return py;
  const { child, first, next } = py;
  return {
    info: { torch: String(first["torch"]), threads: Number(first["threads"]) },
    async run(kind, steps) {
      child.stdin.write(`${kind} ${steps}\n`);
      const r = await next();
      return Number(r["samples_per_s"]);
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
  return {
    async run() {
      const t0 = performance.now();
      const r = await new Trainer({ model, optimizer, loss: "sparseCategoricalCrossentropy" }).fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: BATCH, shuffle: false }) });
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
  const torch = await startTorch();
  if ("missing" in torch) {
    console.log(`PyTorch is not available (${torch.missing.split("\n")[0]}); install Debian's python3-torch and libopenblas0-pthread to run this bench. Skipped.`);
    return;
  }
  const backend = await useBackend("wasm", threadsEnv());
  const threads = await wasmThreadCount();
  const replaced = applyKernelChoice();
  const simd = simdKernelsEnabled() && replaced.some((k) => ["BatchNorm", "MaxPoolGrad", "ReluGrad"].includes(k)) ? ", WebAssembly SIMD kernels on" : "";
  const kernels = replaced.length ? `fitloop wasm kernels on (replaced: ${replaced.join(", ")}${simd})` : "only the kernels tfjs-wasm lacks (WASM_KERNELS=added)";
  console.log(`fitloop: tfjs ${tf.version_core} ${backend} backend (${threads} thread${threads > 1 ? "s" : ""}), ${kernels}; PyTorch ${torch.info.torch}, ${torch.info.threads} threads, OPENBLAS_NUM_THREADS=1`);
  console.log(`batch ${BATCH}, Adam 1e-3; per round MLP ${STEPS.mlp} steps, CNN ${STEPS.cnn} steps; ${ROUNDS} interleaved rounds after one warm-up`);
  const started = performance.now();
  const rates: Record<ModelKind, { fitloop: number[]; pytorch: number[] }> = { mlp: { fitloop: [], pytorch: [] }, cnn: { fitloop: [], pytorch: [] } };
  try {
    for (const kind of KINDS) {
      const arm = fitloopArm(kind);
      await arm.run();
      await torch.run(kind, STEPS[kind]);
      for (let round = 0; round < ROUNDS; round++) {
        let f: number;
        let p: number;
        if (round % 2 === 0) {
          f = await arm.run();
          p = await torch.run(kind, STEPS[kind]);
        } else {
          p = await torch.run(kind, STEPS[kind]);
          f = await arm.run();
        }
        rates[kind].fitloop.push(f);
        rates[kind].pytorch.push(p);
        process.stderr.write(`${kind} round ${round + 1}/${ROUNDS}: fitloop ${f.toFixed(0)}, PyTorch ${p.toFixed(0)} samples/s (${(f / p).toFixed(3)}x)\n`);
      }
      arm.dispose();
    }
  } finally {
    torch.close();
  }
  const ratio = (k: ModelKind) => median(rates[k].fitloop) / median(rates[k].pytorch);
  const paired = (k: ModelKind) => median(rates[k].fitloop.map((f, i) => f / rates[k].pytorch[i]!));
  console.log("\n| model | fitloop wasm samples/s | PyTorch samples/s | ratio (of medians) | paired ratio | fitloop min..max | PyTorch min..max |");
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const k of KINDS) {
    const r = rates[k];
    const range = (v: number[]) => `${Math.min(...v).toFixed(0)}..${Math.max(...v).toFixed(0)}`;
    console.log(`| ${k} | ${median(r.fitloop).toFixed(0)} | ${median(r.pytorch).toFixed(0)} | ${ratio(k).toFixed(3)} | ${paired(k).toFixed(3)} | ${range(r.fitloop)} | ${range(r.pytorch)} |`);
  }
  console.log(`\nmedians of ${ROUNDS} interleaved rounds, ${((performance.now() - started) / 1000).toFixed(0)} s; goal >= 0.5x, first milestone >= 0.25x`);
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  console.log(JSON.stringify({ bench: "vs-pytorch", mlp_ratio: r3(ratio("mlp")), cnn_ratio: r3(ratio("cnn")) }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
