/**
 * Checkpoints per trial, so a trial whose worker died resumes where it was instead of starting over:
 * the trial's directory (tune's `checkpoints` option) holds its checkpoints, and a retry of it gets
 * the same directory (see `Trial.checkpointDir`).
 */
import type { RunSnapshot } from "@fitloop/core";
import { Checkpoint, NoCheckpointError, listCheckpoints, loadCheckpoint, type CheckpointOptions } from "@fitloop/checkpoint";
import { FileStore } from "@fitloop/checkpoint/node";
import { TunerError } from "./errors.js";
import type { Trial } from "./trial.js";

export interface TrialCheckpoint {
  /** Saves the trial's run (every epoch unless `every` says otherwise); put it in the Trainer's callbacks. */
  readonly callback: Checkpoint;
  /** Pass to `fit({ resumeFrom })`: the latest checkpoint of the trial (or of the failed trial it repeats), if any. */
  readonly resumeFrom: RunSnapshot | undefined;
  /** Where the resumed run was (undefined: a fresh start). */
  readonly resumedAt: { readonly name: string; readonly step: number; readonly epoch: number } | undefined;
}

/**
 * The checkpoint callback of `trial` and what to resume from:
 *
 *   const { callback, resumeFrom } = await trialCheckpoint(trial);
 *   await new Trainer({ ..., callbacks: [callback, new TrialReporter(trial)] }).fit({ epochs, train, resumeFrom });
 */
export async function trialCheckpoint(trial: Trial, options: Omit<CheckpointOptions, "store"> = {}): Promise<TrialCheckpoint> {
  if (trial.checkpointDir === undefined) throw new TunerError("INVALID_VALUE", `trial ${trial.number} has no checkpoint directory: give tune() the \`checkpoints\` option (a directory every worker can reach)`);
  const store = new FileStore(trial.checkpointDir);
  const callback = new Checkpoint({ every: { epochs: 1 }, keepLast: 2, ...options, store });
  let c: Awaited<ReturnType<typeof loadCheckpoint>>;
  try {
    c = await loadCheckpoint(store, "latest", { runsOnly: true });
  } catch (e) {
    if (e instanceof NoCheckpointError) return { callback, resumeFrom: undefined, resumedAt: undefined };
    throw e;
  }
  // Only a retry continues a run; checkpoints in a fresh trial's directory belong to another study
  // of the same name (a recreated journal, another prefix): never start from someone else's weights.
  if (trial.retryOf === undefined) throw new TunerError("INVALID_VALUE", `trial ${trial.number}'s checkpoint directory ${trial.checkpointDir} already holds checkpoints (${c.name}), but the trial is not a retry: they belong to another run of a study with this name; use another checkpoints directory or remove it`);
  if (!c.snapshot) return { callback, resumeFrom: undefined, resumedAt: undefined };
  return { callback, resumeFrom: c.snapshot, resumedAt: { name: c.name, step: c.manifest.step, epoch: c.manifest.epoch } };
}

/**
 * Where the latest run checkpoint in `trial`'s directory stands, from the manifests alone (no
 * tensors read): what `trialCheckpoint` would resume a retry from. Undefined without one.
 */
export async function trialCheckpointAt(trial: Trial): Promise<{ readonly name: string; readonly step: number; readonly epoch: number } | undefined> {
  if (trial.checkpointDir === undefined) return undefined;
  const latest = (await listCheckpoints(new FileStore(trial.checkpointDir))).find((c) => c.manifest !== undefined && c.manifest.kind !== "weights");
  return latest?.manifest ? { name: latest.name, step: latest.manifest.step, epoch: latest.manifest.epoch } : undefined;
}
