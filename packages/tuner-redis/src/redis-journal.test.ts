/**
 * The journal on a real redis-server (Debian's, started here on 127.0.0.1 and stopped by pid):
 * Optuna's keys and record text, hostile records skipped, the lock among fitloop workers, URLs
 * never printed with their password, a restart of Redis ridden out.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Study, TunerError, tune, uniform, type JournalRecord } from "@fitloop/recipes";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemTool } from "../../../scripts/system-tools.js";
import { RedisJournal, redactUrl } from "./index.js";
import { startRedis, type RedisServer } from "./redis-server.fixture.js";
import { ACQUIRE } from "./scripts.js";

const redisTool = systemTool("redis-server");

/** A logger that keeps what it is told. */
function recorder() {
  const lines: string[] = [];
  const push = (m: string) => void lines.push(m);
  return { lines, logger: { debug: push, info: push, warn: push, error: push } };
}

describe.skipIf(!redisTool.path)(`RedisJournal on a real redis-server${redisTool.note}`, () => {
  let server: RedisServer;
  let raw: Redis;
  const open: RedisJournal[] = [];
  const connect = async (prefix: string, extra: Partial<Parameters<typeof RedisJournal.connect>[0]> = {}) => {
    const j = await RedisJournal.connect({ url: server.url, prefix, ...extra });
    open.push(j);
    return j;
  };
  beforeAll(async () => {
    server = await startRedis(redisTool.path!);
    raw = new Redis(server.url);
  });
  afterAll(async () => {
    await Promise.all(open.map((j) => j.close()));
    raw?.disconnect();
    await server?.stop();
  });

  it("writes Optuna's keys: {prefix}:log_number from -1 and {prefix}:log:{n} holding Python's json.dumps of each record; never a snapshot", async () => {
    const j = await connect("keys");
    const a: JournalRecord = { op_code: 0, worker_id: "w-0", study_name: "s", directions: [1] };
    const b: JournalRecord = { op_code: 3, worker_id: "w-0", study_id: 0, system_attr: { "x": 0.1, "y": Number.NaN, "z": "é" } };
    await j.append([a, b]);
    expect(await raw.get("keys:log_number")).toBe("1");
    expect(await raw.get("keys:log:0")).toBe('{"op_code": 0, "worker_id": "w-0", "study_name": "s", "directions": [1]}');
    expect(await raw.get("keys:log:1")).toBe('{"op_code": 3, "worker_id": "w-0", "study_id": 0, "system_attr": {"x": 0.1, "y": NaN, "z": "\\u00e9"}}');
    expect(await j.readFrom(0)).toEqual([a, { ...b, system_attr: { x: 0.1, y: Number.NaN, z: "é" } }]);
    expect(await j.readFrom(1)).toHaveLength(1);
    expect(await j.readFrom(2)).toEqual([]);
    expect(await raw.exists("keys:snapshot")).toBe(0);
    expect(await (await connect("empty")).readFrom(0)).toEqual([]);
  });

  it("appends of concurrent writers never interleave inside one append, and numbers have no gaps", async () => {
    const writers = await Promise.all([0, 1, 2, 3].map(() => connect("concurrent")));
    await Promise.all(writers.map((j, w) => Promise.all(Array.from({ length: 25 }, (_, k) => j.append([0, 1, 2].map((i) => ({ op_code: 2, worker_id: `w${w}`, study_id: -1, user_attr: { k, i } }) as JournalRecord))))));
    const records = await writers[0]!.readFrom(0);
    expect(records).toHaveLength(4 * 25 * 3);
    for (let n = 0; n < records.length; n += 3) {
      const group = records.slice(n, n + 3) as unknown as { worker_id: string; user_attr: { k: number; i: number } }[];
      expect(new Set(group.map((r) => `${r.worker_id}/${r.user_attr.k}`)).size).toBe(1);
      expect(group.map((r) => r.user_attr.i)).toEqual([0, 1, 2]);
    }
  });

  it("skips malformed and hostile records with a warning naming each, and the study still opens", async () => {
    const { lines, logger } = recorder();
    const j = await connect("hostile", { logger, maxRecordBytes: 4096, missingRecordWaitMs: 200 });
    const study = await Study.open({ storage: j, name: "s" });
    await raw.incr("hostile:log_number"); // 1: not JSON
    await raw.set("hostile:log:1", "import os; os.system('rm -rf /')");
    await raw.incr("hostile:log_number"); // 2: an op code Optuna does not have
    await raw.set("hostile:log:2", '{"op_code": 99, "worker_id": "x"}');
    await raw.incr("hostile:log_number"); // 3: too large
    await raw.set("hostile:log:3", `{"op_code": 2, "worker_id": "x", "study_id": 0, "user_attr": {"a": "${"x".repeat(5000)}"}}`);
    await raw.incr("hostile:log_number"); // 4: not a string
    await raw.rpush("hostile:log:4", "a");
    await raw.incr("hostile:log_number"); // 5: numbered, never written (a writer died between INCR and SET)
    await raw.incr("hostile:log_number"); // 6: prototype pollution attempt
    await raw.set("hostile:log:6", '{"op_code": 2, "worker_id": "x", "study_id": 0, "user_attr": {"__proto__": {"polluted": 1}, "ok": 1}}');
    await raw.incr("hostile:log_number"); // 7: a trial with a param but no distribution
    await raw.set("hostile:log:7", '{"op_code": 4, "worker_id": "x", "study_id": 0, "state": 1, "params": {"lr": 0.1}, "distributions": {}}');
    await raw.incr("hostile:log_number"); // 8: a distribution that is not one
    await raw.set("hostile:log:8", '{"op_code": 4, "worker_id": "x", "study_id": 0, "state": 1, "params": {"lr": 0.1}, "distributions": {"lr": "{\\"name\\": \\"exec\\"}"}}');
    await raw.incr("hostile:log_number"); // 9: a categorical index out of range (toExternal would throw a RangeError)
    await raw.set("hostile:log:9", '{"op_code": 4, "worker_id": "x", "study_id": 0, "state": 1, "params": {"act": 99.0}, "distributions": {"act": "{\\"name\\": \\"CategoricalDistribution\\", \\"attributes\\": {\\"choices\\": [\\"a\\", \\"b\\"]}}"}}');
    await study.sync();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted")).toBe(false);
    expect(study.record.userAttrs["ok"]).toBe(1);
    // the two unreadable trials keep their places (ids and numbers stay those other readers have)
    expect(study.trials.map((t) => [t.number, t.state, Object.keys(t.params).length])).toEqual([[0, "FAIL", 0], [1, "FAIL", 0], [2, "FAIL", 0]]);
    expect(String(study.trials[2]!.systemAttrs["fitloop:unreadable"])).toMatch(/does not fit its distribution/);
    expect(String(study.trials[0]!.systemAttrs["fitloop:unreadable"])).toMatch(/param lr has no distribution/);
    const skipped = lines.filter((l) => /skipped journal record/.test(l));
    expect(skipped.map((l) => Number(/record (\d+)/.exec(l)![1]))).toEqual([1, 2, 3, 4, 5, 7, 8, 9]);
    expect(lines.join("\n")).toMatch(/record 1 .*not JSON/);
    expect(lines.join("\n")).toMatch(/record 3 .*bytes, over maxRecordBytes 4096/);
    expect(lines.join("\n")).toMatch(/record 4 .*not a string/);
    expect(lines.join("\n")).toMatch(/record 5 .*not written within 200 ms/);
    // after the junk, the study goes on: a trial appended now is read
    await tune({ study, space: { x: uniform(0, 1) }, trials: 4, objective: ({ x }) => x }); // the three FAILs count
    expect(study.trials.map((t) => t.state)).toEqual(["FAIL", "FAIL", "FAIL", "COMPLETE"]);
  });

  it("two fitloop workers on one study finish exactly the number of trials asked, numbers unique", async () => {
    const [a, b] = await Promise.all([connect("lock"), connect("lock")]);
    const objective = async ({ x }: { x: number }) => (await sleep(5), x);
    const runs = await Promise.all([a!, b!].map((storage) => tune({ study: { storage, name: "s" }, space: { x: uniform(0, 1) }, trials: 12, objective })));
    expect(runs[0]!.ran.length + runs[1]!.ran.length).toBe(12);
    expect(runs[0]!.ran.length).toBeGreaterThan(0);
    expect(runs[1]!.ran.length).toBeGreaterThan(0);
    const numbers = [...runs[0]!.ran, ...runs[1]!.ran].map((t) => t.number).sort((x, y) => x - y);
    expect(numbers).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(await raw.exists("lock:fitloop:lock")).toBe(0);
  });

  it("a log that went backwards (Redis lost writes) is an error, not a silent divergence; records over maxRecordBytes are refused before writing", async () => {
    const j = await connect("backwards", { maxRecordBytes: 2048 });
    await j.append([0, 1, 2].map((i) => ({ op_code: 2, worker_id: "w", study_id: -1, user_attr: { i } }) as JournalRecord));
    expect(await j.readFrom(0)).toHaveLength(3);
    await raw.set("backwards:log_number", "0"); // the tail is gone
    await expect(j.readFrom(3)).rejects.toThrow(/went backwards: 1 records, 3 already read/);
    await expect(j.append([{ op_code: 2, worker_id: "w", study_id: -1, user_attr: { big: "x".repeat(3000) } }])).rejects.toThrow(/over maxRecordBytes 2048: readers would skip it; nothing was written/);
    expect(await raw.get("backwards:log_number")).toBe("0");
  });

  it("a lock request Redis ran but whose reply was lost, sent again, finds the lock its own (not taken by someone else)", async () => {
    expect(await raw.eval(ACQUIRE, 1, "resend:fitloop:lock", "token-a", 5000)).toBe(1);
    expect(await raw.eval(ACQUIRE, 1, "resend:fitloop:lock", "token-a", 5000)).toBe(1); // the resend
    expect(await raw.eval(ACQUIRE, 1, "resend:fitloop:lock", "token-b", 5000)).toBe(0);
    expect(await raw.pttl("resend:fitloop:lock")).toBeGreaterThan(4000);
  });

  it("checks its options before connecting, with errors naming the option", async () => {
    const err = (o: Record<string, unknown>) => RedisJournal.connect(o as never).then(() => new Error("connected"), (e: unknown) => e as Error);
    expect((await err({ url: "http://127.0.0.1:1" })).message).toMatch(/url.*redis:\/\/ or rediss:\/\//);
    expect((await err({ url: server.url, leaseMs: 0 })).message).toMatch(/leaseMs/);
    expect((await err({ url: server.url, lockMs: 100 })).message).toMatch(/lockMs.*at least 300/);
    expect((await err({ url: server.url, prefix: "a b" })).message).toMatch(/prefix/);
    expect((await err({ url: server.url, hostname: "x" })).message).toMatch(/hostname/);
  });
});

describe.skipIf(!redisTool.path)(`RedisJournal: credentials and outages${redisTool.note}`, () => {
  const SECRET = "s3cr3t-p@ss";
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis(redisTool.path!, { password: SECRET });
  });
  afterAll(async () => server?.stop());

  it("never prints the password: redacted URL, a wrong password fails at connect with STORAGE_UNAVAILABLE", async () => {
    expect(redactUrl(server.url)).not.toContain(encodeURIComponent(SECRET));
    expect(redactUrl(server.url)).toMatch(/^redis:\/\/:\*\*\*@127\.0\.0\.1:\d+$/);
    expect(redactUrl("redis://user:pw@h:1/2")).toBe("redis://user:***@h:1/2");
    expect(redactUrl("redis://h:1/0?password=s3cret&db=1")).toBe("redis://h:1/0?password=***&db=1"); // ioredis reads ?password=
    const bad = server.url.replace(encodeURIComponent(SECRET), "wrong-secret");
    const { lines, logger } = recorder();
    const e = (await RedisJournal.connect({ url: bad, logger }).catch((x: unknown) => x)) as TunerError;
    expect(e).toBeInstanceOf(TunerError);
    expect(e.code).toBe("STORAGE_UNAVAILABLE");
    expect(e.message).not.toContain("wrong-secret");
    expect(lines.join("\n")).not.toContain("wrong-secret");
    const down = (await RedisJournal.connect({ url: "redis://:hunter2@127.0.0.1:1", logger }).catch((x: unknown) => x)) as TunerError;
    expect(down.code).toBe("STORAGE_UNAVAILABLE");
    expect(down.message).toMatch(/cannot connect to redis:\/\/:\*\*\*@127\.0\.0\.1:1/);
    expect(down.message + lines.join("\n")).not.toContain("hunter2");
  });

  it("rides out a Redis restart (append-only file on): says so without the password, and the study completes", async () => {
    const { lines, logger } = recorder();
    const storage = await RedisJournal.connect({ url: server.url, prefix: "restart", logger });
    try {
      let restarted = false;
      const result = await tune({
        study: { storage, name: "s" },
        space: { x: uniform(0, 1) },
        trials: 6,
        objective: async ({ x }, trial) => {
          if (trial.number === 2 && !restarted) {
            restarted = true;
            await server.restart(800); // mid-trial: the reports and the result wait for the server
          }
          await trial.report(x, 0);
          return x;
        },
      });
      expect(result.ran).toHaveLength(6);
      await result.study.sync();
      expect(result.study.trials.map((t) => [t.number, t.state, Object.keys(t.intermediateValues).length])).toEqual(Array.from({ length: 6 }, (_, i) => [i, "COMPLETE", 1]));
      const said = lines.join("\n");
      expect(said).toMatch(/lost the connection to redis:\/\/:\*\*\*@127\.0\.0\.1/);
      expect(said).toMatch(/reconnected to/);
      expect(said).not.toContain(SECRET);
      expect(said).not.toContain(encodeURIComponent(SECRET));
    } finally {
      await storage.close();
    }
  }, 30_000);
});
