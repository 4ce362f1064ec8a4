import "reflect-metadata";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import type { BackendName } from "@fitloop/core";
import { runLrFinder } from "./lr-find.js";
import { MODEL_KINDS, type ModelKind } from "./model.js";
import { report } from "./report.js";
import { LAST_RUN_POINTER, resume, setup, train, type RunConfig, type SessionOptions } from "./train.js";

const int = (name: string, min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
  return n;
};
const backendOption = () => new Option("--backend <name>", "tfjs backend").choices(["wasm", "cpu", "tensorflow"]).default("wasm");
const timestamp = () => new Date().toISOString().replace(/[:.]/g, "-").replace("T", "_").slice(0, 19);

interface TrainFlags {
  epochs: number;
  seed: number;
  backend: BackendName;
  model: ModelKind;
  batch: number;
  shift: number;
  out?: string;
  data?: string;
  dataset: "mnist" | "fashion";
  dashboard: boolean;
  stopAfter?: number;
}

const program = new Command()
  .name("fitloop-demo")
  .description("Trains a digit classifier on real MNIST with fitloop's full recipe")
  .showHelpAfterError();

const dataOptions = (cmd: Command) =>
  cmd
    .option("--seed <n>", "seed of the split, the model, the data order and augmentation", int("--seed", 0), 42)
    .addOption(new Option("--model <kind>", "network").choices(MODEL_KINDS).default("cnn"))
    .option("--batch <n>", "batch size", int("--batch", 1), 64)
    .option("--shift <px>", "random-shift augmentation in pixels (0: none)", int("--shift", 0), 2)
    .option("--data <dir>", "IDX files (train-images-idx3-ubyte[.gz], ...) instead of the embedded digits")
    .addOption(new Option("--dataset <kind>", "what --data holds").choices(["mnist", "fashion"]).default("mnist"))
    .addOption(backendOption());

const config = (o: TrainFlags): RunConfig => ({ model: o.model, epochs: o.epochs, seed: o.seed, batchSize: o.batch, maxShift: o.shift, dataDir: o.data, dataset: o.dataset, createdAt: new Date().toISOString() });
const session = (o: { backend: BackendName; dashboard: boolean; stopAfter?: number }): SessionOptions => ({ backend: o.backend, dashboard: o.dashboard, stopAfter: o.stopAfter });

dataOptions(
  program
    .command("train", { isDefault: true })
    .description("sanity checks, data report, LR finder, then 1cycle training with checkpoints, logs and an HTML report (the default)")
    .option("--epochs <n>", "epochs", int("--epochs", 1), 30)
    .option("--out <dir>", "run directory (default runs/<timestamp>)")
    .option("--dashboard", "serve a live dashboard on 127.0.0.1 while training", false)
    .addOption(new Option("--stop-after <n>", "stop after n epochs as Ctrl-C does (for tests)").argParser(int("--stop-after", 1)).hideHelp()),
).action(async (o: TrainFlags) => {
  await train(config(o), o.out ?? join("runs", timestamp()), session(o));
});

program
  .command("resume")
  .description("continue a run from its latest checkpoint (default: the last run started here)")
  .argument("[run-dir]", "the run's directory")
  .addOption(backendOption())
  .option("--dashboard", "serve a live dashboard on 127.0.0.1 while training", false)
  .action(async (dir: string | undefined, o: { backend: BackendName; dashboard: boolean }) => {
    const runDir = dir ?? (existsSync(LAST_RUN_POINTER) ? readFileSync(LAST_RUN_POINTER, "utf8").trim() : undefined);
    if (!runDir) throw new Error(`no run to resume: give its directory (no ${LAST_RUN_POINTER} here)`);
    await resume(runDir, session(o));
  });

dataOptions(program.command("lr-find").description("run only the LR range test and print its suggestions")).action(async (o: TrainFlags) => {
  const { backend, data, model } = await setup({ ...config({ ...o, epochs: 1 }) }, o.backend);
  console.log(`LR finder on ${data.description}, backend ${backend}, model ${o.model}`);
  await runLrFinder(model, data, o.seed);
});

program
  .command("report")
  .description("(re)write the plots and report.html of a run")
  .argument("<run-dir>", "the run's directory")
  .action(async (dir: string) => report(dir));

// `pnpm start -- train ...` passes the `--` through; it is not an argument.
const argv = process.argv.slice(2);
if (argv[0] === "--") argv.shift();
try {
  await program.parseAsync(argv, { from: "user" });
} catch (error) {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
