export { Checkpoint, type CheckpointOptions } from "./checkpoint.js";
export { MemoryStore, checkName, sanitizeName, type CheckpointStore, type Pointers } from "./store.js";
export { loadCheckpoint, readCheckpoint, resumeFrom, loadModel, listCheckpoints, type LoadedCheckpoint, type LoadOptions } from "./load.js";
export { encodeRun, encodeWeights, decodeRun, decodeModel, verifiedFiles, CHECKPOINT_FORMAT, FILES, type Manifest } from "./format.js";
export { encodeSafetensors, decodeSafetensors, MAX_HEADER_BYTES, type SafeTensor, type SafetensorsDtype, type TensorData } from "./safetensors.js";
export { formatName, type NameValues } from "./template.js";
export { CheckpointExistsError, CheckpointFormatError, CheckpointIntegrityError, NoCheckpointError } from "./errors.js";
export { saveWeights } from "./export.js";
export { CHECKPOINT_STORE, CHECKPOINT_OPTIONS, InjectedCheckpoint } from "./di.js";
