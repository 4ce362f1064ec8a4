/**
 * Node flags for fitloop's worker threads: the parent's `execArgv` without the module-loading flags.
 * A worker inherits `process.execArgv`, so under a loader such as tsx (`node --import tsx`, how the
 * demo and the benches run) every worker starts that loader again: ~6-12 MiB resident per worker
 * (measured: tfjs-wasm's pool workers and the kernel worker, 2-core machine). The workers run plain
 * JavaScript (Emscripten's pthread script, the kernel worker's CommonJS), so they need no loader;
 * every other flag (memory limits, V8 options) is kept.
 */
const LOADER_FLAGS = new Set(["--import", "--require", "-r", "--loader", "--experimental-loader"]);

export function workerExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!LOADER_FLAGS.has(name)) {
      out.push(arg);
      continue;
    }
    if (eq < 0) i++; // the flag's value is the next argument
  }
  return out;
}
