/**
 * What sharing a study costs: the coordination alone (an objective that returns at once), with 1,
 * 2 and 4 worker processes on one Redis study (a real redis-server on 127.0.0.1, started and
 * stopped here), and the journal file for comparison. Per trial a worker syncs the log, takes the
 * lock, appends its claim, reads it back, appends the result: a handful of round trips.
 *
 *   overhead ms/trial   a worker's wall time / the trials it ran (what each trial pays; the target is < 5 ms)
 *   trials/s            trials finished by all workers together per second of wall time
 *
 * Worker start-up (tsx, imports, connecting) is not measured: every worker waits for "go".
 * Prints a table and, last, {"bench":"study","overhead_ms_per_trial":T,...} (T: 1 Redis worker).
 *
 *   pnpm run bench:study      # env: TRIALS (200 per configuration), ROUNDS (3; medians)
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { systemTool } from "../scripts/system-tools.js";
import { startRedis } from "../packages/tuner-redis/src/redis-server.fixture.js";
import { intEnv, median, printTable } from "./models.js";

const TRIALS = intEnv("TRIALS", 200);
const ROUNDS = intEnv("ROUNDS", 3);
const here = dirname(fileURLToPath(import.meta.url));
const tsx = join(here, "..", "node_modules", ".bin", "tsx");

interface Run {
  wallMs: number;
  perTrialMs: number;
  trials: number;
}

async function runWorkers(spec: string, prefix: string, workers: number): Promise<Run> {
  const children: ChildProcessWithoutNullStreams[] = [];
  const lines: Promise<string>[][] = [];
  for (let w = 0; w < workers; w++) {
    const child = spawn(tsx, ["--conditions=@fitloop/source", join(here, "study-worker.ts"), spec, prefix, "bench", String(TRIALS)], { env: { ...process.env, TSX_TSCONFIG_PATH: join(here, "..", "tsconfig.check.json") } });
    child.stderr.on("data", (d: Buffer) => process.stderr.write(d));
    const rl = createInterface({ input: child.stdout });
    const queue: string[] = [];
    const waiters: ((l: string) => void)[] = [];
    rl.on("line", (l) => (waiters.length ? waiters.shift()!(l) : queue.push(l)));
    const next = () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise<string>((r) => waiters.push(r)));
    children.push(child);
    lines.push([next(), next()]);
  }
  await Promise.all(lines.map((l) => l[0]));
  const t0 = performance.now();
  for (const c of children) c.stdin.end("go\n");
  const results = (await Promise.all(lines.map((l) => l[1]!))).map((l) => JSON.parse(l) as { ran: number; ms: number });
  const wallMs = performance.now() - t0;
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r)))));
  const trials = results.reduce((s, r) => s + r.ran, 0);
  if (trials !== TRIALS) throw new Error(`${workers} workers ran ${trials} trials, not ${TRIALS}`);
  return { wallMs, trials, perTrialMs: median(results.filter((r) => r.ran > 0).map((r) => r.ms / r.ran)) };
}

const redisTool = systemTool("redis-server");
if (!redisTool.path) {
  console.log("bench:study needs redis-server (apt-get install redis-server); not run");
  process.exit(0);
}
const server = await startRedis(redisTool.path);
const dir = mkdtempSync(join(tmpdir(), "fitloop-bench-study-"));
const configs: { name: string; workers: number; spec: (round: number) => string; prefix: (round: number) => string }[] = [
  { name: "redis, 1 worker", workers: 1, spec: () => server.url, prefix: (r) => `r1-${r}` },
  { name: "redis, 2 workers", workers: 2, spec: () => server.url, prefix: (r) => `r2-${r}` },
  { name: "redis, 4 workers", workers: 4, spec: () => server.url, prefix: (r) => `r4-${r}` },
  { name: "journal file, 1 worker", workers: 1, spec: (r) => join(dir, `f1-${r}.log`), prefix: () => "" },
  { name: "journal file, 4 workers", workers: 4, spec: (r) => join(dir, `f4-${r}.log`), prefix: () => "" },
];
const runs = new Map<string, Run[]>(configs.map((c) => [c.name, []]));
try {
  for (let round = 0; round < ROUNDS; round++) for (const c of configs) runs.get(c.name)!.push(await runWorkers(c.spec(round), c.prefix(round), c.workers));
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
const summary = configs.map((c) => {
  const r = runs.get(c.name)!;
  return { name: c.name, workers: c.workers, perTrialMs: median(r.map((x) => x.perTrialMs)), trialsPerS: median(r.map((x) => (x.trials / x.wallMs) * 1000)) };
});
console.log(`\nbench:study: ${TRIALS} trials per configuration, empty objective, medians of ${ROUNDS} rounds; worker start-up not measured\n`);
printTable(["storage", "workers", "overhead ms/trial", "trials/s"], summary.map((s) => [s.name, String(s.workers), s.perTrialMs.toFixed(2), s.trialsPerS.toFixed(0)]));
const at = (name: string) => summary.find((s) => s.name === name)!;
console.log(
  JSON.stringify({
    bench: "study",
    overhead_ms_per_trial: Number(at("redis, 1 worker").perTrialMs.toFixed(3)),
    redis_2_workers_ms_per_trial: Number(at("redis, 2 workers").perTrialMs.toFixed(3)),
    redis_4_workers_ms_per_trial: Number(at("redis, 4 workers").perTrialMs.toFixed(3)),
    trials_per_s_1: Math.round(at("redis, 1 worker").trialsPerS),
    trials_per_s_2: Math.round(at("redis, 2 workers").trialsPerS),
    trials_per_s_4: Math.round(at("redis, 4 workers").trialsPerS),
    file_ms_per_trial: Number(at("journal file, 1 worker").perTrialMs.toFixed(3)),
  }),
);
