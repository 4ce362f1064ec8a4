// Package-quality checks of the publishing pipeline: for every public workspace package
// (packages/*, packages/callbacks/*; `private: true` skipped) checks the manifest, builds
// everything once (`tsc -b`), packs each package the way `pnpm publish` would (its `prepack`
// runs), checks the tarball, then runs `publint --strict` and `attw --profile esm-only` on it.
// Prints a table and exits non-zero on any failure.
//   npx tsx scripts/check-packages.ts            (root script: check:packages)
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin");
const PARALLEL = 2;
const ENGINES_NODE = ">=20.19";
const TFJS_CORE = "@tensorflow/tfjs-core";
const CORE = "@fitloop/core";

type Manifest = {
  name?: string;
  version?: string;
  private?: boolean;
  type?: string;
  license?: string;
  sideEffects?: unknown;
  engines?: Record<string, string>;
  exports?: unknown;
  files?: string[];
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  publishConfig?: { access?: string };
};
type Pkg = { dir: string; rel: string; manifest: Manifest; plugin: boolean };
type Step = { ok: boolean; problems: string[]; ms?: number };
type Row = { pkg: Pkg; manifest: Step; pack: Step; publint: Step; attw: Step; tarball?: string };

const started = Date.now();
const work = mkdtempSync(join(tmpdir(), "fitloop-check-packages-"));
// publint (and anything else that shells out to a package manager) needs `pnpm` on PATH.
const shimDir = join(work, "bin");
const pnpmShim = join(shimDir, "pnpm");
mkdirSync(shimDir, { recursive: true });
// The shim runs scripts/pnpm.mjs with the original PATH: pnpm.mjs probes `pnpm --version` on PATH,
// which must not find the shim again (that recursion is a fork bomb).
const origPath = process.env.PATH ?? "";
writeFileSync(
  pnpmShim,
  `#!/bin/sh\nPATH=${shq(origPath)} exec node ${shq(join(ROOT, "scripts", "pnpm.mjs"))} "$@"\n`,
);
chmodSync(pnpmShim, 0o755);
const baseEnv = { ...process.env, PATH: [BIN, origPath].join(delimiter), FORCE_COLOR: "0", NO_COLOR: "1" };
const toolEnv = { ...baseEnv, PATH: [shimDir, baseEnv.PATH].join(delimiter) };

function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function run(cmd: string, args: string[], cwd: string, env = baseEnv): Promise<{ code: number; out: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", (e) => resolve({ code: 127, out: String(e), ms: Date.now() - t0 }));
    child.on("close", (code) => resolve({ code: code ?? 1, out, ms: Date.now() - t0 }));
  });
}

async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function findPackages(): Pkg[] {
  const dirs: string[] = [];
  for (const parent of ["packages", "packages/callbacks"]) {
    for (const e of readdirSync(join(ROOT, parent), { withFileTypes: true })) {
      const dir = join(ROOT, parent, e.name);
      if (e.isDirectory() && existsSync(join(dir, "package.json"))) dirs.push(dir);
    }
  }
  return dirs
    .map((dir) => ({
      dir,
      rel: relative(ROOT, dir),
      manifest: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Manifest,
      plugin: relative(ROOT, dir).startsWith("packages/callbacks/"),
    }))
    .filter((p) => p.manifest.private !== true)
    .sort((a, b) => a.rel.localeCompare(b.rel));
}

/** Export subpath -> { types, default } targets (only conditions objects; "./package.json" skipped). */
function exportTargets(m: Manifest, problems: string[]): Map<string, { types?: string; default?: string }> {
  const out = new Map<string, { types?: string; default?: string }>();
  const ex = m.exports;
  if (typeof ex !== "object" || ex === null || Array.isArray(ex)) {
    problems.push("exports: missing or not a subpath map");
    return out;
  }
  const map = ex as Record<string, unknown>;
  if (!("." in map)) problems.push('exports: no "." entry');
  for (const [sub, target] of Object.entries(map)) {
    if (sub === "./package.json") continue;
    if (typeof target !== "object" || target === null) {
      problems.push(`exports["${sub}"]: not a conditions object with "types"`);
      continue;
    }
    const conds = target as Record<string, unknown>;
    const keys = Object.keys(conds);
    const t = conds.types;
    const d = conds.default ?? conds.import;
    if (typeof t !== "string") problems.push(`exports["${sub}"]: no "types" condition`);
    else if (!/^\.\/dist\/.*\.d\.ts$/.test(t)) problems.push(`exports["${sub}"].types: ${t} is not ./dist/**/*.d.ts`);
    if (typeof d !== "string") problems.push(`exports["${sub}"]: no "default"/"import" condition`);
    else if (!/^\.\/dist\/.*\.js$/.test(d)) problems.push(`exports["${sub}"].default: ${d} is not ./dist/**/*.js`);
    const ti = keys.indexOf("types");
    for (const later of ["default", "import", "require", "node"]) {
      const li = keys.indexOf(later);
      if (ti >= 0 && li >= 0 && li < ti) problems.push(`exports["${sub}"]: "types" must come before "${later}"`);
    }
    if (keys.includes("default") && keys.indexOf("default") !== keys.length - 1)
      problems.push(`exports["${sub}"]: "default" must be the last condition`);
    if ("require" in conds) problems.push(`exports["${sub}"]: "require" condition in an ESM-only package`);
    out.set(sub, { types: typeof t === "string" ? t : undefined, default: typeof d === "string" ? d : undefined });
  }
  return out;
}

function checkManifest(p: Pkg): Step {
  const m = p.manifest;
  const problems: string[] = [];
  if (!m.name?.startsWith("@fitloop/")) problems.push(`name: ${m.name ?? "missing"} is not @fitloop/*`);
  if (!m.version) problems.push("version: missing");
  if (!m.license) problems.push("license: missing");
  if (m.type !== "module") problems.push('type: must be "module"');
  exportTargets(m, problems);
  if (!Array.isArray(m.files)) problems.push("files: missing");
  else {
    if (!m.files.includes("dist")) problems.push('files: must include "dist"');
    if (!m.files.includes("CHANGELOG.md")) problems.push('files: must include "CHANGELOG.md" (npm does not add it)');
  }
  if (typeof m.sideEffects !== "boolean" && !Array.isArray(m.sideEffects)) problems.push("sideEffects: missing");
  if (m.engines?.node !== ENGINES_NODE) problems.push(`engines.node: ${m.engines?.node ?? "missing"}, want "${ENGINES_NODE}"`);
  for (const [dep, range] of Object.entries(m.dependencies ?? {})) {
    if (dep.startsWith("@tensorflow/")) problems.push(`dependencies: ${dep} must be a peer dependency`);
    if (dep === CORE) problems.push(`dependencies: ${CORE} must be a peer dependency (${range})`);
  }
  const peers = m.peerDependencies ?? {};
  if (!peers[TFJS_CORE]) problems.push(`peerDependencies: ${TFJS_CORE} missing`);
  for (const [dep, range] of Object.entries(peers))
    if (dep.startsWith("@tensorflow/") && !range.startsWith("^")) problems.push(`peerDependencies: ${dep}@${range} should be a ^ range`);
  if (p.plugin && peers[CORE] !== "workspace:^")
    problems.push(`peerDependencies: ${CORE} must be "workspace:^" (is ${peers[CORE] ?? "missing"})`);
  if (m.publishConfig?.access !== "public") problems.push('publishConfig.access: must be "public"');
  if (!m.scripts?.prepack) problems.push("scripts.prepack: missing (pack/publish would ship a stale or empty dist)");
  for (const f of ["README.md", "LICENSE", "CHANGELOG.md"])
    if (!existsSync(join(p.dir, f))) problems.push(`${f}: missing in ${p.rel}`);
  return { ok: problems.length === 0, problems };
}

async function pack(p: Pkg, dest: string): Promise<Step & { tarball?: string }> {
  // Runs the package's prepack (tsc -b: cheap after the build above), like `pnpm publish` does.
  const r = await run("node", [join(ROOT, "scripts", "pnpm.mjs"), "pack", "--pack-destination", dest], p.dir);
  if (r.code !== 0) return { ok: false, problems: [`pnpm pack failed:\n${r.out.trim()}`], ms: r.ms };
  const tarball = readdirSync(dest).find((f) => f.endsWith(".tgz"));
  if (!tarball) return { ok: false, problems: ["pnpm pack wrote no tarball"], ms: r.ms };
  const path = join(dest, tarball);
  const list = spawnSync("tar", ["-tzf", path], { encoding: "utf8" });
  const files = new Set(list.stdout.split("\n").filter(Boolean).map((f) => f.replace(/^package\//, "")));
  const problems: string[] = [];
  const need = new Set(["dist/index.js", "dist/index.d.ts", "README.md", "LICENSE", "CHANGELOG.md", "package.json"]);
  for (const t of exportTargets(p.manifest, [])) for (const f of [t[1].types, t[1].default]) if (f) need.add(f.replace(/^\.\//, ""));
  for (const f of need) if (!files.has(f)) problems.push(`tarball: missing ${f}`);
  for (const f of files) {
    if (/(^|\/)(__tests__|__fixtures__)\/|\.(test|spec|fixture)\.[cm]?[jt]sx?$|\.(test|spec|fixture)\.d\.[cm]?ts$|\.fixture\.\w+$|\.test-d\.ts$/.test(f))
      problems.push(`tarball: test file ${f}`);
    if (f.endsWith(".tsbuildinfo")) problems.push(`tarball: build cache ${f}`);
  }
  const packed = JSON.parse(spawnSync("tar", ["-xzOf", path, "package/package.json"], { encoding: "utf8" }).stdout) as Manifest;
  for (const [k, v] of Object.entries({ ...packed.dependencies, ...packed.peerDependencies }))
    if (v.startsWith("workspace:")) problems.push(`tarball: ${k}@${v} not rewritten`);
  return { ok: problems.length === 0, problems, ms: r.ms, tarball: path };
}

async function tool(cmd: string, args: string[], cwd: string): Promise<Step> {
  const r = await run(join(BIN, cmd), args, cwd, toolEnv);
  return { ok: r.code === 0, problems: r.code === 0 ? [] : [r.out.trim()], ms: r.ms };
}

const pkgs = findPackages();
console.log(`check:packages: ${pkgs.length} public packages`);
const rows: Row[] = pkgs.map((pkg) => {
  const skip = { ok: false, problems: ["skipped"] };
  return { pkg, manifest: checkManifest(pkg), pack: skip, publint: skip, attw: skip };
});

let t = Date.now();
const build = spawnSync(join(BIN, "tsc"), ["-b"], { cwd: ROOT, env: baseEnv, encoding: "utf8" });
const buildMs = Date.now() - t;
console.log(`build (tsc -b): ${(buildMs / 1000).toFixed(1)}s${build.status === 0 ? "" : " FAILED"}`);
if (build.status !== 0) {
  console.error(build.stdout + build.stderr);
  rmSync(work, { recursive: true, force: true });
  process.exit(1);
}

t = Date.now();
await pool(rows, PARALLEL, async (row) => {
  const dest = join(work, row.pkg.rel.replaceAll("/", "__"));
  const packed = await pack(row.pkg, dest);
  row.pack = packed;
  row.tarball = packed.tarball;
  if (!row.tarball) return;
  row.publint = await tool("publint", ["--strict", row.tarball], dest);
  row.attw = await tool("attw", [row.tarball, "--profile", "esm-only", "--format", "table-flipped"], dest);
});
const packMs = Date.now() - t;

const cell = (s: Step) => (s.ok ? "ok" : s.problems[0] === "skipped" ? "skipped" : `FAIL (${s.problems.length})`);
const header = ["package", "manifest", "pack", "publint", "attw"];
const table = rows.map((r) => [r.pkg.manifest.name ?? r.pkg.rel, cell(r.manifest), cell(r.pack), cell(r.publint), cell(r.attw)]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
const line = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
console.log("\n" + line(header) + "\n" + line(widths.map((w) => "-".repeat(w))));
for (const r of table) console.log(line(r));

let failed = 0;
for (const r of rows) {
  const steps = { manifest: r.manifest, pack: r.pack, publint: r.publint, attw: r.attw };
  const bad = Object.entries(steps).filter(([, s]) => !s.ok && s.problems[0] !== "skipped");
  if (bad.length === 0) continue;
  failed++;
  console.log(`\n${r.pkg.manifest.name ?? r.pkg.rel} (${r.pkg.rel}):`);
  for (const [name, s] of bad) for (const p of s.problems) console.log(`  ${name}: ${p.replaceAll("\n", "\n    ")}`);
}
console.log(
  `\n${failed === 0 ? "all packages ok" : `${failed} package(s) failed`}; build ${(buildMs / 1000).toFixed(1)}s, ` +
    `pack+publint+attw ${(packMs / 1000).toFixed(1)}s (parallel ${PARALLEL}), total ${((Date.now() - started) / 1000).toFixed(1)}s`,
);
rmSync(work, { recursive: true, force: true });
process.exit(failed === 0 ? 0 : 1);
