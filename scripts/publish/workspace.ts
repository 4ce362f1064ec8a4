/**
 * The throwaway copy of the repo the publish test versions and publishes (so `changeset version`
 * never touches the real checkout), and the list of the workspace's packages.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";

export interface WorkspacePackage {
  /** Directory relative to the workspace root, e.g. "packages/callbacks/early-stopping". */
  rel: string;
  name: string;
  version: string;
  private: boolean;
  peerDependencies: Record<string, string>;
}

/**
 * Git's view of the working tree: tracked files plus untracked files that .gitignore does not
 * exclude (so a package a developer has not committed yet, which the root tsconfig and the lockfile
 * may already name, comes along), never node_modules, dist or .git. Tracked files deleted in the
 * working tree are left out. Throws when `root` is not a git work tree or git is missing.
 */
export function listSourceFiles(root: string): string[] {
  const out = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: root,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  const files = [...new Set(out.split("\0").filter(Boolean))];
  return files.filter((f) => existsSync(join(root, f)) || isSymlink(join(root, f))).sort();
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Copies `files` (relative to `from`) into `to`, symlinks as symlinks. Returns the bytes copied. */
export function copyFiles(from: string, to: string, files: string[]): number {
  let bytes = 0;
  for (const f of files) {
    const src = join(from, f);
    const dest = join(to, f);
    mkdirSync(dirname(dest), { recursive: true });
    const st = lstatSync(src);
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dest);
    else if (st.isFile()) {
      copyFileSync(src, dest);
      bytes += st.size;
    }
  }
  return bytes;
}

/** The workspace's package directories, from pnpm-workspace.yaml's `dir/*` globs. */
export function workspacePackages(root: string): WorkspacePackage[] {
  const yaml = readFileSync(join(root, "pnpm-workspace.yaml"), "utf8");
  // the `- dir/*` items of the top-level `packages:` list (other keys may hold lists too)
  const section = /^packages:\s*\n((?:(?:[ \t]+|-).*\n?|\s*\n)*)/m.exec(yaml)?.[1] ?? "";
  const globs = [...section.matchAll(/^\s*-\s*["']?([^"'\s#]+)["']?/gm)].map((m) => m[1]!);
  if (globs.length === 0) throw new Error("pnpm-workspace.yaml: no `packages:` list");
  const pkgs: WorkspacePackage[] = [];
  for (const glob of globs) {
    if (!glob.endsWith("/*") || glob.slice(0, -2).includes("*")) throw new Error(`pnpm-workspace.yaml: unsupported glob ${glob}`);
    const parent = glob.slice(0, -2);
    if (!existsSync(join(root, parent))) continue;
    for (const e of readdirSync(join(root, parent), { withFileTypes: true })) {
      const manifest = join(root, parent, e.name, "package.json");
      if (!e.isDirectory() || !existsSync(manifest)) continue;
      const m = JSON.parse(readFileSync(manifest, "utf8")) as {
        name?: string;
        version?: string;
        private?: boolean;
        peerDependencies?: Record<string, string>;
      };
      pkgs.push({
        rel: `${parent}/${e.name}`,
        name: m.name ?? `${parent}/${e.name}`,
        version: m.version ?? "",
        private: m.private === true,
        peerDependencies: m.peerDependencies ?? {},
      });
    }
  }
  return pkgs.sort((a, b) => a.rel.localeCompare(b.rel));
}
