/**
 * Run in a child process by idx-adversarial.test.ts: reads one IDX file (whole, or as a stream) and
 * prints the outcome and how much the peak resident memory grew while doing it, so the test can
 * check that a gzip bomb is refused without being decompressed.
 */
import { openIdxStream, readIdxFile } from "./index.js";

const [mode, path, labels] = process.argv.slice(2);
const before = process.resourceUsage().maxRSS; // KiB, after the imports
let outcome: { code?: string; message?: string } = {};
try {
  if (mode === "stream") await openIdxStream({ images: path!, labels: labels! });
  else readIdxFile(path!);
} catch (e) {
  outcome = { code: (e as { code?: string }).code, message: (e as Error).message };
}
const grewMiB = (process.resourceUsage().maxRSS - before) / 1024;
console.log(JSON.stringify({ ...outcome, grewMiB }));
