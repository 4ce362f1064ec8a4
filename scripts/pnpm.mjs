#!/usr/bin/env node
// Runs the pinned pnpm through npx so a fresh machine needs only Node and npm.
// pnpm 10 runs on Node 20 (11.x needs Node 22); corepack cannot be used here (no registry signatures).
import { spawnSync } from "node:child_process";

const PNPM = "pnpm@10.34.8";
const args = process.argv.slice(2);
// Probing `pnpm` on PATH must never reach this script again (a `pnpm` shim that runs it would fork
// without end): inside a probe, answer nothing.
if (process.env.FITLOOP_PNPM_PROBE === "1") process.exit(1);
const local = spawnSync("pnpm", ["--version"], { encoding: "utf8", shell: process.platform === "win32", env: { ...process.env, FITLOOP_PNPM_PROBE: "1" } });
const useLocal = local.status === 0 && local.stdout.trim() === PNPM.split("@")[1];
const [cmd, cmdArgs] = useLocal ? ["pnpm", args] : ["npx", ["--yes", PNPM, ...args]];
const run = spawnSync(cmd, cmdArgs, { stdio: "inherit", shell: process.platform === "win32" });
process.exit(run.status ?? 1);
