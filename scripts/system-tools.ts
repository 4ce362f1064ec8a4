/**
 * System programs some tests need (a real browser, a real terminal multiplexer). `.ci/run` installs
 * them and sets FITLOOP_REQUIRE_SYSTEM_TOOLS=1, so a missing one fails there; on a developer's
 * machine without them those tests are skipped, loudly: a banner on stderr naming the tool and how
 * to install it, and the summary line lists every skipped test.
 *
 *   const chromium = systemTool("chromium");
 *   describe.skipIf(!chromium.path)(`report in a browser${chromium.note}`, () => { ... });
 */
import { execFileSync } from "node:child_process";

export interface SystemTool {
  /** Absolute path of the program, or undefined when it is not installed. */
  readonly path: string | undefined;
  /** "" when found; otherwise " (SKIPPED: <why>)", to put in the describe/test name. */
  readonly note: string;
}

const INSTALL: Record<string, string> = { chromium: "apt-get install chromium", tmux: "apt-get install tmux", python3: "apt-get install python3", "redis-server": "apt-get install redis-server" };

export function systemTool(name: "chromium" | "tmux" | "python3" | "redis-server"): SystemTool {
  let path: string | undefined;
  try {
    path = execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim() || undefined;
  } catch {
    path = undefined;
  }
  if (path) return { path, note: "" };
  const why = `${name} is not installed (${INSTALL[name]}; .ci/run installs it)`;
  if (process.env["FITLOOP_REQUIRE_SYSTEM_TOOLS"] === "1") throw new Error(`${why}, and FITLOOP_REQUIRE_SYSTEM_TOOLS=1 says these tests must run`);
  process.stderr.write(`\n*** SKIPPED tests that need ${name}: ${why} ***\n\n`);
  return { path: undefined, note: ` (SKIPPED: ${why})` };
}
/** A Python module importable by Debian's `/usr/bin/python3` (e.g. "optuna"); `path` is that python. */
export function pythonModule(name: string, python = "/usr/bin/python3"): SystemTool {
  try {
    execFileSync(python, ["-c", `import ${name}`], { stdio: "ignore" });
    return { path: python, note: "" };
  } catch {
    const why = `the Python module ${name} is not installed for ${python} (apt-get install python3-${name}; .ci/run installs it)`;
    if (process.env["FITLOOP_REQUIRE_SYSTEM_TOOLS"] === "1") throw new Error(`${why}, and FITLOOP_REQUIRE_SYSTEM_TOOLS=1 says these tests must run`);
    process.stderr.write(`\n*** SKIPPED tests that need ${name}: ${why} ***\n\n`);
    return { path: undefined, note: ` (SKIPPED: ${why})` };
  }
}
