/**
 * Node flags for fitloop's worker threads (the kernel workers, Emscripten's pthread workers): none.
 * Given no `execArgv`, a worker inherits the parent's, and under a loader such as tsx (`node --import
 * tsx`, how the demo and the benches run) every worker starts that loader again: ~6-12 MiB resident
 * per worker (measured: tfjs-wasm's pool workers and the kernel worker, 2-core machine). Passing the
 * parent's flags without the loaders does not work either: Node refuses V8 and per-process options
 * in a worker's `execArgv` (ERR_WORKER_INVALID_EXEC_ARGV for `--max-old-space-size`, `--stack-size`,
 * `--expose-gc`, `--v8-pool-size`), so one of them on the command line made the wasm backend fail
 * to initialise. The workers run plain JavaScript (Emscripten's pthread script, the kernel worker's
 * CommonJS) and need no flag; V8's flags are process-wide and apply to them anyway.
 */
export function workerExecArgv(): string[] {
  return [];
}
