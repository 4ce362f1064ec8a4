import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = join(here, "..", "..");

describe("README: sanity checks (the README's first example)", () => {
  it("the example runs as written (tsx, the package's own imports) and prints the table shown", async () => {
    const readme = readFileSync(join(packageDir, "README.md"), "utf8");
    const example = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    const shown = /It prints[^\n]*\n\n```\n([\s\S]*?)```/.exec(readme)![1]!;
    const file = join(here, `.readme-example-${process.pid}.ts`);
    writeFileSync(file, example);
    try {
      const root = join(packageDir, "..", "..");
      // the root check config: tsx applies a tsconfig only to files it includes, and the package's own
      // covers src/ only, not the decorators of @fitloop/checkpoint that the package index pulls in
      const args = ["--conditions=@fitloop/source", "--tsconfig", join(root, "tsconfig.check.json"), file];
      const { stdout } = await promisify(execFile)(join(root, "node_modules", ".bin", "tsx"), args, { cwd: packageDir, timeout: 120_000 });
      // every row's check and status as shown (numbers may differ in the last digits across machines)
      const rows = (text: string) => [...text.matchAll(/^(\w+)\s+(PASS|WARN|FAIL)\s/gm)].map((m) => `${m[1]} ${m[2]}`);
      expect(rows(stdout)).toEqual(rows(shown));
      expect(rows(stdout)).toHaveLength(6);
      expect(stdout).toMatch(/^overall: PASS \(6 pass, 0 warn, 0 fail\)$/m);
      expect(stdout).toMatch(/^pass overfit in \d+ steps$/m);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
