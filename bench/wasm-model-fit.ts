/**
 * What `@fitloop/wasm` does for plain tfjs: `model.fit` (no fitloop loop) of the MLP and the small CNN
 * of bench/models.ts on the wasm backend, with the package (`await useWasm()`: its kernels, threads
 * in Node) versus without it (stock tfjs-wasm, which in Node runs single-threaded).
 *
 *   without  `tf.setBackend('wasm')`; the CNN cannot train on stock tfjs-wasm (it lacks
 *            Conv2DBackpropFilter), so for it this arm adds that one kernel and nothing else
 *            (`registerWasmKernels(); restoreWasmKernels()`: the kernels tfjs-wasm lacks, every
 *            stock kernel in place)
 *   with     `await useWasm()`
 *
 * Each measurement is a fresh child process (threads and kernels are per process): one warm-up
 * `model.fit` of one epoch, then a timed one (STEPS batches of 64, Adam 1e-3). Rounds interleave the
 * arms (the starting arm alternates); medians and the median of paired ratios. The last line is
 * `{"bench":"wasm-model-fit","mlp_speedup":S1,"cnn_speedup":S2}` (with / without, samples/s).
 *
 *   pnpm run bench:wasm-model-fit     # env: ROUNDS (5), MLP_STEPS (60), CNN_STEPS (12)
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { median, printTable, type ModelKind } from "./models.js";

const run = promisify(execFile);
const ROUNDS = Number(process.env["ROUNDS"] ?? 5);
const STEPS: Record<ModelKind, number> = { mlp: Number(process.env["MLP_STEPS"] ?? 60), cnn: Number(process.env["CNN_STEPS"] ?? 12) };
type Arm = "without" | "with";

/** Child: one model.fit measurement, printed as samples/s. */
async function child(kind: ModelKind, arm: Arm): Promise<void> {
  const tf = await import("@tensorflow/tfjs-core");
  await import("@tensorflow/tfjs-backend-wasm");
  const wasm = await import("../packages/wasm/src/index.js");
  const { BATCH, buildModel, randomData } = await import("./models.js");
  if (arm === "with") await wasm.useWasm({ logger: { warn: (m) => process.stderr.write(`${m}\n`) } });
  else {
    if (kind === "cnn") {
      wasm.registerWasmKernels();
      wasm.restoreWasmKernels(); // keeps only the kernels stock tfjs-wasm lacks
    }
    await tf.setBackend("wasm");
    await tf.ready();
  }
  const model = buildModel(kind);
  model.compile({ optimizer: tf.train.adam(1e-3), loss: "sparseCategoricalCrossentropy" });
  const samples = BATCH * STEPS[kind];
  const { xs, ys } = randomData(kind, samples);
  await model.fit(xs, ys, { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 });
  const start = performance.now();
  await model.fit(xs, ys, { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 });
  const seconds = (performance.now() - start) / 1000;
  process.stdout.write(`${JSON.stringify({ samplesPerSecond: samples / seconds })}\n`);
  process.exit(0);
}

async function measure(kind: ModelKind, arm: Arm): Promise<number> {
  const tsx = fileURLToPath(new URL("../node_modules/.bin/tsx", import.meta.url));
  const { stdout } = await run(tsx, ["--conditions=@fitloop/source", fileURLToPath(import.meta.url)], { env: { ...process.env, CHILD: `${kind}:${arm}` }, timeout: 600_000 });
  const line = stdout.trim().split("\n").at(-1)!;
  return (JSON.parse(line) as { samplesPerSecond: number }).samplesPerSecond;
}

async function main(): Promise<void> {
  const results: Record<ModelKind, Record<Arm, number[]>> = { mlp: { without: [], with: [] }, cnn: { without: [], with: [] } };
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of ["mlp", "cnn"] as const) {
      const order: Arm[] = round % 2 === 0 ? ["without", "with"] : ["with", "without"];
      for (const arm of order) results[kind][arm].push(await measure(kind, arm));
      process.stderr.write(`${kind} round ${round + 1}/${ROUNDS}: without ${results[kind].without.at(-1)!.toFixed(0)}, with ${results[kind].with.at(-1)!.toFixed(0)} samples/s\n`);
    }
  }
  const speedup = (k: ModelKind) => median(results[k].with.map((w, i) => w / results[k].without[i]!));
  printTable(
    ["model", "without (stock tfjs-wasm) samples/s", "with @fitloop/wasm samples/s", "speed-up (median of paired)"],
    (["mlp", "cnn"] as const).map((k) => [k, median(results[k].without).toFixed(0), median(results[k].with).toFixed(0), `${speedup(k).toFixed(2)}x`]),
  );
  console.log("");
  console.log(`model.fit, batch 64, Adam 1e-3; medians of ${ROUNDS} rounds, each a fresh process; the CNN's "without" arm has Conv2DBackpropFilter added (stock tfjs-wasm cannot train it at all)`);
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  console.log(JSON.stringify({ bench: "wasm-model-fit", mlp_speedup: r3(speedup("mlp")), cnn_speedup: r3(speedup("cnn")) }));
}

const role = process.env["CHILD"];
if (role) {
  const [kind, arm] = role.split(":") as [ModelKind, Arm];
  await child(kind, arm);
} else {
  await main();
}
