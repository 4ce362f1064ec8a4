#!/usr/bin/env node
// Runs the pinned pnpm through npx so a fresh machine needs only Node and npm.
// pnpm 10 runs on Node 20 (11.x needs Node 22); corepack cannot be used here (no registry signatures).
import { spawnSync } from "node:child_process";

const PNPM = "pnpm@10.34.8";
const args = process.argv.slice(2);
const local = spawnSync("pnpm", ["--version"], { encoding: "utf8", shell: process.platform === "win32" });
const useLocal = local.status === 0 && local.stdout.trim() === PNPM.split("@")[1];
const [cmd, cmdArgs] = useLocal ? ["pnpm", args] : ["npx", ["--yes", PNPM, ...args]];
const run = spawnSync(cmd, cmdArgs, { stdio: "inherit", shell: process.platform === "win32" });
process.exit(run.status ?? 1);
