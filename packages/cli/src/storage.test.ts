/** `--storage` specs that must never be echoed: a mistyped Redis URL carries its password. */
import { describe, expect, it } from "vitest";
import { checkStorageSpec } from "./storage.js";

describe("--storage checks", () => {
  for (const spec of [" redis://:hunter2@h:6379", "redis:/:hunter2@h:6379", "redis//:hunter2@h:6379", "h:hunter2@h:6379"]) {
    it(`a mistyped Redis URL is refused without echoing it: ${JSON.stringify(spec.replace("hunter2", "***"))}`, () => {
      const e = (() => {
        try {
          checkStorageSpec(spec);
        } catch (x) {
          return x as Error;
        }
        return undefined;
      })();
      expect(e?.message).toMatch(/looks like a Redis URL but is not one/);
      expect(e?.message).not.toContain("hunter2");
    });
  }
});
