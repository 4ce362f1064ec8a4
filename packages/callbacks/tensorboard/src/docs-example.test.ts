import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runReadmeExample } from "../../../../scripts/readme-example.js";
import { decodeDir, scalarsOf } from "./testing/independent.fixture.js";

describe("README", () => {
  it("the example runs as written; the files it wrote decode independently with the tags and steps it prints", async () => {
    const out = await runReadmeExample(join(dirname(fileURLToPath(import.meta.url)), ".."));
    const logDir = /^logdir: (.+)$/m.exec(out)?.[1];
    expect(logDir).toBeDefined();
    try {
      expect(out).toMatch(/^train epoch_loss: steps 0,1,2,3$/m);
      expect(out).toMatch(/^train batch_loss: steps 3,6,9,12,15,18,21,24$/m);
      expect(out).toMatch(/^train batch_grad_norm: steps 3,6,9,12,15,18,21,24$/m);
      expect(out).toMatch(/^train dense_Dense1\/kernel\/histogram: steps 0,2$/m);
      expect(out).toMatch(/^validation epoch_acc: steps 0,1,2,3$/m);
      const train = decodeDir(join(logDir!, "train"));
      const validation = decodeDir(join(logDir!, "validation"));
      for (const f of [...train, ...validation]) expect(f.crcs).toBe(2 * f.events.length);
      const ts = scalarsOf(train[0]!.events);
      const vs = scalarsOf(validation[0]!.events);
      expect(ts.get("epoch_loss")!.map(([s]) => s)).toEqual([0, 1, 2, 3]);
      expect(ts.get("batch_loss")!.map(([s]) => s)).toEqual([3, 6, 9, 12, 15, 18, 21, 24]);
      // it learns: the validation loss falls, and accuracy is well above chance by the end
      const vloss = vs.get("epoch_loss")!.map(([, v]) => v);
      expect(vloss[3]!).toBeLessThan(vloss[0]!);
      expect(vs.get("epoch_acc")![3]![1]).toBeGreaterThan(0.6);
    } finally {
      if (logDir) rmSync(logDir, { recursive: true, force: true });
    }
  });
});
