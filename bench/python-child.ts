/**
 * A long-lived Python child that speaks one JSON object per line on stdout: the benches compare
 * against PyTorch through it (bench:vs-pytorch, bench:time-to-accuracy), so rounds interleave
 * without paying torch's import each time. Its first line is `{"ready": true, ...}` or an error.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";

export interface PythonChild {
  readonly child: ChildProcessWithoutNullStreams;
  /** The first line (`ready`, versions, thread counts). */
  readonly first: Record<string, unknown>;
  /** The next line, parsed; throws with the child's stderr when it exited. */
  next(): Promise<Record<string, unknown>>;
}

/** Starts `python script`; `{missing}` (with the reason) when python, or what the script imports, is missing. */
export async function startPythonChild(python: string, script: string, env: Record<string, string>): Promise<PythonChild | { missing: string }> {
  let child: ChildProcessWithoutNullStreams;
  try {
    child = spawn(python, [script], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  } catch (e) {
    return { missing: `${python}: ${(e as Error).message}` };
  }
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const spawnError = new Promise<{ missing: string }>((resolve) => child.on("error", (e) => resolve({ missing: `${python}: ${e.message}` })));
  const next = async (): Promise<Record<string, unknown>> => {
    const r = await lines.next();
    if (r.done) throw new Error(`the Python child exited: ${stderr.trim().slice(-500)}`);
    return JSON.parse(r.value) as Record<string, unknown>;
  };
  const first: Record<string, unknown> = await Promise.race([next().catch((e: Error): Record<string, unknown> => ({ ready: false, error: e.message })), spawnError]);
  if ("missing" in first) return first as { missing: string };
  if (first["ready"] !== true) {
    child.kill();
    return { missing: String(first["error"]) };
  }
  return { child, first, next };
}
