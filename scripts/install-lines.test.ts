/**
 * Every package README's install line installs what its example needs: each package the example
 * imports, and the tfjs backend its `useBackend(...)` asks for (a user who copies both lines gets a
 * program that runs, not "BackendError: npm install @tensorflow/tfjs-backend-wasm").
 */
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { builtinModules } from "node:module";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const packageDirs = ["packages", "packages/callbacks"].flatMap((d) => readdirSync(join(root, d)).map((n) => join(root, d, n))).filter((d) => existsSync(join(d, "package.json")) && existsSync(join(d, "README.md")));
const BACKENDS: Record<string, string> = { wasm: "@tensorflow/tfjs-backend-wasm", cpu: "@tensorflow/tfjs-backend-cpu", tensorflow: "@tensorflow/tfjs-node" };

/** `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
const packageOf = (spec: string) => spec.split("/").slice(0, spec.startsWith("@") ? 2 : 1).join("/");

describe("package READMEs: the install line covers the example", () => {
  for (const dir of packageDirs) {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name: string; private?: boolean };
    if (manifest.private) continue;
    it(manifest.name, () => {
      const text = readFileSync(join(dir, "README.md"), "utf8");
      const install = /^npm install (.+)$/m.exec(text)?.[1]?.split(/\s+/) ?? [];
      expect(install, "an `npm install ...` line").not.toEqual([]);
      const example = /```ts\n([\s\S]*?)```/.exec(text)?.[1] ?? "";
      const imported = [...example.matchAll(/^import (?:[^"']+ from )?["']([^"']+)["'];?$/gm)].map((m) => m[1]!).filter((s) => !s.startsWith(".") && !s.startsWith("node:") && !builtinModules.includes(s));
      const needed = new Set(imported.map(packageOf));
      for (const [, backend] of example.matchAll(/useBackend\("(\w+)"/g)) needed.add(BACKENDS[backend!]!);
      const missing = [...needed].filter((p) => !install.includes(p));
      expect(missing, `README install line of ${manifest.name}: ${install.join(" ")}`).toEqual([]);
    });
  }
});
