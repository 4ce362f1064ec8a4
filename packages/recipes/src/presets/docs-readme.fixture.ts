import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const PACKAGE = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ROOT = join(PACKAGE, "..", "..");

/** One part of this package's README (between `<!-- part:NAME -->` and `<!-- /part:NAME -->`). */
export function readmePart(part: "checks" | "init" | "presets" | "tuner"): string {
  const text = readFileSync(join(PACKAGE, "README.md"), "utf8");
  const start = text.indexOf(`<!-- part:${part} -->`);
  const end = text.indexOf(`<!-- /part:${part} -->`);
  if (start < 0 || end < start) throw new Error(`README.md has no part "${part}"`);
  return text.slice(start, end);
}

/** Every ```ts block of one part of this package's README. */
export function readmeBlocks(part: "checks" | "init" | "presets" | "tuner"): string[] {
  return [...readmePart(part).matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/**
 * Runs every ```ts block of the README part `file` as a user would (tsx, the package's own imports), each as its
 * own module, in one process; returns each block's stdout. The files are written beside `here`
 * (inside the package, so imports resolve) and removed. `@fitloop/recipes/node` is read from
 * src/presets/node.ts until src/node.ts exports the presets (the lead wires that entry).
 * tsx is given the root tsconfig.check.json: with this package's own, the checkpoint package's
 * parameter decorators outside its `include` fail to compile.
 */
export async function runReadme(file: "checks" | "init" | "presets" | "tuner", here: string, timeoutMs = 120_000): Promise<string[]> {
  const stamp = `${process.pid}-${Date.now()}`;
  const blocks = readmeBlocks(file);
  const nodeEntry = readFileSync(join(PACKAGE, "src", "node.ts"), "utf8").includes("presets") ? "@fitloop/recipes/node" : `./${relative(here, join(PACKAGE, "src", "presets", "node.js")).replace(/\\/g, "/")}`;
  const files = blocks.map((_, i) => join(here, `.readme-${stamp}-${i}.ts`));
  blocks.forEach((b, i) => writeFileSync(files[i]!, b.replaceAll('"@fitloop/recipes/node"', JSON.stringify(nodeEntry))));
  const main = join(here, `.readme-${stamp}-main.ts`);
  writeFileSync(main, files.map((f, i) => `console.log("@@block ${i}");\nawait import(${JSON.stringify(`./${f.split(/[/\\]/).pop()}`)});\n`).join(""));
  try {
    const tsx = join(ROOT, "node_modules", ".bin", "tsx");
    const { stdout } = await run(tsx, ["--tsconfig", join(ROOT, "tsconfig.check.json"), "--conditions=@fitloop/source", main], { cwd: PACKAGE, timeout: timeoutMs });
    return stdout.split(/^@@block \d+\n/m).slice(1);
  } finally {
    for (const f of [...files, main]) rmSync(f, { force: true });
  }
}
