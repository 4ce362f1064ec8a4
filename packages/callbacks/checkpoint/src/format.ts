import * as tf from "@tensorflow/tfjs-core";
import { version_layers, type LayersModel } from "@tensorflow/tfjs-layers";
import { SNAPSHOT_FORMAT, type OptimizerStateDict, type RunSnapshot, type SavedWeight, type TrainerStateDict } from "@fitloop/core";
import { CheckpointFormatError, CheckpointIntegrityError } from "./errors.js";
import { fromJsonTree, toJsonTree } from "./json.js";
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from "./safetensors.js";
import { z } from "zod";

/**
 * One checkpoint is one directory of these files (all written before the directory appears):
 *
 *   model.json            topology (tfjs-layers JSON) and the weights' order, names, shapes, dtypes
 *   weights.safetensors   every model weight, trainable or not (BatchNorm statistics included)
 *   optimizer.json        kind, step count, variable order and shapes, slot families, scalars, lr
 *   optimizer.safetensors the slot variables ("<family>/<i>", in variable order)
 *   trainer_state.json    position and data cursor, epoch totals, history, RNG, every plugin's state
 *   state.safetensors     typed arrays from plugin states, referenced from trainer_state.json
 *   manifest.json         sha256 and size of every other file, versions, backend
 *
 * A weights-only export has model.json, weights.safetensors and manifest.json.
 */
export const CHECKPOINT_FORMAT = "fitloop.checkpoint/1";
export const FILES = ["model.json", "weights.safetensors", "optimizer.json", "optimizer.safetensors", "trainer_state.json", "state.safetensors"] as const;
export type CheckpointFile = (typeof FILES)[number] | "manifest.json";

export interface Manifest {
  readonly format: typeof CHECKPOINT_FORMAT;
  readonly created: string;
  readonly kind: "run" | "weights";
  readonly versions: Readonly<Record<string, string>>;
  readonly backend: string;
  /** The trainer's position when saved (for ordering and the best/latest pointers). */
  readonly step: number;
  readonly epoch: number;
  readonly logs: Readonly<Record<string, unknown>>;
  readonly files: Readonly<Record<string, { readonly size: number; readonly sha256: string }>>;
}

const text = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 1));

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function weightKey(name: string, i: number, taken: Set<string>): string {
  const key = /^[A-Za-z0-9_.:\-/]{1,200}$/.test(name) && !taken.has(name) ? name : `w${i}`;
  taken.add(key);
  return key;
}

function modelFiles(weights: readonly SavedWeight[], model: LayersModel | undefined): { "model.json": Uint8Array; "weights.safetensors": Uint8Array } {
  const taken = new Set<string>();
  const tensors = new Map<string, SafeTensor>();
  const order = weights.map((w, i) => {
    const key = weightKey(w.name, i, taken);
    tensors.set(key, { dtype: w.dtype === "int32" ? "I32" : "F32", shape: w.shape, data: w.values });
    return { key, name: w.name, shape: w.shape, dtype: w.dtype };
  });
  const topology = model ? (model.toJSON(null, false) as unknown) : null;
  return { "model.json": text({ format: CHECKPOINT_FORMAT, modelTopology: topology, weights: order }), "weights.safetensors": encodeSafetensors(tensors, { format: CHECKPOINT_FORMAT }) };
}

/** Versions recorded in every manifest. */
export function versions(): Record<string, string> {
  return { format: CHECKPOINT_FORMAT, "tfjs-core": tf.version_core, "tfjs-layers": version_layers };
}

export interface EncodeInfo {
  readonly versions: Readonly<Record<string, string>>;
  readonly created?: Date;
  /** Position and logs recorded in the manifest (ordering, ranking); default: from the snapshot. */
  readonly step?: number;
  readonly epoch?: number;
  readonly logs?: Readonly<Record<string, number>>;
}

/** Runs `compute` on a later macrotask, so work already handed to the file system proceeds meanwhile. */
const later = <T>(after: Promise<unknown>, compute: () => T): Promise<T> => after.then(() => new Promise<T>((resolve, reject) => setTimeout(() => {
  try {
    resolve(compute());
  } catch (e) {
    reject(e);
  }
}, 0)));

/**
 * The files of a run checkpoint for `snapshot` (and `model`'s topology, when given). Each file is a
 * promise, encoded one after the other on later turns of the event loop: a store writes (and
 * WebCrypto hashes) the first while the next is encoded.
 */
export async function encodeRun(snapshot: RunSnapshot, model: LayersModel | undefined, info: EncodeInfo): Promise<Map<string, Promise<Uint8Array>>> {
  const o = snapshot.optimizer;
  const model$ = later(Promise.resolve(), () => modelFiles(snapshot.weights, model));
  const optimizerSt$ = later(model$, () => {
    const slots = new Map<string, SafeTensor>();
    for (const [family, list] of Object.entries(o.slots)) list.forEach((s, i) => slots.set(`${family}/${i}`, { dtype: "F32", shape: s.shape, data: s.values }));
    return encodeSafetensors(slots);
  });
  const families = Object.fromEntries(Object.entries(o.slots).map(([family, list]) => [family, list.length]));
  const optimizerJson = text(toJsonTree({ format: CHECKPOINT_FORMAT, kind: o.kind, iterations: o.iterations, variables: o.variables, slots: Object.fromEntries(Object.entries(o.slots).map(([f, list]) => [f, list.map((s) => ({ variable: s.variable, shape: s.shape }))])), families, scalars: o.scalars, hyper: o.hyper }, new Map()));
  const stateTensors = new Map<string, SafeTensor>();
  const trainerJson = text({ format: CHECKPOINT_FORMAT, snapshotFormat: snapshot.format, versions: info.versions, backend: tf.getBackend() ?? "unknown", ...(toJsonTree(snapshot.trainer, stateTensors) as object) });
  const state$ = later(optimizerSt$, () => encodeSafetensors(stateTensors));
  const files = new Map<string, Promise<Uint8Array>>([
    ["model.json", model$.then((m) => m["model.json"])],
    ["weights.safetensors", model$.then((m) => m["weights.safetensors"])],
    ["optimizer.json", Promise.resolve(optimizerJson)],
    ["optimizer.safetensors", optimizerSt$],
    ["trainer_state.json", Promise.resolve(trainerJson)],
    ["state.safetensors", state$],
  ]);
  return withManifest(files, "run", snapshot.trainer, info);
}

/** The files of a weights-only export of `model` (loadable with `loadModel`, not resumable). */
export async function encodeWeights(weights: readonly SavedWeight[], model: LayersModel | undefined, info: EncodeInfo): Promise<Map<string, Promise<Uint8Array>>> {
  const m = modelFiles(weights, model);
  return withManifest(new Map(Object.entries(m).map(([k, v]) => [k, Promise.resolve(v)])), "weights", undefined, info);
}

/**
 * Adds the manifest: each file is hashed as soon as it is encoded (WebCrypto hashes off the main
 * thread), and the manifest is a promise the store awaits last, while it writes the other files.
 */
function withManifest(files: Map<string, Promise<Uint8Array>>, kind: "run" | "weights", trainer: TrainerStateDict | undefined, info: EncodeInfo): Map<string, Promise<Uint8Array>> {
  const digests = Promise.all([...files].map(async ([name, pending]) => {
    const bytes = await pending;
    return [name, { size: bytes.length, sha256: await sha256(bytes) }] as const;
  }));
  const logs = info.logs ?? trainer?.train.history.at(-1)?.logs;
  const manifest = digests.then((entries) =>
    text({
      format: CHECKPOINT_FORMAT,
      created: (info.created ?? new Date()).toISOString(),
      kind,
      versions: info.versions,
      backend: tf.getBackend() ?? "unknown",
      step: info.step ?? trainer?.train.step ?? 0,
      epoch: info.epoch ?? trainer?.train.cursor.epoch ?? 0,
      logs: logs ? (toJsonTree({ ...logs }, new Map()) as Record<string, unknown>) : {},
      files: Object.fromEntries(entries),
    } satisfies Manifest),
  );
  return new Map<string, Promise<Uint8Array>>([...files, ["manifest.json", manifest]]);
}

/** Reads a checkpoint's file by name, refusing one larger than `maxBytes` (a store's read). */
export type ReadFile = (file: string, maxBytes: number) => Promise<Uint8Array>;

/** A manifest is small: a larger file is refused before it is read. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

const manifestSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  created: z.string(),
  kind: z.enum(["run", "weights"]),
  versions: z.record(z.string(), z.string()),
  backend: z.string(),
  step: z.number().int().min(0),
  epoch: z.number().int().min(0),
  logs: z.record(z.string(), z.unknown()),
  files: z.record(z.string(), z.strictObject({ size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
});

/** Parses and checks a manifest; `undefined` when it is not one (no file content in any message). */
export function parseManifest(bytes: Uint8Array): Manifest | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
  const r = manifestSchema.safeParse(raw);
  return r.success ? (r.data as Manifest) : undefined;
}

/** Reads and checks the manifest, then every file it lists against its size and sha256. */
export async function verifiedFiles(read: ReadFile, checkpoint: string): Promise<{ manifest: Manifest; files: Map<string, Uint8Array> }> {
  const bad = (m: string) => new CheckpointIntegrityError(`checkpoint "${checkpoint}": ${m}`, checkpoint);
  let bytes: Uint8Array;
  try {
    bytes = await read("manifest.json", MAX_MANIFEST_BYTES);
  } catch (e) {
    throw bad(`manifest.json cannot be read (${(e as Error).message})`);
  }
  const manifest = parseManifest(bytes);
  if (!manifest) throw bad(`manifest.json is not a ${CHECKPOINT_FORMAT} manifest`);
  const names = Object.keys(manifest.files);
  const unknown = names.filter((n) => !(FILES as readonly string[]).includes(n));
  if (unknown.length) throw bad(`the manifest lists files fitloop does not write: ${unknown.map((n) => JSON.stringify(n)).join(", ")}`);
  const required = manifest.kind === "weights" ? ["model.json", "weights.safetensors"] : FILES;
  const missing = required.filter((n) => !names.includes(n));
  if (missing.length) throw bad(`the manifest lacks ${missing.join(", ")}`);
  // read and hash every file concurrently; none larger than the manifest says
  const checked = await Promise.all(
    names.map(async (name) => {
      const want = manifest.files[name]!;
      let bytes: Uint8Array;
      try {
        bytes = await read(name, want.size);
      } catch (e) {
        throw bad(`${name} cannot be read (${(e as Error).message})`);
      }
      if (bytes.length !== want.size) throw bad(`${name} has ${bytes.length} bytes, the manifest says ${want.size} (truncated or replaced)`);
      if ((await sha256(bytes)) !== want.sha256) throw bad(`${name} does not match its sha256 in the manifest (corrupted)`);
      return [name, bytes] as const;
    }),
  );
  return { manifest, files: new Map<string, Uint8Array>(checked) };
}

const json = (bytes: Uint8Array | undefined, name: string): Record<string, unknown> => {
  if (!bytes) throw new CheckpointFormatError(`${name} is missing`);
  try {
    const v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
    return v as Record<string, unknown>;
  } catch {
    throw new CheckpointFormatError(`${name} is not a JSON object`);
  }
};

/** The model weights in model order, and the saved topology (null when none was saved). */
export function decodeModel(files: ReadonlyMap<string, Uint8Array>): { weights: SavedWeight[]; topology: unknown } {
  const model = json(files.get("model.json"), "model.json");
  const { tensors } = decodeSafetensors(files.get("weights.safetensors")!, "weights.safetensors");
  const order = model["weights"];
  if (!Array.isArray(order)) throw new CheckpointFormatError("model.json has no weights list");
  const weights = order.map((w: { key?: unknown; name?: unknown }, i) => {
    const t = tensors.get(String(w?.key));
    if (!t) throw new CheckpointFormatError(`model.json lists weight ${i} as "${String(w?.key)}", which weights.safetensors does not have`);
    return t.dtype === "I32"
      ? { name: String(w.name), shape: t.shape, dtype: "int32" as const, values: t.data as Int32Array }
      : { name: String(w.name), shape: t.shape, dtype: "float32" as const, values: t.data as Float32Array };
  });
  if (weights.length !== tensors.size) throw new CheckpointFormatError(`weights.safetensors has ${tensors.size} tensors, model.json lists ${weights.length}`);
  return { weights, topology: model["modelTopology"] ?? null };
}

/** A run snapshot from checked files (core validates its content again when it is loaded). */
export function decodeRun(files: ReadonlyMap<string, Uint8Array>): RunSnapshot {
  const { weights } = decodeModel(files);
  const opt = fromJsonTree(json(files.get("optimizer.json"), "optimizer.json"), new Map()) as Record<string, unknown>;
  const { tensors: slotTensors } = decodeSafetensors(files.get("optimizer.safetensors")!, "optimizer.safetensors");
  const families = (opt["families"] ?? {}) as Record<string, number>;
  const slotMeta = (opt["slots"] ?? {}) as Record<string, { variable: string }[]>;
  const slots: Record<string, { variable: string; shape: readonly number[]; values: Float32Array }[]> = {};
  for (const [family, count] of Object.entries(families)) {
    if (!Number.isSafeInteger(count) || count < 0 || count > slotTensors.size) throw new CheckpointFormatError(`optimizer.json: slot family ${family} has a bad count ${String(count)}`);
    slots[family] = Array.from({ length: count }, (_, i) => {
      const t = slotTensors.get(`${family}/${i}`);
      if (!t || t.dtype !== "F32") throw new CheckpointFormatError(`optimizer.safetensors lacks the float32 slot "${family}/${i}"`);
      return { variable: String(slotMeta[family]?.[i]?.variable ?? ""), shape: t.shape, values: t.data as Float32Array };
    });
  }
  const optimizer = { kind: opt["kind"], iterations: opt["iterations"], variables: opt["variables"], slots, scalars: opt["scalars"], ...(opt["hyper"] ? { hyper: opt["hyper"] } : {}) } as OptimizerStateDict;
  const { tensors: stateTensors } = decodeSafetensors(files.get("state.safetensors")!, "state.safetensors");
  const state = fromJsonTree(json(files.get("trainer_state.json"), "trainer_state.json"), stateTensors) as Record<string, unknown>;
  const trainer = { train: state["train"], rng: state["rng"], plugins: state["plugins"] } as TrainerStateDict;
  return { format: SNAPSHOT_FORMAT, trainer, optimizer, weights };
}
