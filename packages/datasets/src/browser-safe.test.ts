import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Every source file the main entry reaches through relative imports. */
function reachable(entry: string): Map<string, string> {
  const seen = new Map<string, string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const text = readFileSync(file, "utf8");
    seen.set(file, text);
    for (const m of text.matchAll(/from\s+"(\.[^"]+)"/g)) visit(resolve(dirname(file), m[1]!.replace(/\.js$/, ".ts")));
  };
  visit(entry);
  return seen;
}

describe("the main entry is browser-safe", () => {
  it("imports no node: modules (they live behind @fitloop/datasets/node)", () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const files = reachable(join(here, "index.ts"));
    expect(files.size).toBeGreaterThan(15);
    for (const [file, text] of files) {
      expect(file).not.toMatch(/[/\\]node[/\\]/);
      expect(text, file).not.toMatch(/from\s+"node:|(?<![.\w])require\(|from\s+"(fs|path|zlib|os|module)"/);
      expect(text, file).not.toMatch(/\bprocess\.|\bBuffer\./);
    }
    // and the node subpath really is where the file readers are
    expect(readFileSync(join(here, "node", "idx-files.ts"), "utf8")).toMatch(/from "node:zlib"/);
  });
});
