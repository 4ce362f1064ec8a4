/**
 * Input the command refuses before it joins a study, with a message that names the problem and
 * exit code 2; a Redis that cannot be reached is exit 1. No password is ever echoed.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../tuner-redis/src/redis-server.fixture.js";
import { OBJECTIVE_FIXTURE, killAll, runCli } from "./processes.fixture.js";

const work = mkdtempSync(join(tmpdir(), "fitloop-cli-bad-"));
afterAll(async () => {
  await killAll();
  rmSync(work, { recursive: true, force: true });
});

describe("fitloop: bad input", () => {
  it("unknown storage scheme, unreachable Redis, an objective module without `space`, --trials 0, and more: clear errors, exit 2 (1 for Redis down)", async () => {
    const journal = join(work, "study.log");
    const noSpace = join(work, "no-space.mjs");
    writeFileSync(noSpace, "export async function objective() { return 1; }\nexport const trials = 'many';\n");
    const port = await freePort(); // nobody listens there
    const tune = (storage: string, ...more: string[]) => ["tune", "--storage", storage, "--study", "s", "--objective", OBJECTIVE_FIXTURE, "--trials", "3", ...more];
    const [scheme, rdb, down, module, zero, prefix, hostPort, show, none, checkpoints] = await Promise.all([
      runCli(tune("s3://bucket/study.log")),
      runCli(tune("postgresql://user:pg-secret@db.example/optuna")),
      runCli(tune(`redis://:hunter2@127.0.0.1:${port}`)),
      runCli(["tune", "--storage", journal, "--study", "s", "--objective", noSpace]),
      runCli(tune(journal, "--trials", "0")),
      runCli(tune(journal, "--prefix", "p")),
      runCli(tune(`127.0.0.1:${port}`)),
      runCli(["study", "show", "--storage", join(work, "missing.log"), "--study", "s"]),
      runCli([]),
      runCli(tune(journal, "--checkpoints", noSpace)),
    ]);
    const said = (r: { stdout: string; stderr: string }) => r.stdout + r.stderr;

    expect(scheme.code).toBe(2);
    expect(scheme.stderr).toMatch(/^fitloop: --storage has the unknown scheme "s3:\/\/"; use redis:\/\/\[:password@\]host:port\[\/db\] \(or rediss:\/\/\) for Redis, or the path of a journal file$/m);
    expect(rdb.code).toBe(2);
    expect(rdb.stderr).toMatch(/unknown scheme "postgresql:\/\/" \(Optuna's RDB storages are not supported/);
    expect(said(rdb)).not.toContain("pg-secret");

    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(new RegExp(`^fitloop: cannot connect to redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}`, "m"));
    expect(said(down)).not.toContain("hunter2");

    expect(module.code).toBe(2);
    expect(module.stderr).toContain(`fitloop: objective module ${noSpace}:\n  - does not export \`space\``);
    expect(module.stderr).toContain('  - `trials` must be an integer >= 1, not "many"');
    expect(existsSync(journal)).toBe(false); // refused before joining: the journal was not even created

    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/option '--trials <n>' argument '0' is invalid\. --trials must be an integer >= 1/);
    expect(prefix.code).toBe(2);
    expect(prefix.stderr).toMatch(/^fitloop: --prefix applies to Redis storage only/m);
    expect(hostPort.code).toBe(2);
    expect(hostPort.stderr).toMatch(/looks like host:port; a Redis URL starts with redis:\/\//);
    expect(show.code).toBe(2);
    expect(show.stderr).toMatch(/^fitloop: --storage: no journal file at .*missing\.log$/m);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/Usage: fitloop/);
    expect(checkpoints.code).toBe(2);
    expect(checkpoints.stderr).toMatch(/^fitloop: --checkpoints .*no-space\.mjs cannot be used as a directory: /m);
    expect(existsSync(journal)).toBe(false);
  }, 60_000);
});
