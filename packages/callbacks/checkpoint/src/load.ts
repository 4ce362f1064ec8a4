import * as tfl from "@tensorflow/tfjs-layers";
import { loadWeights, type Logger, type RunSnapshot, type SavedWeight } from "@fitloop/core";
import { CheckpointFormatError, CheckpointIntegrityError, NoCheckpointError } from "./errors.js";
import { decodeModel, decodeRun, MAX_MANIFEST_BYTES, parseManifest, verifiedFiles, type Manifest } from "./format.js";
import type { CheckpointStore } from "./store.js";

export interface LoadedCheckpoint {
  readonly name: string;
  readonly manifest: Manifest;
  /** The whole run, for `fit({ resumeFrom })`; undefined for a weights-only export. */
  readonly snapshot: RunSnapshot | undefined;
  readonly weights: SavedWeight[];
  /** The model's tfjs-layers topology, or null when the checkpoint was saved without one. */
  readonly topology: unknown;
}

/** Reads one checkpoint, checking every file against the manifest (sizes, sha256) and the formats. */
export async function readCheckpoint(store: CheckpointStore, name: string): Promise<LoadedCheckpoint> {
  const { manifest, files } = await verifiedFiles((file, maxBytes) => store.read(name, file, maxBytes), name);
  try {
    const { weights, topology } = decodeModel(files);
    return { name, manifest, snapshot: manifest.kind === "run" ? decodeRun(files) : undefined, weights, topology };
  } catch (e) {
    if (e instanceof CheckpointFormatError) throw new CheckpointIntegrityError(`checkpoint "${name}": ${e.message}`, name);
    throw e;
  }
}

/** The manifests of every checkpoint in the store (undefined where it is missing or not one), newest step first. */
export async function listCheckpoints(store: CheckpointStore): Promise<{ name: string; manifest: Manifest | undefined }[]> {
  const out: { name: string; manifest: Manifest | undefined }[] = [];
  for (const name of await store.list()) {
    let manifest: Manifest | undefined;
    try {
      manifest = parseManifest(await store.read(name, "manifest.json", MAX_MANIFEST_BYTES));
    } catch {
      manifest = undefined;
    }
    out.push({ name, manifest });
  }
  return out.sort((a, b) => (b.manifest?.step ?? -1) - (a.manifest?.step ?? -1) || String(b.manifest?.created).localeCompare(String(a.manifest?.created)));
}

export interface LoadOptions {
  /** Warned when a checkpoint is skipped because it is corrupt. */
  readonly logger?: Pick<Logger, "warn">;
}

/**
 * Loads `which`: "latest" (default), "best", or a checkpoint name. For "latest" and "best" a
 * corrupt or truncated checkpoint is skipped with a warning naming it, and the newest good one is
 * used instead; a named checkpoint is loaded or refused.
 */
export async function loadCheckpoint(store: CheckpointStore, which: "latest" | "best" | (string & {}) = "latest", options: LoadOptions & { runsOnly?: boolean } = {}): Promise<LoadedCheckpoint> {
  if (which !== "latest" && which !== "best") return readCheckpoint(store, which);
  const pointers = await store.readPointers();
  // newest step first (a crash between a write and the pointer update leaves the pointer behind);
  // the `best` pointer, or the `latest` one among equal steps, goes first
  const listed = (await listCheckpoints(store)).filter((c) => !options.runsOnly || c.manifest?.kind !== "weights");
  const first = which === "best" ? pointers.best : pointers.latest;
  const top = listed[0]?.manifest?.step;
  const preferred = listed.find((c) => c.name === first && (which === "best" || c.manifest?.step === top));
  const order = preferred ? [preferred.name, ...listed.filter((c) => c !== preferred).map((c) => c.name)] : listed.map((c) => c.name);
  const problems: string[] = [];
  for (const name of order) {
    try {
      const loaded = await readCheckpoint(store, name);
      if (problems.length) options.logger?.warn(`fitloop checkpoint: ${problems.join("; ")}; using "${name}" instead`);
      return loaded;
    } catch (e) {
      if (!(e instanceof CheckpointIntegrityError)) throw e;
      problems.push(`skipped "${name}": ${e.message}`);
    }
  }
  throw new NoCheckpointError(`no loadable ${options.runsOnly ? "run " : ""}checkpoint in ${store.description}${problems.length ? `: ${problems.join("; ")}` : " (it is empty)"}`);
}

/** The snapshot of `which` for `fit({ resumeFrom })`; "latest" and "best" skip weights-only exports. */
export async function resumeFrom(store: CheckpointStore, which: "latest" | "best" | (string & {}) = "latest", options: LoadOptions = {}): Promise<RunSnapshot> {
  const c = await loadCheckpoint(store, which, { ...options, runsOnly: true });
  if (!c.snapshot) throw new NoCheckpointError(`checkpoint "${c.name}" is a weights-only export: it cannot resume a run (load its weights with loadModel or loadWeights)`);
  return c.snapshot;
}

/** Rebuilds the model a checkpoint was saved from (topology and weights). */
export async function loadModel(store: CheckpointStore, which: "latest" | "best" | (string & {}) = "latest", options: LoadOptions = {}): Promise<tfl.LayersModel> {
  const c = await loadCheckpoint(store, which, options);
  if (c.topology === null || typeof c.topology !== "object") throw new CheckpointFormatError(`checkpoint "${c.name}" has no model topology`);
  const model = await tfl.models.modelFromJSON({ modelTopology: c.topology } as never);
  loadWeights(model, c.weights);
  return model;
}
