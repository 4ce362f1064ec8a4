/**
 * The `fitloop` program: `tune` (a worker on a shared study) and `study show`. `main` returns the
 * exit code instead of exiting, so tests and wrappers can call it: 0 done, 1 a failure while
 * running, 2 bad input (see errors.ts).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { FitloopError } from "@fitloop/core";
import { EXIT_USAGE, exitCodeOf } from "./errors.js";
import { showStudy } from "./show.js";
import { SAMPLERS, runWorker, type SamplerName } from "./worker.js";

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const processIo: CliIo = { stdout: (t) => void process.stdout.write(t), stderr: (t) => void process.stderr.write(t) };

const integer = (flag: string, min: number) => (value: string) => {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${flag} must be an integer >= ${min}`);
  return n;
};
const anyInteger = (flag: string) => (value: string) => {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${flag} must be an integer`);
  return n;
};

interface TuneFlags {
  storage: string;
  study: string;
  objective: string;
  trials?: number;
  seed?: number;
  checkpoints?: string;
  prefix?: string;
  leaseMs?: number;
  maxRetries?: number;
  direction?: "minimize" | "maximize";
  sampler?: SamplerName;
  catchErrors: boolean;
  quiet: boolean;
}

interface ShowFlags {
  storage: string;
  study: string;
  prefix?: string;
  json: boolean;
}

function program(io: CliIo): Command {
  const line = (text: string) => io.stdout(`${text}\n`);
  const logger = { debug: () => undefined, info: (m: string) => io.stderr(`${m}\n`), warn: (m: string) => io.stderr(`${m}\n`), error: (m: string) => io.stderr(`${m}\n`) };
  const root = new Command()
    .name("fitloop")
    .description("Tuning workers on a study shared through Optuna's journal (a file, or Redis), and the study as a table")
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError("(fitloop --help, fitloop tune --help)");
  const storageOption = () => new Option("--storage <spec>", "redis://[:password@]host:port[/db] (or rediss://), or the path of a journal file").makeOptionMandatory();
  root
    .command("tune")
    .description("join the study (creating it if missing) and run trials until it has --trials finished ones")
    .addOption(storageOption())
    .requiredOption("--study <name>", "the study's name")
    .requiredOption("--objective <module>", "module exporting space and objective(params, trial) (.js, .mjs; .ts under tsx)")
    .option("--trials <n>", "finished trials the study should have, over all workers (default: the module's trials)", integer("--trials", 1))
    .option("--seed <n>", "study seed: trial n's params and seed follow from it (default: the module's seed, else 0)", anyInteger("--seed"))
    .option("--checkpoints <dir>", "a directory every worker can reach: trials checkpoint there and a retried trial resumes")
    .option("--prefix <prefix>", "Redis only: Optuna's key prefix (default \"\")")
    .option("--lease-ms <ms>", "Redis only: a worker silent this long is dead, its trial queued again (default 30000)", integer("--lease-ms", 300))
    .option("--max-retries <n>", "how often a dead worker's trial is queued again (default 3)", integer("--max-retries", 0))
    .addOption(new Option("--direction <direction>", "for a new study; checked against an existing one (default: the module's, else the study's)").choices(["minimize", "maximize"]))
    .addOption(new Option("--sampler <name>", "how new trials' params are picked (default: the module's sampler, else random)").choices(SAMPLERS))
    .option("--catch-errors", "go on after the objective throws (the trial is FAIL either way)", false)
    .option("--quiet", "print only the summary line", false)
    .action(async (f: TuneFlags) => {
      await runWorker({
        storage: f.storage,
        study: f.study,
        objective: f.objective,
        ...(f.trials !== undefined ? { trials: f.trials } : {}),
        ...(f.seed !== undefined ? { seed: f.seed } : {}),
        ...(f.checkpoints !== undefined ? { checkpoints: f.checkpoints } : {}),
        ...(f.prefix !== undefined ? { prefix: f.prefix } : {}),
        ...(f.leaseMs !== undefined ? { leaseMs: f.leaseMs } : {}),
        ...(f.maxRetries !== undefined ? { maxRetries: f.maxRetries } : {}),
        ...(f.direction !== undefined ? { direction: f.direction } : {}),
        ...(f.sampler !== undefined ? { sampler: f.sampler } : {}),
        catchErrors: f.catchErrors,
        quiet: f.quiet,
        print: line,
        logger,
      });
    });
  root
    .command("study")
    .description("look at a study")
    .command("show")
    .description("the study as a table (number, state, value, params, reported steps, worker, retry of, duration), or JSON")
    .addOption(storageOption())
    .requiredOption("--study <name>", "the study's name")
    .option("--prefix <prefix>", "Redis only: Optuna's key prefix")
    .option("--json", "JSON instead of the table", false)
    .action(async (f: ShowFlags) => {
      line(await showStudy({ storage: f.storage, study: f.study, ...(f.prefix !== undefined ? { prefix: f.prefix } : {}), json: f.json, logger }));
    });
  return root;
}

/** Runs the command line `args` (without node and the script); returns the exit code. */
export async function main(args: readonly string[], io: CliIo = processIo): Promise<number> {
  try {
    await program(io).parseAsync([...args], { from: "user" });
    return 0;
  } catch (e) {
    // commander has printed its message already (a usage error), or the help (asked for: 0; no command given: 2)
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_USAGE;
    const message = e instanceof FitloopError ? e.message : e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
    io.stderr(`fitloop: ${message}\n`);
    return exitCodeOf(e);
  }
}
