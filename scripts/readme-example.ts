import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The first ```ts block of a package README. */
export function readmeExample(packageDir: string): string {
  const text = readFileSync(join(packageDir, "README.md"), "utf8");
  const match = /```ts\n([\s\S]*?)```/.exec(text);
  if (!match) throw new Error(`${packageDir}/README.md has no \`\`\`ts example`);
  return match[1]!;
}

/**
 * Runs a package README's example as a user would (tsx, the package's own dependencies), from a
 * temporary file inside the package so imports resolve; returns its stdout.
 */
export async function runReadmeExample(packageDir: string, timeoutMs = 120_000): Promise<string> {
  const file = join(packageDir, `.readme-example-${process.pid}.ts`);
  writeFileSync(file, readmeExample(packageDir));
  try {
    const tsx = join(dirname(fileURLToPath(import.meta.url)), "..", "node_modules", ".bin", "tsx");
    // the repo's check config: tsx applies a package's own tsconfig to its src/ only, so sibling
    // packages' decorators (checkpoint's @inject parameters) would not compile from source
    const env = { ...process.env, TSX_TSCONFIG_PATH: join(dirname(fileURLToPath(import.meta.url)), "..", "tsconfig.check.json") };
    const { stdout } = await run(tsx, ["--conditions=@fitloop/source", file], { cwd: packageDir, timeout: timeoutMs, env });
    return stdout;
  } finally {
    rmSync(file, { force: true });
  }
}

/** Every ```ts block of a markdown file, in order. */
export function markdownTsBlocks(markdownFile: string): string[] {
  return [...readFileSync(markdownFile, "utf8").matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/**
 * Runs TypeScript source as a user would (tsx), from a temporary file inside `dir` so that its
 * imports resolve from `dir`'s dependencies (for a document outside any package, such as the root
 * README: the repository root cannot resolve the workspace packages by name); returns its stdout.
 */
export async function runTsIn(dir: string, source: string, timeoutMs = 120_000): Promise<string> {
  // matches .gitignore's .readme-example-*.ts, should a killed run leave it behind
  const file = join(dir, `.readme-example-${process.pid}-${Math.random().toString(36).slice(2, 8)}.ts`);
  writeFileSync(file, source);
  try {
    const root = join(dirname(fileURLToPath(import.meta.url)), "..");
    // the repo's check config, for the same reason as in runReadmeExample
    const env = { ...process.env, TSX_TSCONFIG_PATH: join(root, "tsconfig.check.json") };
    const { stdout } = await run(join(root, "node_modules", ".bin", "tsx"), ["--conditions=@fitloop/source", file], { cwd: dir, timeout: timeoutMs, env });
    return stdout;
  } finally {
    rmSync(file, { force: true });
  }
}
