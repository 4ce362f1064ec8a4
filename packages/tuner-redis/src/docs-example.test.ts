import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../scripts/readme-example.js";
import { systemTool } from "../../../scripts/system-tools.js";
import { startRedis, type RedisServer } from "./redis-server.fixture.js";

const redisTool = systemTool("redis-server");

describe.skipIf(!redisTool.path)(`README${redisTool.note}`, () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis(redisTool.path!, { password: "readme-secret" });
  });
  afterAll(async () => server?.stop());

  it("the example runs as written against a real Redis, twice: the second run finds the study done", async () => {
    process.env["REDIS_URL"] = server.url;
    try {
      const dir = join(dirname(fileURLToPath(import.meta.url)), "..");
      const first = await runReadmeExample(dir);
      expect(first).toMatch(/^ran 8 trials; 8 in the study; best x -?\d\.\d{3} \(printed as redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/?\)$/m);
      const second = await runReadmeExample(dir);
      expect(second).toMatch(/^ran 0 trials; 8 in the study;/m);
      expect(first + second).not.toContain("readme-secret");
    } finally {
      delete process.env["REDIS_URL"];
    }
  });
});
