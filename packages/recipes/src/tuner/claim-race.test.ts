/**
 * Claiming a WAITING trial races with writers that do not take fitloop's lock (Python workers on
 * Redis): the first RUNNING record in the log wins, and the loser must write nothing more to that
 * trial (no worker, seed, params or FAIL on someone else's trial). Also: checkpoint directories read
 * from the journal are used only inside the worker's own root.
 */
import { describe, expect, it } from "vitest";
import { MemoryJournal, OP, Study, TRIAL_STATE, checkpointDir, choice, tune, type JournalRecord, type JournalStorage, type JournalWriter } from "./index.js";

const space = { act: choice(["relu", "tanh"]) };
const waitingTrial = (study: Study, systemAttrs: Record<string, string | number> = {}): JournalRecord =>
  study.makeRecord(OP.CREATE_TRIAL, { study_id: study.id, datetime_start: null, state: TRIAL_STATE.WAITING, value: null, values: null, distributions: {}, params: {}, user_attrs: {}, system_attrs: { fixed_params: { act: "tanh" }, ...systemAttrs }, intermediate_values: {} });

/** A journal where another writer's RUNNING for trial `id` lands just before ours (once). */
function racing(inner: MemoryJournal, id: number): JournalStorage {
  let raced = false;
  const other = (): JournalRecord => ({ op_code: OP.SET_TRIAL_STATE_VALUES, worker_id: "python-worker", trial_id: id, state: TRIAL_STATE.RUNNING, values: null, datetime_start: "2026-12-05T00:00:00.000000" });
  const wrap = (w: JournalWriter): JournalWriter => ({
    append: async (records) => {
      if (!raced && records.some((r) => r.op_code === OP.SET_TRIAL_STATE_VALUES && r["trial_id"] === id && r["state"] === TRIAL_STATE.RUNNING)) {
        raced = true;
        await w.append([other()]);
      }
      await w.append(records);
    },
  });
  return { readFrom: (from) => inner.readFrom(from), append: (records) => inner.locked((w) => wrap(w).append(records)), locked: (fn) => inner.locked((w) => fn(wrap(w))) };
}

describe("claiming a WAITING trial", () => {
  it("the loser of the race writes nothing more to the winner's trial and runs a new one", async () => {
    const memory = new MemoryJournal();
    const setup = await Study.open({ storage: memory, name: "s" });
    await memory.append([waitingTrial(setup)]);
    const result = await tune({ study: { storage: racing(memory, 0), name: "s" }, space, trials: 2, objective: () => 1 });
    const [python, ours] = result.study.trials;
    expect(python!.state).toBe("RUNNING"); // the Python worker's, untouched
    expect(python!.systemAttrs["fitloop:worker"]).toBeUndefined();
    expect(python!.systemAttrs["fitloop:seed"]).toBeUndefined();
    expect(python!.params).toEqual({});
    expect(ours!.state).toBe("COMPLETE");
    expect(result.ran.map((t) => t.number)).toEqual([1]);
  });

  it("a checkpoint directory from the journal outside the worker's root is replaced by the worker's own", async () => {
    const memory = new MemoryJournal();
    const study = await Study.open({ storage: memory, name: "../../etc" });
    await memory.append([waitingTrial(study, { "fitloop:checkpoint": "/etc/cron.d", failed_trial: 0 })]);
    const dirs: (string | undefined)[] = [];
    await tune({ study, space, trials: 1, checkpoints: "/shared/ckpt/", objective: (_, trial) => (dirs.push(trial.checkpointDir), 1) });
    expect(dirs).toEqual(["/shared/ckpt/%2E%2E%2F%2E%2E%2Fetc/trial-0"]);
    expect(checkpointDir("/r", "..", 3)).toBe("/r/%2E%2E/trial-3");
  });
});
