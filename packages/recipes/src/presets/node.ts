import { FileStore } from "@fitloop/checkpoint/node";
import { CSVLogger } from "@fitloop/csv-logger";
import { ProgressBar } from "@fitloop/progress";
import { Report } from "@fitloop/report";
import type { PresetOptions } from "./options.js";
import { buildPreset, type Preset, type PresetIO } from "./wiring.js";

/** Node's file and terminal plugins: FileStore checkpoints, CSVLogger, Report, ProgressBar. */
export const nodePresetIO: PresetIO = {
  checkpointStore: (dir) => new FileStore(dir),
  csvLogger: (options) => new CSVLogger(options),
  report: (options) => new Report(options),
  progress: (options) => new ProgressBar(options),
};

/** `classification` with checkpoints, the CSV log and the report in `dir`, and a progress bar. */
export function classification(options: PresetOptions): Preset {
  return buildPreset("classification", options, nodePresetIO);
}

/** `regression` with checkpoints, the CSV log and the report in `dir`, and a progress bar. */
export function regression(options: PresetOptions): Preset {
  return buildPreset("regression", options, nodePresetIO);
}

/** `fineTune` with checkpoints, the CSV log and the report in `dir`, and a progress bar. */
export function fineTune(options: PresetOptions): Preset {
  return buildPreset("fineTune", options, nodePresetIO);
}
