import type { LayersModel } from "@tensorflow/tfjs-layers";
import { captureWeights } from "@fitloop/core";
import { encodeWeights, versions } from "./format.js";
import { checkName, type CheckpointStore } from "./store.js";

/** Writes a weights-only checkpoint of `model` (topology and every weight; `loadModel` reads it back). */
export async function saveWeights(store: CheckpointStore, name: string, model: LayersModel): Promise<void> {
  checkName(name);
  await store.write(name, await encodeWeights(await captureWeights(model), model, { versions: versions() }));
}
