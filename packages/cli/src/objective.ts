/**
 * The user's objective module (`--objective`): a JavaScript or TypeScript file that exports the
 * space and the objective, plus optional defaults the flags override. Everything is checked when it
 * is loaded, before the worker joins the study, with errors that name the export.
 */
import { existsSync, statSync } from "node:fs";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { distributionToJson, type ParamDistribution, type Params, type Pruner, type Sampler, type SearchSpace, type StudyDirection, type Trial } from "@fitloop/recipes";
import { CliError } from "./errors.js";

/** What an objective module exports (`export const space = ...; export async function objective(...)`). */
export interface ObjectiveModule<S extends SearchSpace = SearchSpace> {
  /** Parameter name to distribution: `logUniform`, `uniform`, `int`, `choice` from `@fitloop/recipes`. */
  readonly space: S;
  /** Trains with `params` and returns the value to optimise (`trial` reports and prunes: `TrialReporter`). */
  readonly objective: (params: Params<S>, trial: Trial<S>) => number | Promise<number>;
  /** Finished trials the study should have (`--trials` overrides). */
  readonly trials?: number;
  /** For a new study (`--direction` overrides); checked against an existing one. */
  readonly direction?: StudyDirection;
  /** Study seed (`--seed` overrides). */
  readonly seed?: number;
  readonly pruner?: Pruner;
  /** `randomSampler()` (the default) or `tpeSampler(...)` (`--sampler` overrides). */
  readonly sampler?: Sampler;
}

const DISTRIBUTION_HINT = "logUniform(...), uniform(...), int(...) or choice([...]) from @fitloop/recipes";

function checkDistribution(d: unknown): string | undefined {
  if (typeof d !== "object" || d === null || !["float", "int", "categorical"].includes((d as { kind?: unknown }).kind as string)) return `is not a distribution (use ${DISTRIBUTION_HINT})`;
  try {
    distributionToJson(d as ParamDistribution);
    return undefined;
  } catch (e) {
    return `is not a valid distribution: ${(e as Error).message}`;
  }
}

/**
 * Checks the exports of an objective module and returns them typed; every problem is listed in one
 * `CliError` (`INVALID_OBJECTIVE_MODULE`) naming the export. Other exports are ignored. A module
 * whose only export is a default object with these fields works too.
 */
export function checkObjectiveModule(exports: unknown, where: string): ObjectiveModule {
  let m = (typeof exports === "object" && exports !== null ? exports : {}) as Record<string, unknown>;
  const fallback = m["default"];
  if (!("objective" in m) && typeof fallback === "object" && fallback !== null) m = fallback as Record<string, unknown>;
  const problems: string[] = [];
  const space = m["space"];
  if (space === undefined) problems.push(`does not export \`space\` (an object of parameter name to ${DISTRIBUTION_HINT})`);
  else if (typeof space !== "object" || space === null || Array.isArray(space)) problems.push(`\`space\` must be an object of parameter name to ${DISTRIBUTION_HINT}`);
  else if (!Object.keys(space).length) problems.push("`space` declares no parameter");
  else for (const [name, d] of Object.entries(space)) {
    const why = checkDistribution(d);
    if (why) problems.push(`\`space.${name}\` ${why}`);
  }
  if (m["objective"] === undefined) problems.push("does not export `objective` (a function (params, trial) => number | Promise<number>)");
  else if (typeof m["objective"] !== "function") problems.push(`\`objective\` must be a function (params, trial) => number | Promise<number>, not ${typeof m["objective"]}`);
  const trials = m["trials"];
  if (trials !== undefined && !(Number.isInteger(trials) && (trials as number) >= 1)) problems.push(`\`trials\` must be an integer >= 1, not ${JSON.stringify(trials)}`);
  const seed = m["seed"];
  if (seed !== undefined && !Number.isSafeInteger(seed)) problems.push(`\`seed\` must be a safe integer, not ${JSON.stringify(seed)}`);
  const direction = m["direction"];
  if (direction !== undefined && direction !== "minimize" && direction !== "maximize") problems.push(`\`direction\` must be "minimize" or "maximize", not ${JSON.stringify(direction)}`);
  const pruner = m["pruner"] as Partial<Pruner> | undefined;
  if (pruner !== undefined && (typeof pruner !== "object" || pruner === null || typeof pruner.shouldPrune !== "function" || typeof pruner.name !== "string")) problems.push("`pruner` must be a pruner (medianPruner(...), percentilePruner(...) from @fitloop/recipes)");
  const sampler = m["sampler"] as Partial<Sampler> | undefined;
  if (sampler !== undefined && (typeof sampler !== "object" || sampler === null || typeof sampler.sample !== "function" || typeof sampler.name !== "string")) problems.push("`sampler` must be a sampler (randomSampler(), tpeSampler(...) from @fitloop/recipes)");
  if (problems.length) throw new CliError("INVALID_OBJECTIVE_MODULE", `objective module ${where}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  return m as unknown as ObjectiveModule;
}

/** Imports the module at `path` (relative to the working directory) and checks its exports. */
export async function loadObjectiveModule(path: string): Promise<ObjectiveModule> {
  if (typeof path !== "string" || !path) throw new CliError("INVALID_USAGE", "--objective is required: the path of a module that exports `space` and `objective`");
  const file = resolve(path);
  if (!existsSync(file) || !statSync(file).isFile()) throw new CliError("INVALID_OBJECTIVE_MODULE", `objective module ${file} does not exist`);
  let exports: unknown;
  try {
    exports = await import(pathToFileURL(file).href);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Node 20 cannot import TypeScript by itself; under tsx (tests, `node --import tsx`) it can
    if (code === "ERR_UNKNOWN_FILE_EXTENSION" && [".ts", ".mts", ".cts"].includes(extname(file))) {
      throw new CliError("INVALID_OBJECTIVE_MODULE", `objective module ${file} is TypeScript, which this Node cannot import: compile it to .js, or run the command under tsx (node --import tsx $(command -v fitloop) tune ...)`, { cause: e });
    }
    throw new CliError("INVALID_OBJECTIVE_MODULE", `objective module ${file} failed to load: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, { cause: e });
  }
  return checkObjectiveModule(exports, file);
}
