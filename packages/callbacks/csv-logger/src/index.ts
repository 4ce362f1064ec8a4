export { CSVLogger, type CSVLoggerOptions } from "./csv-logger.js";
export { JSONLLogger, type JSONLLoggerOptions } from "./jsonl-logger.js";
export { formatCsvRow, parseCsv, MISSING, type CsvCell, type CsvTable } from "./csv.js";
export { formatJsonlRow, readJsonl, JSONL_FIELDS, type JsonlRow } from "./jsonl.js";
export { formatNumber, parseNumber, LogFileFormatError } from "./values.js";
export type { Row } from "./sink.js";
