/**
 * End to end: the release path a user depends on. In a throwaway copy of the repo (installed offline
 * from pnpm's store), `changeset version` and `changeset publish` put every public package into a
 * private registry (verdaccio on 127.0.0.1, no uplinks); then a fresh project outside the repo
 * installs core and a plugin from it, as a user would, and trains with a plain .mjs program.
 * Nothing is written into the real repo. Set FITLOOP_KEEP_PUBLISH_TMP=1 to keep the temp dirs.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSUMER_DEPS, installConsumer, runConsumer } from "./publish/consumer.js";
import { cleanEnv, killAll, mustRun, pinnedPnpmDir, pnpmShim, run, tail, type Env } from "./publish/proc.js";
import { startVerdaccio, type Packument, type Registry } from "./publish/verdaccio.js";
import { copyFiles, listSourceFiles, workspacePackages, type WorkspacePackage } from "./publish/workspace.js";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const CORE = "@fitloop/core";
const PLUGIN = "@fitloop/early-stopping";

/** The test needs git (to list the files of the working tree); everything else is in node_modules. */
function prerequisites(): { ok: boolean; note: string } {
  try {
    execFileSync("git", ["rev-parse", "--is-inside-work-tree"], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
    return { ok: true, note: "" };
  } catch (e) {
    const detail = (String((e as { stderr?: unknown }).stderr ?? "").trim() || (e as Error).message).split("\n")[0];
    const why = `git cannot list the repo's files (${detail}; apt-get install git, a git checkout; the test copies \`git ls-files\`)`;
    if (process.env["FITLOOP_REQUIRE_SYSTEM_TOOLS"] === "1") throw new Error(`${why}, and FITLOOP_REQUIRE_SYSTEM_TOOLS=1 says these tests must run`);
    process.stderr.write(`\n*** SKIPPED the publish test: ${why} ***\n\n`);
    return { ok: false, note: ` (SKIPPED: ${why})` };
  }
}

/** The packages no other package's tsconfig references (safe to build alone during publish). */
function leafPackages(root: string, pkgs: WorkspacePackage[]): WorkspacePackage[] {
  const referenced = new Set<string>();
  for (const p of pkgs) {
    const tsconfig = join(root, p.rel, "tsconfig.json");
    if (!existsSync(tsconfig)) continue;
    for (const m of readFileSync(tsconfig, "utf8").matchAll(/"path"\s*:\s*"([^"]+)"/g)) referenced.add(relative(root, resolve(root, p.rel, m[1]!)));
  }
  return pkgs.filter((p) => !referenced.has(p.rel));
}

function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is missing: an earlier step failed`);
  return value;
}

const pre = prerequisites();

describe.skipIf(!pre.ok)(`changeset publish to a private registry, then npm install as a user${pre.note}`, () => {
  const t0 = Date.now();
  const phases: string[] = [];
  const phase = (name: string, ms: number) => phases.push(`${name} ${(ms / 1000).toFixed(1)}s`);
  let work = "";
  let copy = "";
  let consumer = "";
  let baseEnv: Env = {};
  let registry: Registry | undefined;
  let publishEnv: Env | undefined;
  let published: WorkspacePackage[] | undefined; // the copy's packages after `changeset version`
  let rebuilt: WorkspacePackage | undefined; // dist deleted before publish: only its prepack builds it
  const packuments = new Map<string, Packument>();
  const realCoreVersion = () => (JSON.parse(readFileSync(join(ROOT, "packages/core/package.json"), "utf8")) as { version: string }).version;
  const coreVersionBefore = realCoreVersion();
  // if the worker exits without afterAll (killed, crashed), leave no registry or command running
  const onExit = () => {
    killAll();
    try {
      if (registry) process.kill(registry.pid, "SIGKILL");
    } catch {
      /* already stopped */
    }
  };

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "fitloop-publish-"));
    consumer = mkdtempSync(join(tmpdir(), "fitloop-consumer-"));
    for (const dir of [work, consumer]) if (dir === ROOT || dir.startsWith(ROOT + sep)) throw new Error(`temp dir ${dir} is inside the repo`);
    copy = join(work, "repo");
    baseEnv = cleanEnv(ROOT);
    process.once("exit", onExit);
  });

  afterAll(async () => {
    killAll();
    await registry?.stop();
    process.off("exit", onExit);
    if (process.env["FITLOOP_KEEP_PUBLISH_TMP"] === "1") process.stderr.write(`publish test: kept ${work} and ${consumer}\n`);
    else for (const dir of [work, consumer]) if (dir) rmSync(dir, { recursive: true, force: true });
    process.stderr.write(`publish test: ${phases.join(", ")}; total ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  }, 30_000);

  it("copies the working tree (git's files, no node_modules/dist) and installs it offline from pnpm's store", async () => {
    let t = Date.now();
    const files = listSourceFiles(ROOT);
    expect(files).toContain("pnpm-lock.yaml");
    expect(files.some((f) => /(^|\/)(node_modules|dist|\.git)\//.test(f))).toBe(false);
    copyFiles(ROOT, copy, files);
    phase(`copy (${files.length} files)`, Date.now() - t);
    t = Date.now();
    const pnpm = join(copy, "scripts", "pnpm.mjs");
    let r = await run(process.execPath, [pnpm, "install", "--offline", "--frozen-lockfile"], { cwd: copy, env: baseEnv, timeoutMs: 240_000 });
    if (r.code !== 0 && /ERR_PNPM_NO_OFFLINE/.test(r.out)) {
      // a store that lacks a package (a CI cache from another lockfile): fetch only what is missing
      process.stderr.write(`\n*** publish test: pnpm's store misses packages, installing with --prefer-offline ***\n${tail(r.out, 1500)}\n`);
      r = await mustRun(process.execPath, [pnpm, "install", "--prefer-offline", "--frozen-lockfile"], { cwd: copy, env: baseEnv, timeoutMs: 240_000 });
    }
    expect(r.code, tail(r.out)).toBe(0);
    expect(existsSync(join(copy, "node_modules", ".bin", "changeset"))).toBe(true);
    phase("install", Date.now() - t);
  }, 300_000);

  it("starts verdaccio on 127.0.0.1 with no uplinks and creates a publishing user", async () => {
    const t = Date.now();
    registry = await startVerdaccio(join(copy, "node_modules", "verdaccio", "bin", "verdaccio"), join(work, "registry"), baseEnv);
    expect(registry.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(await registry.packument("react"), "no uplinks: only what is published here").toBeUndefined();
    const token = await registry.addUser("fitloop-ci", "fitloop-ci-password");
    const host = registry.url.replace(/^http:/, "");
    const npmrc = join(work, "publish.npmrc");
    writeFileSync(npmrc, `@fitloop:registry=${registry.url}\n${host}:_authToken=${token}\n`);
    const pnpmDir = await pinnedPnpmDir(copy, baseEnv);
    if (!pnpmDir) process.stderr.write("publish test: the pinned pnpm's directory was not found; each pnpm call goes through npx (slower)\n");
    const shimDir = pnpmShim(join(work, "bin"), copy, [pnpmDir, baseEnv["PATH"]].filter(Boolean).join(delimiter));
    publishEnv = cleanEnv(ROOT, {
      PATH: [shimDir, baseEnv["PATH"]].join(delimiter),
      NPM_CONFIG_USERCONFIG: npmrc,
      // changesets asks `npm info` about each package on the registry it reads from this variable
      // or publishConfig, not from the npmrc: without it, it would ask registry.npmjs.org.
      "npm_config_@fitloop:registry": registry.url,
    });
    phase("verdaccio + pnpm shim", Date.now() - t);
  }, 60_000);

  it("changeset version writes the new versions into the copy only", async () => {
    const t = Date.now();
    const before = workspacePackages(copy);
    const r = await mustRun(join(copy, "node_modules", ".bin", "changeset"), ["version"], { cwd: copy, env: must(publishEnv, "registry"), timeoutMs: 120_000 });
    published = workspacePackages(copy).filter((p) => !p.private);
    expect(published.length, r.out).toBeGreaterThan(0);
    for (const p of published) {
      expect(p.version, p.name).toMatch(/^\d+\.\d+\.\d+$/);
      expect(p.version, `${p.name}: changeset version did not bump it`).not.toBe(before.find((b) => b.rel === p.rel)?.version);
    }
    expect(readdirSync(join(copy, ".changeset")).filter((f) => f.endsWith(".md") && f !== "README.md")).toEqual([]);
    expect(realCoreVersion(), "the real repo's versions are untouched").toBe(coreVersionBefore);
    phase("changeset version", Date.now() - t);
  }, 180_000);

  it("changeset publish puts every public package into the registry (each built by its prepack)", async () => {
    const pkgs = must(published, "versioned packages");
    let t = Date.now();
    // as the release workflow does: one build of the whole workspace, then the per-package prepack
    // (`tsc -b`) is a cheap check; a leaf package's dist is deleted so its prepack must build it
    await mustRun(join(copy, "node_modules", ".bin", "tsc"), ["-b"], { cwd: copy, env: baseEnv, timeoutMs: 300_000 });
    rebuilt = leafPackages(copy, pkgs).filter((p) => p.name !== CORE && p.name !== PLUGIN).at(-1);
    if (rebuilt) rmSync(join(copy, rebuilt.rel, "dist"), { recursive: true, force: true });
    phase("build", Date.now() - t);
    t = Date.now();
    const r = await run(join(copy, "node_modules", ".bin", "changeset"), ["publish", "--no-git-tag"], { cwd: copy, env: must(publishEnv, "registry"), timeoutMs: 400_000 });
    const log = `${tail(r.out)}\n--- verdaccio:\n${registry?.log() ?? ""}`;
    expect(r.code, log).toBe(0);
    phase(`changeset publish (${pkgs.length} packages)`, Date.now() - t);
    const reg = must(registry, "registry");
    for (const p of workspacePackages(copy)) {
      const doc = await reg.packument(p.name);
      if (p.private) {
        expect(doc, `${p.name} is private and must not be published`).toBeUndefined();
        continue;
      }
      expect(doc, `${p.name} is not in the registry\n${log}`).toBeDefined();
      expect(doc!["dist-tags"]["latest"], p.name).toBe(p.version);
      expect(Object.keys(doc!.versions), p.name).toEqual([p.version]);
      packuments.set(p.name, doc!);
    }
  }, 600_000);

  it("published manifests carry real semver ranges (plugins peer-depend on the published core), tarballs hold dist and no tests", async () => {
    const pkgs = must(published, "versioned packages");
    const coreVersion = must(pkgs.find((p) => p.name === CORE), CORE).version;
    for (const p of pkgs) {
      const manifest = must(packuments.get(p.name)?.versions[p.version], `${p.name}@${p.version}`);
      expect(JSON.stringify(manifest), `${p.name}: a workspace: range was published`).not.toContain("workspace:");
      if (p.peerDependencies[CORE] !== undefined) expect(manifest.peerDependencies?.[CORE], p.name).toBe(`^${coreVersion}`);
      const tgz = join(work, `${p.rel.replaceAll("/", "__")}.tgz`);
      writeFileSync(tgz, Buffer.from(await (await fetch(manifest.dist.tarball)).arrayBuffer()));
      const files = execFileSync("tar", ["-tzf", tgz], { encoding: "utf8" }).split("\n").filter(Boolean);
      expect(files, p.name).toContain("package/dist/index.js");
      expect(files, p.name).toContain("package/dist/index.d.ts");
      expect(files.filter((f) => /\.test\.[cm]?[jt]s$|\.tsbuildinfo$/.test(f)), p.name).toEqual([]);
    }
    const plugin = must(packuments.get(PLUGIN), PLUGIN);
    expect(plugin.versions[plugin["dist-tags"]["latest"]!]!.peerDependencies).toMatchObject({ [CORE]: `^${coreVersion}` });
    if (rebuilt) expect(existsSync(join(copy, rebuilt.rel, "dist", "index.js")), `${rebuilt.name}: prepack did not build it`).toBe(true);
  }, 60_000);

  it(`a fresh project installs ${CONSUMER_DEPS.join(" ")} and trains with a custom callback and early stopping`, async () => {
    const reg = must(registry, "registry");
    let t = Date.now();
    const { installMs } = await installConsumer(consumer, reg.url, baseEnv);
    phase("npm install (user)", installMs);
    const mods = join(consumer, "node_modules");
    // @fitloop/* came from the test's registry: the version changeset wrote, the tarball's integrity
    for (const name of [CORE, PLUGIN]) {
      const doc = must(packuments.get(name), name);
      const version = doc["dist-tags"]["latest"]!;
      expect((JSON.parse(readFileSync(join(mods, name, "package.json"), "utf8")) as { version: string }).version, name).toBe(version);
      const lock = JSON.parse(readFileSync(join(consumer, "package-lock.json"), "utf8")) as { packages: Record<string, { integrity?: string }> };
      expect(lock.packages[`node_modules/${name}`]?.integrity, `${name}: integrity of the registry's tarball`).toBe(doc.versions[version]!.dist.integrity);
    }
    const installed = readdirSync(join(mods, "@fitloop")).sort();
    expect(installed, "only what the user asked for (optional peers such as @fitloop/wasm are not installed)").toEqual(["core", "early-stopping"]);
    const testFiles = execFileSync("find", [join(mods, "@fitloop"), "-name", "*.test.ts", "-o", "-name", "*.fixture.*"], { encoding: "utf8" }).trim();
    expect(testFiles, "test files shipped").toBe("");
    expect(existsSync(join(mods, "reflect-metadata")), "core brings reflect-metadata itself").toBe(true);

    t = Date.now();
    const { result, out } = await runConsumer(consumer, baseEnv);
    phase("train.mjs", Date.now() - t);
    expect(result.backend).toBe("cpu");
    expect(result.status, out).toBe("stopped");
    expect(result.stopped, out).toBe(true);
    expect(result.epochsRun, out).toBeLessThan(result.maxEpochs);
    expect(result.epochsRun, out).toBeGreaterThan(5);
    expect(result.stoppedEpoch).toBe(result.epochsRun - 1);
    expect(result.bestEpoch).toBeLessThan(result.stoppedEpoch);
    expect(result.counted, "the custom callback's afterEpoch ran every epoch").toBe(result.epochsRun);
    expect(out.split("\n").filter((l) => /^epoch \d+ val_loss /.test(l))).toHaveLength(result.epochsRun);
  }, 400_000);
});
