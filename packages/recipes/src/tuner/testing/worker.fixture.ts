/**
 * A tuner worker in its own process, for the sharing and kill tests. argv[2] is JSON:
 * `{ path, name, trials, sleepMs, seed, barrier? }`. Prints `start <number>` when a trial starts (after its
 * claim is in the journal), `done <number>` when the objective returns, `end` at the end.
 */
import { existsSync } from "node:fs";
import { int, tune, uniform } from "../index.js";
import { FileJournal } from "../node.js";

const o = JSON.parse(process.argv[2]!) as { path: string; name: string; trials: number; sleepMs: number; seed: number; barrier?: boolean };
const say = (line: string) => process.stdout.write(`${line}\n`);
const storage = new FileJournal(o.path);
say("ready");
// with `barrier`, start when the test creates <path>.go, so process start-up times do not decide who works
while (o.barrier && !existsSync(`${o.path}.go`)) await new Promise((resolve) => setTimeout(resolve, 5));
await tune({
  study: { storage, name: o.name },
  space: { x: uniform(-1, 1), k: int(1, 5) },
  trials: o.trials,
  seed: o.seed,
  objective: async ({ x, k }, trial) => {
    say(`start ${trial.number}`);
    await new Promise((resolve) => setTimeout(resolve, o.sleepMs * (0.5 + (trial.seed % 100) / 100)));
    say(`done ${trial.number}`);
    return x * x + k;
  },
});
say("end");
