import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const here = dirname(fileURLToPath(import.meta.url));

describe("threads and the process's stdio", () => {
  it("after threaded wasm starts, a listener of the user's own on stdout/stderr gives no MaxListenersExceededWarning", async () => {
    // a fresh process: the wasm backend initialises once per process
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--conditions=@fitloop/source", join(here, "stdio-listeners.fixture.ts")], { cwd: join(here, "..", ".."), timeout: 60_000 });
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!) as { warnings: string[] };
    expect(result.warnings).not.toContain("MaxListenersExceededWarning");
  });
});
