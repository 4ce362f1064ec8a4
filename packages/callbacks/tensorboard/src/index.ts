export { TensorBoard, type TensorBoardOptions, type TensorBoardFiles } from "./tensorboard.js";
export { crc32c, maskedCrc32c } from "./crc32c.js";
export { encodeEvent, decodeEvent, type TfEvent, type DecodedEvent, type SummaryValue, type HistogramData } from "./event.js";
export { tfRecord, readEventFile } from "./record.js";
export { histogram, exponentialBucketLimits } from "./histogram.js";
export { EventFileWriter, eventFileName } from "./writer.js";
export { EventFileError } from "./errors.js";
