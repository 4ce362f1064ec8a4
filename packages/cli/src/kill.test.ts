/**
 * A worker SIGKILLed mid-trial (its whole process group) on a real redis-server, with
 * `--lease-ms 1500` and `--checkpoints`: after the lease expires the other worker fails the trial
 * and queues it again as Optuna's RetryFailedTrialCallback writes it, takes the retry, and resumes it
 * from the last epoch checkpoint, so only the epoch that was cut off is trained twice.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Study } from "@fitloop/recipes";
import { describe, expect, it } from "vitest";
import { systemTool } from "../../../scripts/system-tools.js";
import { openStorage } from "./index.js";
import { OBJECTIVE_FIXTURE, alive, redisSuite, startCli, until } from "./processes.fixture.js";

const redisTool = systemTool("redis-server");
const SECRET = "kill-test-pw";
/** Epochs the killed run had started when it was killed (it dies in the 4th: epochs 0-2 are checkpointed). */
const KILL_AT_EPOCH = 3;

interface EpochLine {
  trial: number;
  retryOf: number | undefined;
  epoch: number;
  pid: number;
}
const readEpochs = (file: string): EpochLine[] => {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  return [...text.matchAll(/^trial (\d+) retry_of (\d+|-) epoch (\d+) pid (\d+)$/gm)].map((m) => ({ trial: Number(m[1]), retryOf: m[2] === "-" ? undefined : Number(m[2]), epoch: Number(m[3]), pid: Number(m[4]) }));
};

describe.skipIf(!redisTool.path)(`fitloop tune: a worker killed mid-trial${redisTool.note}`, () => {
  const suite = redisSuite(redisTool.path, SECRET, "fitloop-cli-kill-");
  const { work } = suite;

  it("its trial is failed and queued again after the lease, finishes on the other worker, resumed from its checkpoint", async () => {
    const log = join(work, "epochs.log");
    const args = ["tune", "--storage", suite.server.url, "--study", "kill", "--objective", OBJECTIVE_FIXTURE, "--trials", "2", "--prefix", "kill", "--lease-ms", "1500", "--checkpoints", join(work, "checkpoints"), "--seed", "3"];
    const env = { FITLOOP_EPOCH_LOG: log, SLOW_EPOCH_MS: "300" };
    const workers = [startCli(args, env), startCli(args, env)];
    // the first worker to start its 4th epoch dies there, in the middle of its trial
    let victimLine: EpochLine | undefined;
    await until(() => (victimLine = readEpochs(log).find((e) => e.epoch === KILL_AT_EPOCH)) !== undefined, 40_000, `a trial to reach epoch ${KILL_AT_EPOCH}`);
    const victim = workers.find((w) => w.pid === victimLine!.pid)!;
    const survivor = workers.find((w) => w !== victim)!;
    const killedAt = Date.now();
    victim.kill("SIGKILL");
    expect((await victim.exited).signal).toBe("SIGKILL");
    const end = await survivor.exited;
    expect(end.code, survivor.stderr()).toBe(0);
    expect(alive(victim.pid)).toBe(false);

    const storage = await openStorage(suite.server.url, { prefix: "kill" });
    let trials;
    try {
      trials = (await Study.open({ storage: storage.journal, name: "kill", create: false })).trials;
    } finally {
      await storage.close();
    }
    const killed = trials[victimLine!.trial]!;
    const retry = trials.find((t) => t.systemAttrs["failed_trial"] === killed.number)!;
    // failed by the survivor once the lease ran out, and queued again as Optuna's RetryFailedTrialCallback does
    expect(killed.state).toBe("FAIL");
    expect(String(killed.userAttrs["fitloop:fail_reason"])).toMatch(new RegExp(`its worker \\(pid ${victim.pid} on \\S+\\) died while it ran \\(its lease expired\\)`));
    expect(retry.state).toBe("COMPLETE");
    expect(retry.systemAttrs["retry_history"]).toEqual([killed.number]);
    expect(retry.params).toEqual(killed.params);
    expect(retry.systemAttrs["fitloop:seed"]).toBe(killed.systemAttrs["fitloop:seed"]);
    expect(retry.systemAttrs["fitloop:checkpoint"]).toBe(killed.systemAttrs["fitloop:checkpoint"]);
    expect((retry.systemAttrs["fitloop:worker"] as { pid: number }).pid).toBe(survivor.pid);
    // the study: the two trials asked for, plus the failed one that was retried (it does not count)
    expect(trials.map((t) => t.state).sort()).toEqual(["COMPLETE", "COMPLETE", "FAIL"]);
    expect(survivor.stdout()).toMatch(/ has 2 of 2 finished; /);

    // resumed, not restarted: the retry trained from the epoch that was cut off
    const epochs = readEpochs(log);
    const killedRun = epochs.filter((e) => e.trial === killed.number).map((e) => e.epoch);
    const retryRun = epochs.filter((e) => e.trial === retry.number).map((e) => e.epoch);
    expect(killedRun).toEqual([0, 1, 2, 3]);
    expect(retryRun).toEqual([3, 4, 5]);
    expect(epochs.filter((e) => e.trial === retry.number).every((e) => e.retryOf === killed.number && e.pid === survivor.pid)).toBe(true);
    const rerun = retryRun.filter((e) => killedRun.includes(e)).length;
    const restartWouldRerun = killedRun.length;
    expect(rerun).toBe(1);
    expect(rerun).toBeLessThan(restartWouldRerun);
    expect(Object.keys(retry.intermediateValues).map(Number)).toEqual([3, 4, 5]);
    const line = new RegExp(`^trial ${retry.number} COMPLETE value \\S+ lr=\\S+ units=\\d+ \\d+\\.\\d s \\(retry of trial ${killed.number}; resumed from checkpoint step 12\\)$`, "m");
    expect(survivor.stdout()).toMatch(line); // 3 epochs of 4 batches were checkpointed
    console.log(`killed worker ${victim.pid} in epoch ${KILL_AT_EPOCH} of trial ${killed.number}; its retry ${retry.number} finished ${((Date.now() - killedAt) / 1000).toFixed(1)} s later; re-ran ${rerun} epoch(s), a restart would have re-run ${restartWouldRerun}; ${line.exec(survivor.stdout())![0]}`);
    for (const out of [victim.stdout(), victim.stderr(), survivor.stdout(), survivor.stderr()]) expect(out).not.toContain(SECRET);
  }, 60_000);
});
