/** Child of stdio-listeners.test.ts: threaded wasm, then a listener of the user's own on stdout and stderr. */
import "@tensorflow/tfjs-backend-wasm";
import { useWasm } from "../index.js";

const warnings: string[] = [];
process.on("warning", (w) => void warnings.push(w.name));
await useWasm({ threads: 2 });
for (const s of [process.stdout, process.stderr]) s.on("error", () => {});
await new Promise((r) => setImmediate(r));
process.stdout.write(JSON.stringify({ warnings }) + "\n");
